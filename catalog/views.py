"""The landing page: what Hashcart is, how to start, and the hashtags on offer right now."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.selectors import brand_account, link_platforms
from catalog.models import Campaign
from catalog.selectors import campaign_list_live, campaign_networks_prefetched
from social.models import Platform
from social.selectors import brand_handles


def landing(request: HttpRequest) -> HttpResponse:
    """What Hashcart is, how to start (link a card), the brand account to post to on each
    network, and the hashtags on offer right now, each with where to post it."""
    brands = [
        (Platform(platform).label, account.handle)
        for platform in link_platforms()
        if (account := brand_account(platform=platform)) is not None
    ]
    campaigns = list(campaign_list_live().prefetch_related("listings"))
    handles = brand_handles()
    return render(
        request,
        "catalog/landing.html",
        {
            "campaigns": campaigns,
            "offers": [(c, _where_to_post(c, handles)) for c in campaigns],
            "brands": brands,
            "window": settings.HASHCART["CONFIRMATION_WINDOW_MINUTES"],
            "sandbox": settings.HASHCART["SANDBOX_PAGE"],
        },
    )


def _where_to_post(campaign: Campaign, handles: dict[str, list[str]]) -> list[str]:
    """ "X: @Brand" for each network of ``campaign`` (the network alone when it has no enabled
    brand account yet)."""
    labels = dict(Platform.choices)
    return [
        " ".join([f"{labels.get(p, p)}:", *(f"@{h}" for h in handles[p])])
        if handles.get(p)
        else str(labels.get(p, p))
        for p in campaign_networks_prefetched(campaign)
    ]
