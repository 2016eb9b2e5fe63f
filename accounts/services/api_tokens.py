"""Merchant API tokens (DESIGN §10.3): stored hashed, expiring, for staff with TOTP only.

A token acts as its login through the API without the login's second factor, so one is issued
only to a login that has one: staff of a merchant, or an operator, with a TOTP authenticator
set up. django-rest-knox keeps only a digest of each token (a stolen database holds no usable
token) and an expiry (``HASHCART_API_TOKEN_DAYS``); removing the TOTP authenticator revokes
the login's tokens (``accounts.receivers``).
"""

from allauth.mfa.models import Authenticator
from django.db import transaction
from knox.models import AuthToken

from accounts.models import User
from core.exceptions import ApplicationError


def _has_totp(user: User) -> bool:
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


@transaction.atomic
def api_token_issue(*, login: str, revoke_others: bool) -> tuple[AuthToken, str]:
    """A new token for the staff login ``login`` (its e-mail or username): the token row and
    the token itself, which is shown once and never stored. ``revoke_others`` deletes the
    login's earlier tokens in the same transaction.

    Raises ``ApplicationError`` when ``login`` is no merchant's staff or operator, or has no
    TOTP authenticator (the message says why and what to do)."""
    user = (
        User.objects.filter(email__iexact=login).first()
        or User.objects.filter(username=login).first()
    )
    if user is None or not user.is_active or not user.is_staff:
        raise ApplicationError(f"{login} is not a merchant's staff login or an operator.")
    if not (user.is_superuser or user.merchant_id):
        raise ApplicationError(f"{login} is not a merchant's staff login or an operator.")
    if not _has_totp(user):
        raise ApplicationError(
            f"{login} has no TOTP authenticator. An API token acts as its login without a "
            "second factor, so it is issued only to logins that have one: sign in to the back "
            "office, set up TOTP, then ask again."
        )
    if revoke_others:
        AuthToken.objects.filter(user=user).delete()
    instance, token = AuthToken.objects.create(user=user)
    return instance, token


def api_tokens_revoke(*, user_id: int) -> int:
    """Delete every API token of the login; returns how many there were."""
    deleted, _ = AuthToken.objects.filter(user_id=user_id).delete()
    return deleted
