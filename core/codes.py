"""Short codes that people type into a post, defined once (DESIGN §3.3, §6).

A code is a fixed number of characters from one alphabet without the look-alikes 0/O and
1/I/L, written after a prefix as one hashtag: ``#<prefix><CODE>``. Two formats use it:
confirmation codes (``#Confirm<CODE>``, five characters, made by orders, their prefix set per
campaign in catalog) and link codes (``#Link<CODE>``, six, made by accounts). Both live here,
below every app that reads or writes them, so that no app spells an alphabet or a length again.

Codes are matched on hashtag keys (``social.hashtags.hashtag_key``: lower-cased), so a code read
back from a key is upper-cased.
"""

import re
import secrets
from dataclasses import dataclass
from functools import cached_property

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


@dataclass(frozen=True)
class CodeFormat:
    """``length`` characters of ``alphabet``."""

    length: int
    alphabet: str = CODE_ALPHABET

    def generate(self) -> str:
        """A random code (``secrets``): the caller makes sure no live one holds it."""
        return "".join(secrets.choice(self.alphabet) for _ in range(self.length))

    @property
    def sample(self) -> str:
        """A fixed code of this format, for checking how a hashtag with a code would look."""
        return ("K7Q2M" + self.alphabet)[: self.length]

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """Matches a whole code, upper case only."""
        return re.compile(f"[{re.escape(self.alphabet)}]{{{self.length}}}")

    def matches(self, code: str) -> bool:
        return self.pattern.fullmatch(code) is not None

    def after(self, key: str, prefix_key: str) -> str | None:
        """The code written after ``prefix_key`` in the hashtag key ``key``, upper-cased, if
        ``key`` is that prefix and as many characters as a code has (of any alphabet: callers
        that need a valid code check it with ``matches``)."""
        if key.startswith(prefix_key) and len(key) == len(prefix_key) + self.length:
            return key[len(prefix_key) :].upper()
        return None


# The confirmation code an order's buyer posts as ``#<campaign prefix><CODE>``.
CONFIRMATION_CODE = CodeFormat(length=5)
# The one-time code a cardholder posts as ``#Link<CODE>`` to link a social identity.
LINK_CODE = CodeFormat(length=6)
