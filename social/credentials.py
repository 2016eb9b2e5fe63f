"""Platform accounts' credentials, encrypted at rest (DESIGN §4, issue 6).

Encrypted with ``core.crypto`` (the keys are ``HASHCART_CREDENTIALS_KEY``, rotated by
``rotate_credentials``: see there). Decrypted credentials live only in memory, for the call
that needs them.
"""

import json
from typing import Any

from core.crypto import text_decrypt, text_encrypt
from social.models import PlatformAccount


def credentials_encrypt(credentials: dict[str, Any]) -> str:
    return text_encrypt(json.dumps(credentials, sort_keys=True))


def credentials_decrypt(token: str) -> dict[str, Any]:
    """The credentials; ``{}`` when there are none. Raises ``ValueError`` when they cannot be
    read with any of the keys (the key changed): say so, never guess."""
    if not token:
        return {}
    try:
        return dict(json.loads(text_decrypt(token)))
    except ValueError as exc:
        raise ValueError("The account's credentials cannot be read with this key.") from exc


def account_credentials_set(*, account_id: int, credentials: dict[str, Any]) -> None:
    PlatformAccount.objects.filter(pk=account_id).update(
        credentials_encrypted=credentials_encrypt(credentials)
    )
