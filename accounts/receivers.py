"""allauth's notices: an X account was connected (link it as a buying identity); a TOTP
authenticator was removed (revoke the login's API tokens).

allauth has no adapter hook after a connection is saved, only these signals (added, and
updated when an existing connection is confirmed again); the receiver only hands over to the
service, which links once and does nothing more for an identity already linked. The refusal
of an identity held by someone else happens before, in
``accounts.adapters.SocialAccountAdapter.pre_social_login``.
"""

from typing import Any

from allauth.mfa.models import Authenticator
from allauth.mfa.signals import authenticator_removed
from allauth.socialaccount.signals import social_account_added, social_account_updated
from django.dispatch import receiver
from django.utils import timezone

from accounts import services
from accounts.services.api_tokens import api_tokens_revoke


@receiver(social_account_added)
@receiver(social_account_updated)
def x_account_connected(sender: Any, request: Any, sociallogin: Any, **kwargs: Any) -> None:
    account = sociallogin.account
    if account.provider != "twitter_oauth2":
        return
    services.identity_link_and_tell(
        cardholder=services.cardholder_for_user(user=sociallogin.user),
        platform="x",
        platform_user_id=str(account.uid),
        handle=str(account.extra_data.get("username") or account.uid),
        now=timezone.now(),
    )


@receiver(authenticator_removed)
def totp_removed(sender: Any, request: Any, user: Any, authenticator: Any, **kwargs: Any) -> None:
    """API tokens are only for logins with TOTP: removing it revokes them."""
    if authenticator.type == Authenticator.Type.TOTP:
        api_tokens_revoke(user_id=user.pk)
