"""Credentials at rest under rotating keys, and ``rotate_credentials`` (issue 10, item 20)."""

import io
import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from social.credentials import account_credentials_set, credentials_decrypt
from social.models import PlatformAccount

pytestmark = pytest.mark.django_db

OLD, NEW, LOST = (Fernet.generate_key().decode() for _ in range(3))


def _account(n: int, credentials: dict | None = None) -> PlatformAccount:
    account = PlatformAccount.objects.create(
        platform="x", platform_user_id=str(1000 + n), handle=f"brand{n}"
    )
    if credentials is not None:
        account_credentials_set(account_id=account.pk, credentials=credentials)
    return account


def _stored(account: PlatformAccount) -> str:
    return PlatformAccount.objects.values_list("credentials_encrypted", flat=True).get(
        pk=account.pk
    )


def _rotate(*args: str) -> tuple[str, str, int]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("rotate_credentials", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return out.getvalue(), err.getvalue(), int(exit_.code or 0)
    return out.getvalue(), err.getvalue(), 0


def test_credentials_written_under_an_old_key_stay_readable_while_it_is_listed(settings):
    settings.CREDENTIALS_KEYS = [OLD]
    account = _account(1, {"access_token": "a1"})
    assert Fernet(OLD).decrypt(_stored(account).encode())  # the configured key, not a derived one
    settings.CREDENTIALS_KEYS = [NEW, OLD]
    assert credentials_decrypt(_stored(account)) == {"access_token": "a1"}
    # The first key encrypts what is written from now on.
    account_credentials_set(account_id=account.pk, credentials={"access_token": "a2"})
    assert Fernet(NEW).decrypt(_stored(account).encode())
    settings.CREDENTIALS_KEYS = [NEW]
    assert credentials_decrypt(_stored(account)) == {"access_token": "a2"}


def test_rotate_credentials_reencrypts_every_account_with_the_first_key_once(settings):
    settings.CREDENTIALS_KEYS = [OLD]
    first = _account(1, {"access_token": "a1", "refresh_token": "r1"})
    second = _account(2, {"access_token": "a2"})
    _account(3)  # no credentials: nothing to do
    settings.CREDENTIALS_KEYS = [NEW, OLD]
    before = {_stored(first), _stored(second)}

    out, _, status = _rotate("--dry-run")
    assert (status, "2 would be re-encrypted" in out) == (0, True)
    assert {_stored(first), _stored(second)} == before

    out, _, status = _rotate()
    assert (status, "2 re-encrypted" in out, "0 already current" in out) == (0, True, True)

    # The old key can go: everything reads with the new one alone.
    settings.CREDENTIALS_KEYS = [NEW]
    assert credentials_decrypt(_stored(first)) == {"access_token": "a1", "refresh_token": "r1"}
    assert credentials_decrypt(_stored(second)) == {"access_token": "a2"}

    # Again: nothing changes.
    settings.CREDENTIALS_KEYS = [NEW, OLD]
    after = {_stored(first), _stored(second)}
    out, _, status = _rotate()
    assert (status, "0 re-encrypted" in out, "2 already current" in out) == (0, True, True)
    assert {_stored(first), _stored(second)} == after


def test_rotate_credentials_goes_past_an_unreadable_account_and_names_it(settings, caplog):
    settings.CREDENTIALS_KEYS = [LOST]
    lost = _account(1, {"access_token": "gone"})
    settings.CREDENTIALS_KEYS = [OLD]
    kept = _account(2, {"access_token": "a2"})
    settings.CREDENTIALS_KEYS = [NEW, OLD]
    with caplog.at_level(logging.ERROR, logger="social.credentials"):
        out, err, status = _rotate()
    assert status == 1
    assert "1 re-encrypted" in out
    assert "1 unreadable" in out
    assert str(lost.pk) in err
    assert any(str(lost.pk) in record.getMessage() for record in caplog.records)
    settings.CREDENTIALS_KEYS = [NEW]
    assert credentials_decrypt(_stored(kept)) == {"access_token": "a2"}
