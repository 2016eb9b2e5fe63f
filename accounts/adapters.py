"""django-allauth adapters: every new login is a cardholder, and X only connects an identity.

Signing in is by e-mail and password (verified e-mail, optional TOTP); a social account never
signs anyone in or up. Connecting X from the linking page links the X user id to the signed-in
cardholder, unless that id is already linked to somebody else (DESIGN §6).
"""

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialLogin
from django.contrib import messages
from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import User


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request: HttpRequest, user: Any, form: Any, commit: bool = True) -> Any:
        """A signed-up login becomes a cardholder with default purchase controls."""
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            services.cardholder_for_user(user=user)
        return user


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return False

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        """Only a signed-in cardholder may connect, and only an identity nobody else holds;
        the holder of a claimed identity is told by e-mail."""
        user = request.user
        if not user.is_authenticated or sociallogin.state.get("process") != "connect":
            messages.error(
                request, "Sign in with your e-mail first, then connect X from the linking page."
            )
            raise ImmediateHttpResponse(redirect("account_login"))
        assert isinstance(user, User)  # noqa: S101 (narrowing for the type checker)
        refusal = services.identity_claim_refusal(
            cardholder=services.cardholder_for_user(user=user),
            platform="x",
            platform_user_id=str(sociallogin.account.uid),
            now=timezone.now(),
        )
        if refusal:
            messages.error(request, refusal)
            raise ImmediateHttpResponse(redirect("accounts:link_identity"))

    def get_connect_redirect_url(self, request: HttpRequest, socialaccount: Any) -> str:
        return reverse("accounts:link")
