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


def campaign_holding_key(
    *, platform: str, hashtag_key: str, ends_after: datetime, exclude_id: int | None = None
) -> QuerySet[Campaign]:
    """Campaigns on ``platform`` holding ``hashtag_key`` that end after ``ends_after`` (live or
    scheduled), whatever their dates."""
    return _without(
        Campaign.objects.filter(platform=platform, hashtag_key=hashtag_key, ends_at__gt=ends_after),
        exclude_id,
    )


def campaign_keys_starting_with(
    *, platform: str, prefix_key: str, ends_after: datetime, exclude_id: int | None = None
) -> set[str]:
    """The hashtag keys starting with ``prefix_key`` of the platform's campaigns that end after
    ``ends_after``."""
    campaigns = Campaign.objects.filter(
        platform=platform, hashtag_key__startswith=prefix_key, ends_at__gt=ends_after
    )
    return set(_without(campaigns, exclude_id).values_list("hashtag_key", flat=True))


def campaign_confirm_prefixes(
    *, platform: str, ends_after: datetime, exclude_id: int | None = None
) -> set[str]:
    """The confirmation prefixes (as written) of the platform's campaigns that end after
    ``ends_after``."""
    campaigns = Campaign.objects.filter(platform=platform, ends_at__gt=ends_after)
    return set(_without(campaigns, exclude_id).values_list("confirm_prefix", flat=True).distinct())


def _without(campaigns: QuerySet[Campaign], exclude_id: int | None) -> QuerySet[Campaign]:
    return campaigns if exclude_id is None else campaigns.exclude(pk=exclude_id)


def live_hashtags(*, platform: str, now: datetime) -> tuple[str, ...]:
    """The purchase hashtags of the platform's running, unpaused campaigns (for search feeds)."""
    return tuple(
        Campaign.objects.filter(
            platform=platform, paused=False, starts_at__lte=now, ends_at__gt=now
        )
        .order_by("hashtag")
        .values_list("hashtag", flat=True)
    )
