"""The landing page: what Hashcart is, and the hashtags on offer right now."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from catalog.selectors import campaign_list_live


def landing(request: HttpRequest) -> HttpResponse:
    """What Hashcart is, and the hashtags on offer right now."""
    return render(
        request,
        "catalog/landing.html",
        {
            "campaigns": campaign_list_live(),
            "sandbox": settings.HASHCART["SANDBOX_PAGE"],
        },
    )
