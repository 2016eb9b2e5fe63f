"""Fitting outside text into bounded columns: the one place where a value is cut (DESIGN §4).

Every text that comes from a platform, a gateway, a carrier or staff is either stored whole (its
column is as wide as its source allows) or cut here, deliberately, never by the database:

- ``fit`` is for text people read (handles, names, subjects, descriptions, reasons): the cut is
  marked with an ellipsis, so nobody takes a shortened value for the whole one;
- ``fit_key`` is for identifiers that are compared (platform user ids, account URIs): a value
  that does not fit keeps a prefix and gains a digest of the whole, so two different long ids
  never become equal by being cut (an identity keyed on a cut id could be taken over).

Both also bound the UTF-8 size when asked (``max_bytes``), for values in a B-tree index:
PostgreSQL refuses an index entry larger than about 2,700 bytes.

``storable`` and ``storable_json`` make outside text storable at all: PostgreSQL keeps no NUL in
text or JSON, and a lone surrogate (which JSON may carry as ``"\\ud800"``) cannot be encoded;
either would fail the insert of a whole page of posts.
"""

import hashlib
from typing import Any

ELLIPSIS = "…"
# E-mail subjects are cut to this, readably (mail clients show far less anyway).
EMAIL_SUBJECT_MAX_LENGTH = 200
REPLACEMENT = "\ufffd"
# "~" then the SHA-256 of the whole value, in hex: what ``fit_key`` appends to a cut id.
_DIGEST_LENGTH = 1 + 64


def _utf8_prefix(value: str, max_bytes: int) -> str:
    """The longest prefix of ``value`` whose UTF-8 encoding holds in ``max_bytes``."""
    return value.encode("utf-8", "surrogatepass")[:max_bytes].decode("utf-8", errors="ignore")


def _fits(value: str, max_length: int, max_bytes: int | None) -> bool:
    return len(value) <= max_length and (
        max_bytes is None
        or len(value) * 4 <= max_bytes
        or len(value.encode("utf-8", "surrogatepass")) <= max_bytes
    )


def fit(value: str, max_length: int, *, max_bytes: int | None = None) -> str:
    """``value`` whole if it holds in ``max_length`` characters (and ``max_bytes`` UTF-8 bytes,
    if given); else its longest prefix that does with "…" appended, within both bounds."""
    if _fits(value, max_length, max_bytes):
        return value
    cut = value[: max(0, max_length - len(ELLIPSIS))]
    if max_bytes is not None:
        cut = _utf8_prefix(cut, max(0, max_bytes - len(ELLIPSIS.encode())))
    return cut + ELLIPSIS


def fit_key(value: str, max_length: int) -> str:
    """An identifier that holds in ``max_length`` characters and as many UTF-8 bytes: ``value``
    whole if it does, else a prefix of it, "~" and the SHA-256 of the whole value. Equal values
    give equal keys and different values different keys (short of a SHA-256 collision)."""
    if _fits(value, max_length, max_length):
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return _utf8_prefix(value[: max_length - _DIGEST_LENGTH], max_length - _DIGEST_LENGTH) + (
        f"~{digest}"
    )


def storable(value: str) -> str:
    """``value`` with each NUL and each lone surrogate replaced by U+FFFD (visibly, rather than
    dropped: dropping could join two words into a hashtag nobody wrote); unchanged otherwise."""
    if "\x00" in value:
        value = value.replace("\x00", REPLACEMENT)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # UTF-16 pairs what can be paired; what cannot is a lone surrogate, replaced.
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def storable_json(value: Any) -> Any:
    """``value`` (decoded JSON) with ``storable`` applied to every string in it, keys included."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(k)): storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(v) for v in value]
    return value
