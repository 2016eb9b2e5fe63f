"""Reads of the catalogue."""

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from catalog.models import Campaign


def campaign_list_live(*, now: datetime | None = None) -> QuerySet[Campaign]:
    """Campaigns running at ``now`` (default: the current time), not paused, soonest end first."""
    now = now or timezone.now()
    return (
        Campaign.objects.filter(starts_at__lte=now, ends_at__gt=now, paused=False)
        .select_related("product", "merchant")
        .order_by("ends_at", "id")
    )


def campaign_find_clashing(
    *,
    platform: str,
    hashtag_key: str,
    starts_at: datetime,
    ends_at: datetime,
    exclude_id: int | None = None,
) -> QuerySet[Campaign]:
    """Campaigns on ``platform`` that hold ``hashtag_key`` at any time in [starts_at, ends_at)."""
    clashing = Campaign.objects.filter(
        Q(platform=platform, hashtag_key=hashtag_key)
        & Q(starts_at__lt=ends_at, ends_at__gt=starts_at)
    )
    if exclude_id is not None:
        clashing = clashing.exclude(pk=exclude_id)
    return clashing


def live_hashtags(*, platform: str, now: datetime) -> tuple[str, ...]:
    """The purchase hashtags of the platform's running, unpaused campaigns (for search feeds)."""
    return tuple(
        Campaign.objects.filter(
            platform=platform, paused=False, starts_at__lte=now, ends_at__gt=now
        )
        .order_by("hashtag")
        .values_list("hashtag", flat=True)
    )
