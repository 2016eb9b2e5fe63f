"""A platform account's session credentials, renewed once under the account row's lock.

X's OAuth refresh tokens and Bluesky's refresh JWTs are single use: two workers renewing at
once would burn the token and lock the brand account out. So a renewal happens under the
account row's lock, and the credentials are read again under it: the second caller finds the
first one's new credentials and uses them.

The renewal talks to the platform under that lock (a refresh, then maybe a login: up to two
network calls), so its waiters wait a bounded time (``LOCK_TIMEOUT``, on PostgreSQL) and then
retry later (``TransientError``) instead of piling up behind a slow service.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import OperationalError, transaction

from social.credentials import credentials_decrypt, credentials_encrypt
from social.models import PlatformAccount
from social.platforms.base import TransientError

Credentials = dict[str, Any]
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock timeout
# How long a renewal waits for another one of the same account to finish.
LOCK_TIMEOUT = timedelta(seconds=5)


def session_credentials(
    *,
    account_id: int,
    now: datetime,
    fresh: Callable[[Credentials, datetime], bool],
    renew: Callable[[Credentials], Credentials],
) -> Credentials:
    """The account's credentials, renewed first if ``fresh`` says they are not.

    Reads them without a lock; when they are not fresh, takes the account row's lock, reads
    them again (another caller may have renewed them meanwhile: then they are returned as
    they are) and calls ``renew`` with them, still under the lock, storing what it returns
    encrypted. ``renew`` talks to the platform under that one row's lock, on purpose: no other
    work waits on it but the renewal of the same account, and that at most ``LOCK_TIMEOUT``
    (the transaction's lock timeout on PostgreSQL): then it raises ``TransientError`` (the
    account is busy renewing; retry). Whatever ``renew`` raises (the adapter's
    ``AccountAuthError``, ``TransientError``…) reaches the caller and nothing is stored.
    """
    stored = PlatformAccount.objects.values_list("credentials_encrypted", flat=True).get(
        pk=account_id
    )
    credentials = credentials_decrypt(stored)
    if fresh(credentials, now):
        return credentials
    with transaction.atomic():
        connection = transaction.get_connection()
        if connection.vendor == "postgresql":
            milliseconds = int(LOCK_TIMEOUT.total_seconds() * 1000)
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{milliseconds}ms"])
        try:
            account = PlatformAccount.objects.select_for_update().get(pk=account_id)
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            raise TransientError(
                f"account {account_id} is busy renewing its session: retry shortly"
            ) from exc
        credentials = credentials_decrypt(account.credentials_encrypted)
        if fresh(credentials, now):
            return credentials  # another caller renewed them meanwhile
        renewed = renew(credentials)
        account.credentials_encrypted = credentials_encrypt(renewed)
        account.save(update_fields=["credentials_encrypted", "updated_at"])
        return renewed
