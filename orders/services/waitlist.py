"""The waitlist after the decision: promotion, leaving, closing (issue 13).

Promotion. Whenever a unit of a campaign comes back (expiry, cancel, decline, refund or return
with restock: every release goes through ``orders.services.common.unit_released``; staff raising
``stock_total``: ``catalog``'s ``CAMPAIGN_STOCK_ADDED_HANDLER``), ``WAITLIST_PROMOTE_HANDLER``
runs ``waitlist_promote`` in a task after the commit, so a release never fails because of a
promotion; the expiry stage runs ``waitlists_promote_due`` as the sweep that catches any task
lost. The first waiting entry gets a pending order exactly as a new purchase: its post is the
order's purchase post, so the confirmation request is a reply to it, posted through the same
outbox, and the window opens when it is posted; the same checks (consent, card, address,
cooling-off, pause, per-order cap, per-buyer limit, daily cap) and the same sales tax apply, at
promotion time. An entry no longer eligible is ``skipped`` with an e-mail, and the next one is
tried. A promoted buyer who does not confirm lets the order expire: its unit comes back and the
next one is promoted.

Locks, in the order of ``orders.services.decide``: the purchase controls of the first waiting
cardholders (read unlocked, then ``controls_lock_many``), then the campaign
(``campaigns_lock``), then the entries (``FOR UPDATE SKIP LOCKED``, read after the campaign's
lock, so they are the queue as committed by the last promoter). Two promoters of one campaign
queue on its row: the second sees the units the first reserved and the entries it promoted, so
a unit released twice at once promotes two different people, never one person twice. An entry
whose cardholder's controls were not locked first (it joined ahead meanwhile) stops the run;
it is promoted by the next one (``waitlist_promote`` says to run again).

A network tax calculator (Stripe Tax) is asked before any lock, for the first waiting entries
(``Prequoted``); an entry whose question was not asked ahead, or whose answer failed, stops the
run and waits for the next one (its place is kept).
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet

from accounts.selectors import (
    BuyerLimits,
    buyer_snapshots,
    buyers_for_identities,
    cardholders_with_users,
    purchase_blocked_reason,
)
from accounts.services import controls_lock_many
from catalog.grammar import Offer, Reading, VariantChoice
from catalog.models import Campaign
from catalog.selectors import campaign_list_live, campaigns_stock_left
from catalog.services import campaigns_lock, stock_reserve
from catalog.variant_selectors import variant_stock_left
from orders import messages
from orders.models import Order, WaitlistEntry, WaitlistStatus
from orders.selectors import waitlist_queue
from orders.services.common import waitlist_promote_soon
from orders.services.decide.asking import readings
from orders.services.decide.batch import Batch
from orders.services.decide.purchases import _limit_reason
from orders.services.decide.snapshot import holdings_read, order_new, tax_request
from orders.services.decide.taxes import prequote
from orders.services.decide.writes import batch_write
from orders.services.notifications import email_queue
from orders.tax import TaxCalculator, TaxError, TaxQuote, calculator

# Entries read ahead of the units to give: some may be skipped as no longer eligible.
_AHEAD = 5


@dataclass(frozen=True)
class PromoteResult:
    promoted: list[int]  # order ids
    skipped: int
    # The run stopped before the stock or the queue ran out: run it again.
    again: bool


def waitlist_promote(*, campaign_id: int, now: datetime) -> PromoteResult:
    """Give the campaign's free units (stock left) to the first waiting entries, as new pending
    orders with their confirmation requests; skip (with an e-mail) those no longer eligible.

    Does nothing while the campaign is paused or over (closing its waitlist is
    ``waitlists_close_due``'s). Idempotent: with no free unit or nobody waiting it reads two
    rows and returns. Locks as the module docstring says; database errors propagate.
    """
    left = campaigns_stock_left({campaign_id}).get(campaign_id, 0)
    if left <= 0:
        return PromoteResult(promoted=[], skipped=0, again=False)
    heads = list(_servable(campaign_id).select_related("post")[: left + _AHEAD])
    if not heads:
        return PromoteResult(promoted=[], skipped=0, again=False)
    tax = _tax_ahead(campaign_id=campaign_id, entries=heads)
    with transaction.atomic():
        limits = controls_lock_many(cardholder_ids={e.cardholder_id for e in heads})
        campaign = campaigns_lock([campaign_id])[campaign_id]
        if campaign.paused or not campaign.starts_at <= now < campaign.ends_at:
            return PromoteResult(promoted=[], skipped=0, again=False)
        left = campaign.stock_total - campaign.stock_reserved
        if left <= 0:
            return PromoteResult(promoted=[], skipped=0, again=False)
        entries = list(
            _servable(campaign_id)
            .select_related("post")
            .select_for_update(skip_locked=True, of=("self",))[: left + _AHEAD]
        )
        return _promote_locked(campaign, entries, limits, left, tax, now)


def _servable(campaign_id: int) -> QuerySet[WaitlistEntry]:
    """The queue of the campaign, less the entries waiting for a variant with no unit free: a
    unit of one size is offered to the first who asked for that size (or named none), however
    many wait for another size ahead of them."""
    queue = waitlist_queue(campaign_id=campaign_id)
    stocked = variant_stock_left([campaign_id])
    if not stocked:  # sold without variants
        return queue
    free = [variant_id for (_, variant_id), units in stocked.items() if units > 0]
    return queue.filter(Q(variant__isnull=True) | Q(variant_id__in=free))


def _promote_locked(
    campaign: Campaign,
    entries: list[WaitlistEntry],
    limits: dict[int, BuyerLimits],
    left: int,
    tax: TaxCalculator,
    now: datetime,
) -> PromoteResult:
    """Under the locks: promote or skip ``entries`` in queue order while units are ``left``."""
    campaign = Campaign.objects.select_related("product").get(pk=campaign.pk)
    buyers = buyers_for_identities(
        identities={(e.post.platform, e.post.author_id) for e in entries}
    )
    snapshots = buyer_snapshots(cardholder_ids=limits)
    holdings = holdings_read(
        cardholder_ids=set(limits),
        campaign_ids={campaign.pk},
        capped_ids={pk for pk, lim in limits.items() if lim.per_day_cap is not None},
        now=now,
    )
    cooling = timedelta(hours=settings.HASHCART["COOLING_OFF_HOURS"])
    batch = Batch(posts=[], now=now, campaigns={})
    promoted: list[tuple[WaitlistEntry, Order]] = []
    skipped: list[tuple[WaitlistEntry, str]] = []
    again = tax_failed = False
    # What each waitlisted post asks for, read now (variant and quantity; the buyer's saved
    # preferences as of now fill a missing option), and the variants' stock under the lock.
    offers, asked = readings((e.post, campaign, e.cardholder_id) for e in entries)
    variant_left = variant_stock_left([campaign.pk])
    free = left
    reserved: Counter[int | None] = Counter()
    for entry in entries:
        if free <= 0:
            break
        cardholder_id = entry.cardholder_id
        if cardholder_id not in limits:  # joined ahead after the controls were locked
            again = True
            break
        buyer = buyers.get((entry.post.platform, entry.post.author_id))
        if buyer is None or buyer.cardholder_id != cardholder_id:
            skipped.append((entry, "the account that posted is no longer linked to you."))
            continue
        offer = offers[campaign.pk]
        if offer.options and not offer.variants:
            break  # staff are changing the product's variants: nobody is skipped meanwhile
        wanted = _wanted(offer, asked[entry.post_id])
        if isinstance(wanted, str):
            skipped.append((entry, wanted))
            continue
        units, variant = wanted
        variant_id = variant.variant_id if variant is not None else None
        if units > free or (
            variant_id is not None and variant_left.get((campaign.pk, variant_id), 0) < units
        ):
            continue  # waits for units of its own variant; later entries may use these
        snapshot, lim = snapshots.get(cardholder_id), limits.get(cardholder_id)
        card = snapshot.card if snapshot is not None else None
        quote: TaxQuote | None = None
        if card is not None and card.address_complete:
            try:
                quote = tax.quote(tax_request(campaign=campaign, card=card, quantity=units))
            except TaxError:
                # Not run again at once (the service is down, or the question was not asked
                # ahead): the next release or the sweep asks again; the entry keeps its place.
                tax_failed = True
                break
        total = quote.total if quote is not None else campaign.price
        # The checks of a new purchase, as of now (an address changed since the post counts).
        reason = purchase_blocked_reason(
            posted_at=now, total=total, buyer=buyer, snapshot=snapshot, limits=lim, cooling=cooling
        )
        if reason is None and holdings.pending_for(cardholder_id, campaign.pk):
            reason = "you already have an order of this offer waiting for your confirmation."
        reason = reason or _limit_reason(holdings, campaign, cardholder_id, lim, total, units)
        if reason is not None or card is None or quote is None:
            skipped.append((entry, reason or "there is no card on file."))
            continue
        holdings.add(cardholder_id, campaign, quote.total, units)
        order = order_new(
            post=entry.post,
            campaign=campaign,
            buyer=buyer,
            card=card,
            limits=lim,
            tax=quote,
            variant=variant,
            quantity=units,
        )
        batch.new_orders.append((order, entry.post))
        promoted.append((entry, order))
        free -= units
        reserved[variant_id] += units
        if variant_id is not None:
            variant_left[(campaign.pk, variant_id)] -= units
    for variant_id, units in sorted(reserved.items(), key=lambda kv: kv[0] or 0):
        stock_reserve(campaign_id=campaign.pk, units=units, variant_id=variant_id)
    if promoted:
        # The orders, their audit rows, confirmation requests and e-mails, as the decider
        # writes them (no post outcome: the post was decided ``waitlisted``).
        batch_write(batch)
        for entry, order in promoted:
            _end(entry, WaitlistStatus.PROMOTED, now, order=order)
    if skipped:
        cardholders = cardholders_with_users(cardholder_ids={e.cardholder_id for e, _ in skipped})
        for entry, reason in skipped:
            if _end(entry, WaitlistStatus.SKIPPED, now, reason=reason):
                email_queue(
                    key=f"waitlist_skipped:{entry.pk}",
                    cardholder=cardholders[entry.cardholder_id],
                    kind="waitlist_skipped",
                    message=messages.email_waitlist_skipped(
                        cardholder=cardholders[entry.cardholder_id],
                        campaign=campaign,
                        reason=reason,
                    ),
                )
    # Skipped entries leave units unused: the next entries are read by the next run.
    again = not tax_failed and (
        again or (bool(skipped) and free > 0 and len(entries) == left + _AHEAD)
    )
    return PromoteResult(promoted=[o.pk for _, o in promoted], skipped=len(skipped), again=again)


def _wanted(offer: Offer, reading: Reading) -> tuple[int, VariantChoice | None] | str:
    """The units and variant a waitlisted post asks for, or why it cannot be sold as written
    (the post was not read when it joined: a sold-out campaign's posts are decided unread)."""
    if reading.quantity is None:
        return f"your post asked for a quantity we cannot sell (1 to {offer.per_buyer_limit})."
    if reading.variant_needed:
        return "your post did not say which variant you wanted, and your saved choices do not."
    variant = next((v for v in offer.variants if v.variant_id == reading.variant_id), None)
    return reading.quantity, variant


def _end(
    entry: WaitlistEntry,
    status: str,
    now: datetime,
    *,
    order: Order | None = None,
    reason: str = "",
) -> bool:
    """Move a waiting entry to ``status`` by compare-and-set; True if this call moved it."""
    return bool(
        WaitlistEntry.objects.filter(pk=entry.pk, status=WaitlistStatus.WAITING).update(
            status=status, order=order, ended_at=now, reason=reason[:200], updated_at=now
        )
    )


def _tax_ahead(*, campaign_id: int, entries: list[WaitlistEntry]) -> TaxCalculator:
    """The calculator promotion quotes with: a local one as it is; a remote one asked now,
    before any lock, for the first waiting entries (``Prequoted``), each for the quantity its
    post asks (promotion quotes that quantity: a question asked for another would miss)."""
    tax = calculator()
    if not tax.remote:
        return tax
    campaign = Campaign.objects.get(pk=campaign_id)
    _, asked = readings((e.post, campaign, e.cardholder_id) for e in entries)
    units = {e.cardholder_id: asked[e.post_id].quantity or 1 for e in entries}
    snapshots = buyer_snapshots(cardholder_ids=list(units))
    return prequote(
        tax,
        (
            tax_request(campaign=campaign, card=snapshot.card, quantity=units[cardholder_id])
            for cardholder_id, snapshot in snapshots.items()
            if snapshot.card is not None and snapshot.card.address_complete
        ),
    )


def waitlists_promote_due(*, now: datetime) -> int:
    """The sweep: promote on every running campaign with free units and someone waiting;
    returns how many orders it made. Idempotent (a run with nothing to give does nothing)."""
    # Running campaigns with a unit free first (few), then those of them someone waits on: the
    # queues of a sold-out sale (thousands waiting, no unit free) are not read at all.
    free = [c.pk for c in campaign_list_live(now=now) if c.stock_available > 0]
    campaign_ids = sorted(
        WaitlistEntry.objects.filter(campaign_id__in=free, status=WaitlistStatus.WAITING)
        .values_list("campaign_id", flat=True)
        .order_by()
        .distinct()
    )
    made = 0
    for campaign_id in campaign_ids:
        while True:
            result = waitlist_promote(campaign_id=campaign_id, now=now)
            made += len(result.promoted)
            if not result.again:
                break
    return made


def waitlist_leave(*, entry_id: int, cardholder_id: int, now: datetime) -> bool:
    """The cardholder leaves a waitlist: True if this call took the entry out of the queue;
    False if it is not theirs or no longer waiting (promoted meanwhile: their order stands, and
    they cancel it as any other). A compare-and-set on the entry; a promoter holding the entry's
    row makes this wait for its commit, then find it promoted."""
    return bool(
        WaitlistEntry.objects.filter(
            pk=entry_id, cardholder_id=cardholder_id, status=WaitlistStatus.WAITING
        ).update(status=WaitlistStatus.LEFT, ended_at=now, updated_at=now)
    )


def waitlists_close_due(*, now: datetime, limit: int = 1000) -> int:
    """Close the waiting entries of campaigns that have ended, each buyer told by e-mail;
    returns how many. Idempotent: each entry closes once (compare-and-set), its e-mail keyed by
    the entry."""
    due = list(
        WaitlistEntry.objects.filter(status=WaitlistStatus.WAITING, campaign__ends_at__lte=now)
        .select_related("campaign__product")
        .order_by("id")[:limit]
    )
    if not due:
        return 0
    cardholders = cardholders_with_users(cardholder_ids={e.cardholder_id for e in due})
    closed = 0
    for entry in due:
        with transaction.atomic():
            if not _end(entry, WaitlistStatus.CLOSED, now, reason="the campaign ended"):
                continue
            cardholder = cardholders[entry.cardholder_id]
            email_queue(
                key=f"waitlist_closed:{entry.pk}",
                cardholder=cardholder,
                kind="waitlist_closed",
                message=messages.email_waitlist_closed(
                    cardholder=cardholder, campaign=entry.campaign
                ),
            )
            closed += 1
    return closed


__all__ = [
    "PromoteResult",
    "waitlist_leave",
    "waitlist_promote",
    "waitlist_promote_soon",
    "waitlists_close_due",
    "waitlists_promote_due",
]
