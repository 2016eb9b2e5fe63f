"""Staff must use a second factor to enter the back office (DESIGN §6).

The admin's own login form is replaced by allauth's (``secure_admin_login`` in ``config.urls``),
so a staff login with TOTP set up is asked for its code at sign-in. This middleware closes the
other half: a staff login without TOTP is sent to set it up before any admin page is shown.
``HASHCART["STAFF_MFA_REQUIRED"]`` is on everywhere but the local demo, where it is optional so
that a newcomer can look at the back office without an authenticator app.

An admin page is recognised by its URL namespace, resolved from ``path_info`` (the path below
the site's mount point), never by ``request.path``: served under a prefix (``SCRIPT_NAME`` or
``FORCE_SCRIPT_NAME``), ``request.path`` is ``/prefix/admin/…`` and a test of its start would
let every admin page through.
"""

from collections.abc import Callable

from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve


def _is_admin_page(request: HttpRequest) -> bool:
    try:
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return False
    return admin.site.name in match.namespaces


def staff_mfa_required(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    def middleware(request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            settings.HASHCART["STAFF_MFA_REQUIRED"]
            and user.is_authenticated
            and user.is_staff
            and _is_admin_page(request)
            and not is_mfa_enabled(user)
        ):
            messages.warning(
                request, "The back office needs two-factor authentication: set it up first."
            )
            return redirect("mfa_activate_totp")
        return get_response(request)

    return middleware
