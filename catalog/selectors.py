"""Reads of the catalogue."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from catalog.models import Campaign, CampaignListing
from social import hashtags
from social.models import Platform


def _on(platform: str) -> Q:
    """Campaigns running on ``platform``: their first network, or one of their listings
    (issue 13, item 7). A campaign saved before listings existed, or written around
    ``catalog.services.campaign_save`` (test factories), runs on its first network alone."""
    return Q(platform=platform) | Q(
        pk__in=CampaignListing.objects.filter(platform=platform).values("campaign_id")
    )


def campaign_networks(*, campaign_ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
    """The platforms each campaign runs on (``networks_in_order``)."""
    ids = set(campaign_ids)
    firsts = dict(Campaign.objects.filter(pk__in=ids).values_list("pk", "platform"))
    listed: dict[int, set[str]] = {pk: set() for pk in firsts}
    rows = CampaignListing.objects.filter(campaign_id__in=list(firsts)).values_list(
        "campaign_id", "platform"
    )
    for pk, platform in rows:
        listed[pk].add(platform)
    return {pk: networks_in_order(first, listed[pk]) for pk, first in firsts.items()}


def campaign_networks_prefetched(campaign: Campaign) -> tuple[str, ...]:
    """The platforms ``campaign`` runs on, from its ``listings`` (prefetch them for lists)."""
    return networks_in_order(campaign.platform, {row.platform for row in campaign.listings.all()})


def networks_in_order(first: str, listed: Iterable[str]) -> tuple[str, ...]:
    """A campaign's networks: its first network, then its other listings in the order of
    ``Platform``'s choices."""
    order = {value: n for n, value in enumerate(Platform.values)}
    others = sorted(set(listed) - {first}, key=lambda p: (order.get(p, len(order)), p))
    return (first, *others)


def campaigns_with_waitlist_length(queryset: QuerySet[Campaign]) -> QuerySet[Campaign]:
    """``queryset`` with ``waitlist_length`` on each campaign: how many wait for a unit, the
    demand it could not serve (orders' waitlist: the expression comes from
    ``HASHCART["CAMPAIGN_WAITLIST_LENGTH"]``, as catalog does not import orders). A subquery,
    so a page of campaigns costs no extra query."""
    expression = import_string(settings.HASHCART["CAMPAIGN_WAITLIST_LENGTH"])()
    return queryset.annotate(waitlist_length=expression)


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
        _on(platform), Q(hashtag_key=hashtag_key) & Q(starts_at__lt=ends_at, ends_at__gt=starts_at)
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
        Campaign.objects.filter(_on(platform), hashtag_key=hashtag_key, ends_at__gt=ends_after),
        exclude_id,
    )


def campaign_keys_starting_with(
    *, platform: str, prefix_key: str, ends_after: datetime, exclude_id: int | None = None
) -> set[str]:
    """The hashtag keys starting with ``prefix_key`` of the platform's campaigns that end after
    ``ends_after``."""
    campaigns = Campaign.objects.filter(
        _on(platform), hashtag_key__startswith=prefix_key, ends_at__gt=ends_after
    )
    return set(_without(campaigns, exclude_id).values_list("hashtag_key", flat=True))


def campaign_confirm_prefixes(
    *, platform: str, ends_after: datetime, exclude_id: int | None = None
) -> set[str]:
    """The confirmation prefixes (as written) of the platform's campaigns that end after
    ``ends_after``."""
    campaigns = Campaign.objects.filter(_on(platform), ends_at__gt=ends_after)
    return set(_without(campaigns, exclude_id).values_list("confirm_prefix", flat=True).distinct())


def _without(campaigns: QuerySet[Campaign], exclude_id: int | None) -> QuerySet[Campaign]:
    return campaigns if exclude_id is None else campaigns.exclude(pk=exclude_id)


def live_hashtags(*, platform: str, now: datetime) -> tuple[str, ...]:
    """The purchase hashtags of the platform's running, unpaused campaigns (for search feeds)."""
    return tuple(
        Campaign.objects.filter(_on(platform), paused=False, starts_at__lte=now, ends_at__gt=now)
        .order_by("hashtag")
        .values_list("hashtag", flat=True)
    )


# --- Campaigns for deciding posts, cached between batches ------------------------------------
# Confirmation prefixes stay in use this long after their campaign ends: orders may still be
# confirmed, or answered "too late" (``catalog.services`` refuses look-alikes as long).
PREFIX_GRACE = timedelta(days=1)


@dataclass(frozen=True)
class CampaignIndex:
    """Every campaign of one platform by hashtag key (with its product), and the confirmation
    prefixes of its campaigns. Read-only: shared by the batches of a process."""

    by_key: dict[str, tuple[Campaign, ...]]
    # (prefix key, latest end among the campaigns using it)
    prefixes: tuple[tuple[str, datetime], ...]

    def prefix_keys(self, *, now: datetime) -> tuple[str, ...]:
        """Matching keys of the prefixes in use at ``now`` (recent campaigns)."""
        return tuple(key for key, ends_at in self.prefixes if ends_at >= now - PREFIX_GRACE)


def campaigns_stock_left(campaign_ids: Iterable[int]) -> dict[int, int]:
    """Units left in each campaign, as committed at this moment, unlocked: what a decision
    that sells nothing may rely on (it is ordered before any later release). Selling reads
    it again under ``catalog.services.campaigns_lock``."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return {}
    rows = Campaign.objects.filter(pk__in=ids).values_list("pk", "stock_total", "stock_reserved")
    return {pk: total - reserved for pk, total, reserved in rows}


# (database, platform) -> (version, index)
_indexes: dict[tuple[str, str], tuple[tuple[object, ...], CampaignIndex]] = {}


def campaign_indexes(*, platforms: Iterable[str]) -> dict[str, CampaignIndex]:
    """The ``CampaignIndex`` of each platform, for matching posts to campaigns.

    Kept in the process between calls and valid while the campaigns and products stay as they
    were: one small query per call reads their version (count, top id, latest ``updated_at``
    of campaigns and of products; every campaign write goes through ``save`` or sets
    ``updated_at``), and a platform's index is read again when it changed. Not cached on
    SQLite (the embedded mode), where ids come back after a rollback. What moves under locks
    (``stock_reserved``) is never read from here: callers lock the campaigns they sell from.
    """
    wanted = set(platforms)
    if not wanted:
        return {}
    if connection.vendor != "postgresql":
        return {platform: _index_load(platform) for platform in wanted}
    version = tuple(
        Campaign.objects.aggregate(
            n=Count("id"),
            top=Max("id"),
            campaigns=Max("updated_at"),
            products=Max("product__updated_at"),
        ).values()
    )
    database = str(connection.settings_dict["NAME"])
    found = {}
    for platform in wanted:
        cached = _indexes.get((database, platform))
        if cached is None or cached[0] != version:
            cached = _indexes[(database, platform)] = (version, _index_load(platform))
        found[platform] = cached[1]
    return found


def _index_load(platform: str) -> CampaignIndex:
    by_key: dict[str, list[Campaign]] = {}
    latest: dict[str, datetime] = {}
    for campaign in Campaign.objects.filter(_on(platform)).select_related("product"):
        by_key.setdefault(campaign.hashtag_key, []).append(campaign)
        prefix = hashtags.hashtag_key(campaign.confirm_prefix)
        latest[prefix] = max(latest.get(prefix, campaign.ends_at), campaign.ends_at)
    return CampaignIndex(
        by_key={key: tuple(found) for key, found in by_key.items()},
        prefixes=tuple(latest.items()),
    )
