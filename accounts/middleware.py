"""The back office's middleware: staff must use a second factor (DESIGN §6), and merchant
staff see times in their merchant's zone (``merchant_time_zone``, issue 14).

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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve
from django.utils import timezone


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


def merchant_time_zone(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    """Back-office pages for a merchant's staff run in the merchant's time zone
    (``Merchant.time_zone``), as their ship-by dates and cut-off do; operators, who see every
    merchant, stay in UTC (one order's page shows its merchant's zone: ``orders.admin``).
    Dates show their zone (``config/formats``). Other pages and the API keep UTC."""

    def middleware(request: HttpRequest) -> HttpResponse:
        user = request.user
        if not user.is_authenticated or user.is_superuser or not user.is_staff:
            return get_response(request)
        zone = getattr(getattr(user, "merchant", None), "time_zone", "")
        if not zone or not _is_admin_page(request):
            return get_response(request)
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            return get_response(request)
        # Django renders a view's template response inside ``get_response``: in the zone.
        with timezone.override(tz):
            return get_response(request)

    return middleware
