"""Platform accounts' credentials, encrypted at rest (DESIGN §4, issue 6).

The key is ``HASHCART_CREDENTIALS_KEY`` (a Fernet key); without it one is derived from
``SECRET_KEY``. Decrypted credentials live only in memory, for the call that needs them.
"""

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from social.models import PlatformAccount


def _fernet() -> Fernet:
    key = settings.CREDENTIALS_KEY
    if not key:
        digest = hashlib.sha256(b"hashcart-credentials:" + settings.SECRET_KEY.encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    return Fernet(key)


def credentials_encrypt(credentials: dict[str, Any]) -> str:
    return _fernet().encrypt(json.dumps(credentials, sort_keys=True).encode()).decode()


def credentials_decrypt(token: str) -> dict[str, Any]:
    """The credentials; ``{}`` when there are none. Raises ``ValueError`` when they cannot be
    read with this key (the key changed): say so, never guess."""
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
