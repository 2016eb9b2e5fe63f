"""Text that may quote a person's address, made safe to store or show to staff."""

import re

# Anything shaped like an e-mail address (an SMTP server's refusal quotes the recipient).
_ADDRESS = re.compile(r"[^\s<>\"'(),;:\[\]{}]+@[^\s<>\"'(),;:\[\]{}]+")


def addresses_redacted(text: str) -> str:
    """``text`` with every e-mail address in it replaced by ``[address]``."""
    return _ADDRESS.sub("[address]", text)
