"""The landing page: what Hashcart is, and the hashtags on offer right now."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.selectors import brand_account, link_platforms
from catalog.selectors import campaign_list_live
from social.models import Platform


def landing(request: HttpRequest) -> HttpResponse:
    """What Hashcart is, how to start (link a card), the brand account to post to on each
    network, and the hashtags on offer right now."""
    brands = [
        (Platform(platform).label, account.handle)
        for platform in link_platforms()
        if (account := brand_account(platform=platform)) is not None
    ]
    return render(
        request,
        "catalog/landing.html",
        {
            "campaigns": campaign_list_live(),
            "brands": brands,
            "window": settings.HASHCART["CONFIRMATION_WINDOW_MINUTES"],
            "sandbox": settings.HASHCART["SANDBOX_PAGE"],
        },
    )
