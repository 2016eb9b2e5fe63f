"""A platform account's session credentials, renewed once under the account row's lock.

X's OAuth refresh tokens and Bluesky's refresh JWTs are single use: two workers renewing at
once would burn the token and lock the brand account out. So a renewal happens under the
account row's lock, and the credentials are read again under it: the second caller finds the
first one's new credentials and uses them.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import transaction

from social.credentials import credentials_decrypt, credentials_encrypt
from social.models import PlatformAccount

Credentials = dict[str, Any]


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
    work waits on it but the renewal of the same account. Whatever ``renew`` raises (the
    adapter's ``AccountAuthError``, ``TransientError``…) reaches the caller and nothing is
    stored.
    """
    stored = PlatformAccount.objects.values_list("credentials_encrypted", flat=True).get(
        pk=account_id
    )
    credentials = credentials_decrypt(stored)
    if fresh(credentials, now):
        return credentials
    with transaction.atomic():
        account = PlatformAccount.objects.select_for_update().get(pk=account_id)
        credentials = credentials_decrypt(account.credentials_encrypted)
        if fresh(credentials, now):
            return credentials  # another caller renewed them meanwhile
        renewed = renew(credentials)
        account.credentials_encrypted = credentials_encrypt(renewed)
        account.save(update_fields=["credentials_encrypted", "updated_at"])
        return renewed
