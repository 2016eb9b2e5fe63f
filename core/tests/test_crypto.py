"""``core.crypto``: text sealed with the first configured key, read with any of them, and every
app's encrypted columns found for ``rotate_credentials``."""

import pytest
from cryptography.fernet import Fernet

from core.crypto import encrypted_columns, text_decrypt, text_encrypt

OLD, NEW = (Fernet.generate_key().decode() for _ in range(2))


def test_text_is_sealed_with_the_first_key_and_read_with_any(settings):
    settings.CREDENTIALS_KEYS = [OLD]
    token = text_encrypt("whsec_abc")
    assert "whsec_abc" not in token
    assert Fernet(OLD).decrypt(token.encode()) == b"whsec_abc"
    settings.CREDENTIALS_KEYS = [NEW, OLD]
    assert text_decrypt(token) == "whsec_abc"
    assert Fernet(NEW).decrypt(text_encrypt("x").encode()) == b"x"
    settings.CREDENTIALS_KEYS = [NEW]
    with pytest.raises(ValueError, match="cannot be read"):
        text_decrypt(token)
    assert text_decrypt("") == ""


def test_without_keys_a_key_derived_from_the_secret_key_stands_in(settings):
    settings.CREDENTIALS_KEYS = []
    token = text_encrypt("s")
    assert text_decrypt(token) == "s"
    settings.SECRET_KEY = "another-" + settings.SECRET_KEY
    with pytest.raises(ValueError, match="cannot be read"):
        text_decrypt(token)


def test_the_rotation_covers_every_apps_secrets():
    columns = {f"{model._meta.label}.{field}" for model, field in encrypted_columns()}
    assert columns == {
        "social.PlatformAccount.credentials_encrypted",
        "orders.WebhookEndpoint.secret_encrypted",
        "orders.WebhookEndpoint.previous_secret_encrypted",
    }
