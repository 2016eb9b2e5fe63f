"""Platform accounts' credentials, encrypted at rest (DESIGN §4, issue 6).

The keys are ``HASHCART_CREDENTIALS_KEY``: one Fernet key, or several separated by commas to
rotate them (``MultiFernet``): the first encrypts, every one of them decrypts. To rotate, put a
new key first, keep the old ones after it, run ``rotate_credentials`` (every account
re-encrypted with the first key), then drop the old keys. Production requires the setting and
keeps it apart from ``SECRET_KEY``; elsewhere a key derived from ``SECRET_KEY`` stands in when
it is not set. Decrypted credentials live only in memory, for the call that needs them.
"""

import base64
import hashlib
import json
import logging
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from social.models import PlatformAccount

logger = logging.getLogger(__name__)

RotationOutcome = Literal["rotated", "current", "empty", "unreadable"]


def _keys() -> list[Fernet]:
    keys = list(settings.CREDENTIALS_KEYS)
    if not keys:
        digest = hashlib.sha256(b"hashcart-credentials:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return [Fernet(key) for key in keys]


def _fernet() -> MultiFernet:
    return MultiFernet(_keys())


def credentials_encrypt(credentials: dict[str, Any]) -> str:
    return _fernet().encrypt(json.dumps(credentials, sort_keys=True).encode()).decode()


def credentials_decrypt(token: str) -> dict[str, Any]:
    """The credentials; ``{}`` when there are none. Raises ``ValueError`` when they cannot be
    read with any of the keys (the key changed): say so, never guess."""
    if not token:
        return {}
    try:
        return dict(json.loads(_fernet().decrypt(token.encode())))
    except InvalidToken as exc:
        raise ValueError("The account's credentials cannot be read with this key.") from exc


def account_credentials_set(*, account_id: int, credentials: dict[str, Any]) -> None:
    PlatformAccount.objects.filter(pk=account_id).update(
        credentials_encrypted=credentials_encrypt(credentials)
    )


def account_credentials_rotate(*, account_id: int, dry_run: bool = False) -> RotationOutcome:
    """Re-encrypt one account's credentials with the first key.

    ``current`` when they already are (so running it again changes nothing), ``empty`` when the
    account has none, ``unreadable`` (logged at ERROR with the account id) when no key reads
    them. The write is a compare-and-set on the ciphertext read: credentials refreshed
    meanwhile (``x_access_token`` writes them with the first key) are never overwritten by the
    older ones, and count as ``current``. Nothing is written with ``dry_run``.
    """
    stored = PlatformAccount.objects.values_list("credentials_encrypted", flat=True).get(
        pk=account_id
    )
    if not stored:
        return "empty"
    primary, *_ = keys = _keys()
    try:
        primary.decrypt(stored.encode())
        return "current"
    except InvalidToken:
        pass
    try:
        rotated = MultiFernet(keys).rotate(stored.encode()).decode()
    except InvalidToken:
        logger.error("credentials of platform account %s: no configured key reads them", account_id)
        return "unreadable"
    if dry_run:
        return "rotated"
    changed = PlatformAccount.objects.filter(pk=account_id, credentials_encrypted=stored).update(
        credentials_encrypted=rotated
    )
    return "rotated" if changed else "current"


def accounts_with_credentials() -> list[int]:
    """The ids of every platform account that has credentials, in id order."""
    return list(
        PlatformAccount.objects.exclude(credentials_encrypted="")
        .order_by("pk")
        .values_list("pk", flat=True)
    )
