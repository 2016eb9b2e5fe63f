"""Secrets at rest: text encrypted with ``HASHCART_CREDENTIALS_KEY`` (DESIGN §4), and the
re-encryption of every encrypted column when the keys rotate.

The keys are ``settings.CREDENTIALS_KEYS``: one Fernet key, or several to rotate them
(``MultiFernet``): the first encrypts, every one of them decrypts. To rotate, put a new key
first, keep the old ones after it, run ``rotate_credentials`` (every encrypted column
re-encrypted with the first key), then drop the old keys. Production requires the setting and
keeps it apart from ``SECRET_KEY``; elsewhere a key derived from ``SECRET_KEY`` stands in when
it is not set.

A model declares its encrypted columns in a class attribute ``encrypted_fields`` (a tuple of
field names, each a text column holding a Fernet token or ``""``); ``encrypted_columns`` finds
them, so that the rotation covers every app's secrets without core importing any app. Decrypt
only where the clear text is needed (a request signed, a secret shown to its merchant), and keep
it in memory for that call only.
"""

import base64
import hashlib
import logging
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.db import models

logger = logging.getLogger(__name__)

RotationOutcome = Literal["rotated", "current", "empty", "unreadable"]


def _keys() -> list[Fernet]:
    keys = list(settings.CREDENTIALS_KEYS)
    if not keys:
        digest = hashlib.sha256(b"hashcart-credentials:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return [Fernet(key) for key in keys]


def text_encrypt(text: str) -> str:
    """``text`` encrypted with the first key (a Fernet token, ASCII)."""
    return MultiFernet(_keys()).encrypt(text.encode()).decode()


def text_decrypt(token: str) -> str:
    """The text ``token`` encrypts; ``""`` for ``""``. Raises ``ValueError`` when no configured
    key reads it (a key was dropped too early): say so, never guess."""
    if not token:
        return ""
    try:
        return MultiFernet(_keys()).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("This secret cannot be read with the configured keys.") from exc


def encrypted_columns() -> list[tuple[type[models.Model], str]]:
    """Every (model, field name) declared in a model's ``encrypted_fields``, in a stable order."""
    columns = [
        (model, name)
        for model in apps.get_models()
        for name in getattr(model, "encrypted_fields", ())
    ]
    return sorted(columns, key=lambda column: (column[0]._meta.label, column[1]))


def column_rows(model: type[models.Model], field: str) -> list[Any]:
    """The primary keys of the rows whose ``field`` holds a token, in order."""
    return list(
        model._default_manager.exclude(**{field: ""}).order_by("pk").values_list("pk", flat=True)
    )


def column_rotate(
    *, model: type[models.Model], field: str, pk: Any, dry_run: bool = False
) -> RotationOutcome:
    """Re-encrypt one row's ``field`` with the first key.

    ``current`` when it already is (so running it again changes nothing), ``empty`` when the
    column holds nothing, ``unreadable`` (logged at ERROR with the row's id) when no key reads
    it. The write is a compare-and-set on the token read: a value written meanwhile (always with
    the first key) is never overwritten by the older one, and counts as ``current``. Nothing is
    written with ``dry_run``.
    """
    manager = model._default_manager
    stored = manager.values_list(field, flat=True).get(pk=pk)
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
        logger.error("%s.%s of row %s: no configured key reads it", model._meta.label, field, pk)
        return "unreadable"
    if dry_run:
        return "rotated"
    changed = manager.filter(**{"pk": pk, field: stored}).update(**{field: rotated})
    return "rotated" if changed else "current"
