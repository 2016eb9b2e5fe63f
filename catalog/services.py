"""Writes to the catalogue: campaigns are checked and saved here, whatever the entry point.

A hashtag held by another merchant's live or scheduled campaign is refused with one message,
whatever dates are asked for: a refusal that depended on the dates would let a competitor find
the launch time by bisection. Such refusals (and prefixes refused for looking like someone's
hashtag) are throttled per login (``HASHCART_HASHTAG_REFUSALS_PER_HOUR``, counted in the Django
cache) and written to the back office's audit log, the admin's ``LogEntry`` (the log Django
keeps of staff changes; operators read it in the database or the admin's history), with what
was refused and why; the message shown names no one and no date. A campaign lasts at most
``HASHCART_MAX_CAMPAIGN_DAYS`` and ends within that many days of now, so that no hashtag can be
held far ahead.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import F, Sum
from django.db.transaction import TransactionManagementError
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.services.linking import LINK_PREFIX
from catalog.models import Campaign, CampaignListing, CampaignVariantStock
from catalog.selectors import (
    PREFIX_GRACE,
    campaign_confirm_prefixes,
    campaign_find_clashing,
    campaign_holding_key,
    campaign_keys_starting_with,
)
from core.codes import CONFIRMATION_CODE, LINK_CODE
from social.hashtags import hashtag_key, is_valid_hashtag
from social.models import Platform

# A confirmation hashtag is the prefix followed by a code like this one (DESIGN §3.3).
HASHTAG_KEY_MAX_LENGTH = Campaign._meta.get_field("hashtag_key").max_length or 0
_SAMPLE_CODE = CONFIRMATION_CODE.sample
_THROTTLE_WINDOW_SECONDS = 3600

Actor = AbstractBaseUser | AnonymousUser | None


def _unavailable(tag: str) -> str:
    # One message for every refusal of this kind: it must say nothing of whose or when.
    return f"#{tag} is unavailable on this platform. Choose another hashtag."


def _prefix_unavailable(prefix: str) -> str:
    return (
        f"Confirmation hashtags #{prefix}<CODE> could be mistaken for a campaign's hashtag or "
        "the #Link<CODE> tag. Choose another confirmation prefix."
    )


_THROTTLED = "Too many refused hashtags or prefixes from this login: try again in an hour."


@dataclass(frozen=True, slots=True)
class CampaignTerms:
    """What decides whether a campaign may hold its hashtag: checked by ``campaign_validate``."""

    platform: str
    hashtag: str
    confirm_prefix: str
    starts_at: datetime
    ends_at: datetime
    # The campaign's merchant (its product's): clashes with its own campaigns may be explained.
    merchant_id: int | None = None
    # The campaign's other networks besides ``platform`` (issue 13, item 7): the hashtag must
    # be available on each of them.
    other_platforms: tuple[str, ...] = ()

    @property
    def networks(self) -> tuple[str, ...]:
        """Every platform the campaign runs on, ``platform`` first, each once."""
        return tuple(dict.fromkeys((self.platform, *self.other_platforms)))


def campaign_clean_hashtag(value: str) -> str:
    """The hashtag as it will be displayed: surrounding space and one leading ``#`` removed."""
    value = value.strip()
    return value[1:] if value[:1] in ("#", "\uff03") else value


def campaign_validate(
    *,
    terms: CampaignTerms,
    now: datetime,
    campaign_id: int | None = None,
    actor: Actor = None,
) -> None:
    """Raise ``ValidationError`` (keyed by field) unless ``terms`` may be saved.

    Checks: the hashtag and the confirmation hashtag are valid by twitter-text's rules, the
    hashtag is not all digits and its matching key fits its column; the campaign ends after it
    starts and, when new, in the future, lasts at most ``MAX_CAMPAIGN_DAYS`` and ends within
    that many days of ``now``; the hashtag is unavailable while another merchant's campaign on
    any of the campaign's platforms (``terms.networks``) holds its key (live or scheduled,
    whatever the dates) and the merchant's own campaigns may not hold it at overlapping dates;
    ``#<prefix><CODE>`` can be confused with no live or scheduled hashtag nor the
    ``#Link<CODE>`` tag, and the hashtag with no confirmation prefix in use. Refusals of the
    last two kinds are counted for ``actor`` (throttled past ``HASHTAG_REFUSALS_PER_HOUR``) and
    written to its audit log (``LogEntry``).
    """
    errors = campaign_terms_errors(terms=terms, now=now, campaign_id=campaign_id)
    if "hashtag" not in errors and "ends_at" not in errors and "confirm_prefix" not in errors:
        _check_availability(terms, now=now, campaign_id=campaign_id, actor=actor, errors=errors)
    if errors:
        raise ValidationError(errors)


def campaign_terms_errors(
    *, terms: CampaignTerms, now: datetime, campaign_id: int | None = None
) -> dict[str, list[str]]:
    """The refusals of ``terms`` that need no other campaign, by field: the hashtag's and the
    confirmation hashtag's validity, and the dates (``campaign_validate``'s first checks; the
    CSV import runs them too, so both say the same)."""
    errors: dict[str, list[str]] = {}
    tag = terms.hashtag
    if tag.isdigit():
        errors.setdefault("hashtag", []).append("A hashtag cannot be all digits.")
    elif not is_valid_hashtag(tag):
        errors.setdefault("hashtag", []).append(
            "Not a valid hashtag: use letters, digits and underscores, with at least one letter, "
            "and no spaces or punctuation."
        )
    elif len(hashtag_key(tag)) > HASHTAG_KEY_MAX_LENGTH:
        # Some letters expand under NFKC (the ligature U+FDFA into 18 characters): the stored
        # matching key must hold, or saving would fail in the database.
        errors.setdefault("hashtag", []).append(
            "This hashtag is too long once normalised for matching: use fewer or simpler letters."
        )
    if not is_valid_hashtag(terms.confirm_prefix + _SAMPLE_CODE):
        errors.setdefault("confirm_prefix", []).append(
            f"#{terms.confirm_prefix}{_SAMPLE_CODE} would not be a valid hashtag."
        )
    max_days = timedelta(days=settings.HASHCART["MAX_CAMPAIGN_DAYS"])
    if terms.ends_at <= terms.starts_at:
        errors.setdefault("ends_at", []).append("The campaign must end after it starts.")
    elif campaign_id is None and terms.ends_at <= now:
        errors.setdefault("ends_at", []).append("A new campaign must end in the future.")
    elif terms.ends_at - terms.starts_at > max_days or terms.ends_at - now > max_days:
        errors.setdefault("ends_at", []).append(
            f"A campaign lasts at most {max_days.days} days and ends within {max_days.days} "
            "days from now."
        )
    return errors


def _check_availability(
    terms: CampaignTerms,
    *,
    now: datetime,
    campaign_id: int | None,
    actor: Actor,
    errors: dict[str, list[str]],
) -> None:
    """The hashtag and prefix checks of ``campaign_validate``; adds to ``errors``."""
    tag, prefix = terms.hashtag, terms.confirm_prefix
    key, prefix_key = hashtag_key(tag), hashtag_key(prefix)
    if _throttled(actor):
        errors.setdefault("hashtag", []).append(_THROTTLED)
        _audit(actor, terms, campaign_id, "throttled: too many refused hashtags or prefixes")
        return
    reasons: list[str] = []
    # On every network of the campaign (one message whichever clashes, so that it tells no more
    # than a single-network refusal): held now or later by anyone, or at the asked dates (past
    # ones included, as the database constraint would refuse those too).
    holders: set[tuple[int, int, datetime, datetime]] = set()
    prefixes_in_use: set[str] = set()
    keys: set[str] = set()
    for platform in terms.networks:
        live = campaign_holding_key(
            platform=platform, hashtag_key=key, ends_after=now, exclude_id=campaign_id
        )
        overlapping = campaign_find_clashing(
            platform=platform,
            hashtag_key=key,
            starts_at=terms.starts_at,
            ends_at=terms.ends_at,
            exclude_id=campaign_id,
        )
        holders |= set(
            (live | overlapping).values_list("pk", "merchant_id", "starts_at", "ends_at")
        )
        prefixes_in_use |= campaign_confirm_prefixes(
            platform=platform, ends_after=now - PREFIX_GRACE, exclude_id=campaign_id
        )
        keys |= campaign_keys_starting_with(
            platform=platform, prefix_key=prefix_key, ends_after=now, exclude_id=campaign_id
        )
    others = sorted(pk for pk, merchant_id, _, _ in holders if merchant_id != terms.merchant_id)
    own_overlapping = sorted(
        (starts_at, ends_at)
        for _, merchant_id, starts_at, ends_at in holders
        if merchant_id == terms.merchant_id
        and starts_at < terms.ends_at
        and ends_at > terms.starts_at
    )
    if others:
        reasons.append(f"hashtag held by campaign(s) {others}")
        errors.setdefault("hashtag", []).append(_unavailable(tag))
    elif any(_confirmation_looks_like(hashtag_key(p), key) for p in prefixes_in_use | {prefix}):
        reasons.append("hashtag looks like a confirmation hashtag of a prefix in use")
        errors.setdefault("hashtag", []).append(_unavailable(tag))
    elif own_overlapping:
        starts_at, ends_at = own_overlapping[0]
        errors.setdefault("hashtag", []).append(
            f"#{tag} is held by another of your campaigns from {starts_at:%Y-%m-%d %H:%M} to "
            f"{ends_at:%Y-%m-%d %H:%M} UTC. Choose another hashtag or other dates."
        )
    link_tag = LINK_PREFIX + "x" * LINK_CODE.length  # its shape: the letters do not matter
    if any(
        _confirmation_looks_like(prefix_key, other) for other in keys
    ) or _confirmation_looks_like(prefix_key, link_tag, exact_prefix=LINK_PREFIX):
        reasons.append("confirmation prefix looks like a hashtag in use or the link tag")
        errors.setdefault("confirm_prefix", []).append(_prefix_unavailable(prefix))
    if reasons:
        _count_refusal(actor)
        _audit(actor, terms, campaign_id, "refused: " + "; ".join(reasons))


def _confirmation_looks_like(prefix_key: str, key: str, *, exact_prefix: str = "") -> bool:
    """Whether ``#<prefix><CODE>`` can be the hashtag ``key`` (matching keys): it is the prefix
    and five more characters. With ``exact_prefix``, ``key`` stands for every hashtag made of
    that text and as many characters as ``key`` has after it (the ``#Link<CODE>`` tag)."""
    if len(key) != len(prefix_key) + CONFIRMATION_CODE.length:
        return False
    if exact_prefix:
        shared = min(len(exact_prefix), len(prefix_key))
        return prefix_key[:shared] == exact_prefix[:shared]
    return key.startswith(prefix_key)


def _throttle_key(actor: Actor) -> str | None:
    if actor is None or not actor.is_authenticated:
        return None
    return f"catalog:hashtag-refusals:{actor.pk}"


def _throttled(actor: Actor) -> bool:
    cache_key = _throttle_key(actor)
    if cache_key is None:
        return False
    return int(cache.get(cache_key, 0)) >= settings.HASHCART["HASHTAG_REFUSALS_PER_HOUR"]


def _count_refusal(actor: Actor) -> None:
    cache_key = _throttle_key(actor)
    if cache_key is None:
        return
    # The window starts at the first refusal; incr keeps the key's expiry.
    cache.add(cache_key, 0, timeout=_THROTTLE_WINDOW_SECONDS)
    try:
        cache.incr(cache_key)
    except ValueError:  # expired between add and incr: start a new window
        cache.set(cache_key, 1, timeout=_THROTTLE_WINDOW_SECONDS)


def _audit(actor: Actor, terms: CampaignTerms, campaign_id: int | None, what: str) -> None:
    """One ``LogEntry`` row for a refused campaign write (only for a signed-in ``actor``)."""
    if actor is None or not actor.is_authenticated:
        return
    LogEntry.objects.create(
        user_id=actor.pk,
        content_type=ContentType.objects.get_for_model(Campaign),
        object_id=str(campaign_id) if campaign_id is not None else None,
        object_repr=f"#{terms.hashtag}"[:200],
        action_flag=CHANGE,
        change_message=(
            f"Campaign write {what} (platform {', '.join(terms.networks)}, "
            f"hashtag #{terms.hashtag}, "
            f"prefix {terms.confirm_prefix}, {terms.starts_at:%Y-%m-%d %H:%M} to "
            f"{terms.ends_at:%Y-%m-%d %H:%M})"
        ),
    )


def campaign_save(
    *,
    campaign: Campaign,
    now: datetime,
    actor: Actor = None,
    platforms: Sequence[str] | None = None,
) -> Campaign:
    """Validate and save a new or changed ``campaign``; its merchant is its product's merchant.

    ``platforms`` are the networks it runs on (issue 13, item 7), the first becoming
    ``campaign.platform``; without them, a campaign runs on ``campaign.platform`` and the
    other networks it already had. One ``CampaignListing`` per network is written in the same
    transaction, with the campaign's key and dates: the database refuses a clash on any of them.

    Raises ``ValidationError`` as ``campaign_validate`` does (counting and logging refusals for
    ``actor``), also when a concurrent writer took the hashtag between the check and the write
    (the database constraint decides that race; its message is the same "unavailable").
    """
    networks = _networks_of(campaign, platforms)
    campaign.platform = networks[0]
    campaign.hashtag = campaign_clean_hashtag(campaign.hashtag)
    campaign.hashtag_key = hashtag_key(campaign.hashtag)
    campaign.merchant_id = campaign.product.merchant_id
    terms = CampaignTerms(
        platform=campaign.platform,
        hashtag=campaign.hashtag,
        confirm_prefix=campaign.confirm_prefix,
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        merchant_id=campaign.merchant_id,
        other_platforms=networks[1:],
    )
    campaign_validate(terms=terms, now=now, campaign_id=campaign.pk, actor=actor)
    stock_before = (
        Campaign.objects.filter(pk=campaign.pk).values_list("stock_total", flat=True).first()
        if campaign.pk is not None
        else None
    )
    if campaign.pk is not None:
        # A campaign selling variants holds the sum of their stocks (``catalog.variant_services``).
        summed = CampaignVariantStock.objects.filter(campaign_id=campaign.pk).aggregate(
            total=Sum("stock_total")
        )["total"]
        if summed is not None:
            campaign.stock_total = summed
        # Stock may shrink only down to what orders already hold.
        reserved = Campaign.objects.filter(pk=campaign.pk).values_list("stock_reserved", flat=True)
        if campaign.stock_total < reserved.get():
            raise ValidationError({"stock_total": "Orders already hold more units than this."})
    new = campaign.pk is None
    try:
        with transaction.atomic():
            if new:
                campaign.save()
            else:
                # stock_reserved moves only by conditional updates elsewhere: never write it here.
                campaign.save(
                    update_fields=[
                        f.attname
                        for f in Campaign._meta.concrete_fields
                        if not f.primary_key and f.attname not in ("stock_reserved", "created_at")
                    ]
                )
            _listings_write(campaign, networks)
    except (IntegrityError, OperationalError) as exc:
        if new:  # the insert was rolled back with the listings: the campaign is still unsaved
            campaign.pk = None
            campaign._state.adding = True
        # Writers inserting the same hashtag at once can deadlock on the exclusion constraint's
        # check (PostgreSQL aborts one of them, SQLSTATE 40P01): that one lost the race too.
        lost_race = isinstance(exc, IntegrityError) or getattr(exc.__cause__, "sqlstate", "") in (
            "40P01",
            "40001",
        )
        if not lost_race:
            raise
        held = Campaign.objects.filter(pk=campaign.pk).values_list("stock_reserved", flat=True)
        if campaign.pk is not None and campaign.stock_total < held.get():
            raise ValidationError(
                {"stock_total": "Orders already hold more units than this."}
            ) from exc
        # Taken meanwhile: the same words as any clash, so the race tells nothing more.
        _count_refusal(actor)
        _audit(actor, terms, campaign.pk, "refused: hashtag taken by a concurrent write")
        raise ValidationError({"hashtag": _unavailable(campaign.hashtag)}) from exc
    if stock_before is not None and campaign.stock_total > stock_before:
        _stock_added(campaign_ids=[campaign.pk])
    return campaign


def _networks_of(campaign: Campaign, platforms: Sequence[str] | None) -> tuple[str, ...]:
    """The networks ``campaign`` is to run on, first network first, each once: ``platforms``,
    or ``campaign.platform`` and the other networks it already lists."""
    if platforms is None:
        listed: list[str] = []
        if campaign.pk is not None:
            stored = Campaign.objects.filter(pk=campaign.pk).values_list("platform", flat=True)
            # A changed first network replaces the old one; the others stay.
            old_first = stored.first()
            listed = [
                p
                for p in CampaignListing.objects.filter(campaign_id=campaign.pk)
                .order_by("id")
                .values_list("platform", flat=True)
                if p != old_first
            ]
        platforms = [campaign.platform, *listed]
    networks = tuple(dict.fromkeys(platforms))
    if not networks:
        raise ValidationError({"platforms": "Choose at least one network."})
    unknown = [p for p in networks if p not in Platform.values]
    if unknown:
        raise ValidationError({"platforms": f"Unknown network: {', '.join(unknown)}."})
    return networks


def _listings_write(campaign: Campaign, networks: tuple[str, ...]) -> None:
    """Make the campaign's listings its ``networks``, each with its key and dates (inside the
    campaign's save transaction: a clash raises ``IntegrityError`` and undoes both)."""
    listings = CampaignListing.objects.filter(campaign_id=campaign.pk)
    listings.exclude(platform__in=networks).delete()
    listings.update(
        hashtag_key=campaign.hashtag_key, starts_at=campaign.starts_at, ends_at=campaign.ends_at
    )
    have = set(listings.values_list("platform", flat=True))
    CampaignListing.objects.bulk_create(
        CampaignListing(
            campaign_id=campaign.pk,
            platform=platform,
            hashtag_key=campaign.hashtag_key,
            starts_at=campaign.starts_at,
            ends_at=campaign.ends_at,
        )
        for platform in networks
        if platform not in have
    )
    # A caller that prefetched the listings reads the new ones from now on.
    getattr(campaign, "_prefetched_objects_cache", {}).pop("listings", None)


def _stock_added(*, campaign_ids: list[int]) -> None:
    """Units became free to sell (stock raised, a campaign resumed): tell
    ``HASHCART["CAMPAIGN_STOCK_ADDED_HANDLER"]`` (orders' waitlist promotion) after the commit."""
    handler = import_string(settings.HASHCART["CAMPAIGN_STOCK_ADDED_HANDLER"])
    transaction.on_commit(partial(handler, campaign_ids=campaign_ids))


def campaign_set_paused(*, campaign_ids: list[int], paused: bool) -> int:
    """Pause or resume the given campaigns; returns how many changed. Purchases posted while a
    campaign is paused are decided ``campaign_closed`` (DESIGN §3.2)."""
    # ``updated_at`` too: deciders cache campaigns until it moves (``campaign_indexes``).
    changed = (
        Campaign.objects.filter(pk__in=campaign_ids)
        .exclude(paused=paused)
        .update(paused=paused, updated_at=timezone.now())
    )
    if changed and not paused:
        _stock_added(campaign_ids=sorted(campaign_ids))  # units freed while paused wait no more
    return changed


def campaigns_lock(campaign_ids: Iterable[int]) -> dict[int, Campaign]:
    """Lock the given campaigns' rows and return them by id. The one way anything locks a
    campaign: in id order, so that two writers locking overlapping sets cannot deadlock, and with
    ``HASHCART["LOCK_TIMEOUT_SECONDS"]`` as the transaction's lock timeout on PostgreSQL, so that a
    stuck holder fails its waiters loudly instead of stopping them for good.

    Campaign rows come before the order, controls-after and shipment rows their writers lock
    (DESIGN §5). Must run inside a transaction: a row lock outside one ends at once."""
    if not transaction.get_connection().in_atomic_block:
        raise TransactionManagementError("campaigns_lock() needs an open transaction")
    ids = sorted(set(campaign_ids))
    if not ids:
        return {}
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        timeout_ms = int(settings.HASHCART["LOCK_TIMEOUT_SECONDS"] * 1000)
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{timeout_ms}ms"])
    return {c.pk: c for c in Campaign.objects.select_for_update().filter(pk__in=ids).order_by("pk")}


def stock_reserve(*, campaign_id: int, units: int, variant_id: int | None = None) -> None:
    """Hold ``units`` more of the campaign's stock, and of its ``variant_id`` stock when given
    (the campaign's own counts stay the sum of its variants'). Call under ``campaigns_lock``
    after checking what remains; the check constraints back the check should anything slip."""
    if variant_id is not None:
        CampaignVariantStock.objects.filter(campaign_id=campaign_id, variant_id=variant_id).update(
            stock_reserved=F("stock_reserved") + units
        )
    Campaign.objects.filter(pk=campaign_id).update(stock_reserved=F("stock_reserved") + units)


def stock_release(*, campaign_id: int, units: int = 1, variant_id: int | None = None) -> None:
    """Give ``units`` back to the campaign (and to its ``variant_id`` stock). Call only after
    winning the order's transition out of a stock-holding state, so each unit is released
    exactly once; the check constraints reject a release below zero."""
    if variant_id is not None:
        CampaignVariantStock.objects.filter(campaign_id=campaign_id, variant_id=variant_id).update(
            stock_reserved=F("stock_reserved") - units
        )
    Campaign.objects.filter(pk=campaign_id).update(stock_reserved=F("stock_reserved") - units)
