"""Reads of the orders app."""

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from operator import itemgetter

from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils.crypto import salted_hmac

from accounts.selectors import buying_standing
from catalog.models import CampaignVariantStock
from core.lookups import AnyOf
from core.scoping import scope_to_merchant
from orders.models import (
    CreditNote,
    Dispute,
    DisputeStatus,
    Notification,
    Order,
    OrderEvent,
    OrderStatus,
    OutboxStatus,
    PaymentOperation,
    PaymentReconciliation,
    Receipt,
    Refund,
    Return,
    WaitlistEntry,
    WaitlistStatus,
)
from social.selectors import FeedState, feed_states, posts_undecided_backlog, replies_backlog


@dataclass(frozen=True)
class PipelineStatus:
    feeds: list[FeedState]
    undecided_posts: int
    oldest_undecided_seconds: float | None
    replies_queued: dict[str, int]
    oldest_unsent_reply_seconds: float | None
    orders_awaiting_reply: int
    orders_awaiting_confirmation: int
    payments_pending: int
    emails_pending: int
    # Payment operations given up or refused, waiting for ops (``retry_payments``).
    payments_failed: list["FailedPayment"] = field(default_factory=list)
    # The latest comparison of the gateway's books with the orders, if any ran.
    reconciliation: PaymentReconciliation | None = None


@dataclass(frozen=True)
class FailedPayment:
    id: int
    order_id: int
    operation: str
    attempts: int
    error: str
    failed_at: datetime


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def pipeline_status(*, now: datetime) -> PipelineStatus:
    """Feed lag (now minus each feed's high-water mark) and the backlog of every stage."""
    undecided = posts_undecided_backlog()
    unsent = replies_backlog()
    pending = Order.objects.filter(status=OrderStatus.PENDING)
    return PipelineStatus(
        feeds=feed_states(now=now),
        undecided_posts=undecided.count,
        oldest_undecided_seconds=_age(now, undecided.oldest),
        replies_queued=unsent.by_kind,
        oldest_unsent_reply_seconds=_age(now, unsent.oldest),
        orders_awaiting_reply=pending.filter(expires_at__isnull=True).count(),
        orders_awaiting_confirmation=pending.filter(expires_at__isnull=False).count(),
        payments_pending=PaymentOperation.objects.filter(
            status__in=[OutboxStatus.PENDING, OutboxStatus.PROCESSING]
        ).count(),
        emails_pending=Notification.objects.filter(status=OutboxStatus.PENDING).count(),
        payments_failed=payment_operations_failed(),
        reconciliation=PaymentReconciliation.objects.order_by("-ran_at").first(),
    )


def payment_operations_failed(*, limit: int = 100) -> list[FailedPayment]:
    """Failed payment operations (given up or refused), oldest first: money not captured, a
    hold not released, or a buyer declined for want of an answer. Each stays until retried."""
    return [
        FailedPayment(
            id=op.pk,
            order_id=op.order_id,
            operation=op.operation,
            attempts=op.attempts,
            error=op.last_error,
            failed_at=op.updated_at,
        )
        for op in PaymentOperation.objects.filter(status=OutboxStatus.FAILED).order_by("id")[:limit]
    ]


def cardholder_orders(*, cardholder_id: int, limit: int = 50) -> list[Order]:
    """The cardholder's latest orders with their shipments, receipts, disputes, returns and
    refunds' credit notes, newest first (settings page)."""
    return list(
        Order.objects.filter(cardholder_id=cardholder_id)
        .select_related("shipment", "receipt", "dispute")
        .prefetch_related(
            Prefetch("returns", queryset=Return.objects.order_by("-id")),
            Prefetch("refunds", queryset=Refund.objects.select_related("credit_note")),
        )
        .order_by("-id")[:limit]
    )


def cardholder_receipt(*, user_id: int, order_id: int) -> Receipt | None:
    """The receipt of an order of the cardholder signed in as ``user_id``; None when the order
    is another's, or has no receipt (not paid)."""
    return Receipt.objects.filter(order_id=order_id, order__cardholder__user_id=user_id).first()


def merchant_receipt(*, order_id: int, merchant_id: int | None) -> Receipt | None:
    """The receipt of an order of merchant ``merchant_id`` (any merchant's for ``None``, an
    operator); None when the order is another merchant's or has no receipt."""
    receipts = Receipt.objects.filter(order_id=order_id)
    return scope_to_merchant(receipts, "merchant", merchant_id).first()


def cardholder_credit_note(*, user_id: int, credit_note_id: int) -> CreditNote | None:
    """A credit note of an order of the cardholder signed in as ``user_id``; None otherwise."""
    return CreditNote.objects.filter(
        pk=credit_note_id, refund__order__cardholder__user_id=user_id
    ).first()


def cardholder_order(*, user_id: int, order_id: int) -> Order | None:
    """One order of the cardholder signed in as ``user_id``, with what its page shows (campaign,
    shipment, receipt, case, returns, refunds' credit notes, events); None when the order is
    another's or does not exist (the page answers both alike, so ids cannot be probed)."""
    return (
        Order.objects.filter(pk=order_id, cardholder__user_id=user_id)
        .select_related("campaign", "shipment", "receipt", "dispute")
        .prefetch_related(
            Prefetch("returns", queryset=Return.objects.order_by("-id")),
            Prefetch("refunds", queryset=Refund.objects.select_related("credit_note")),
            Prefetch("events", queryset=OrderEvent.objects.order_by("created_at", "id")),
        )
        .first()
    )


@dataclass(frozen=True)
class TimelineStep:
    """One line of an order's timeline: ``done`` with its time ``at``, or still ahead."""

    key: str
    label: str
    at: datetime | None = None
    done: bool = False
    detail: str = ""


# The happy path, in order, and the status that reaches each step.
_PATH = (
    ("confirmed", "Confirmed", OrderStatus.CONFIRMED),
    ("paid", "Paid (card authorized)", OrderStatus.PAID),
    ("shipped", "Shipped", OrderStatus.SHIPPED),
    ("delivered", "Delivered", OrderStatus.DELIVERED),
)
# Where an order may leave or go past the happy path; each is shown when it happened.
_SIDE: dict[str, str] = {
    OrderStatus.AUTHENTICATION_REQUIRED: "Your bank asked you to approve the payment",
    OrderStatus.EXPIRED: "Expired (not confirmed in time)",
    OrderStatus.CANCELLED: "Cancelled",
    OrderStatus.DECLINED: "Declined by the card",
    OrderStatus.PARTIALLY_REFUNDED: "Partly refunded",
    OrderStatus.REFUNDED: "Refunded",
}
_ENDED = (OrderStatus.EXPIRED, OrderStatus.CANCELLED, OrderStatus.DECLINED)


def order_timeline(order: Order) -> list[TimelineStep]:
    """The order's story for its buyer, oldest first: posted, then confirmed, paid, label
    bought (a label Hashcart bought), shipped (the carrier's first scan; ``detail``: the
    carrier and tracking number) and delivered, each done when an event took
    the order there (a shipment's own times win for shipped and delivered); the steps still
    ahead, unless the order ended (expired, cancelled, declined); and, when they happened, the
    side steps (bank approval, expiry, cancel, decline, refunds) and its case and returns. Reads
    the order's prefetched events, shipment, returns and dispute (``cardholder_order``)."""
    reached: dict[str, datetime] = {}
    side: list[TimelineStep] = []
    for e in order.events.all():
        if e.to_status and e.to_status not in reached:
            reached[e.to_status] = e.created_at
            if e.to_status in _SIDE:
                side.append(TimelineStep(e.to_status, _SIDE[e.to_status], e.created_at, True))
        elif e.kind.startswith(("return_", "dispute_")):
            label = e.kind.replace("_", " ").capitalize().replace("Dispute", "Case")
            side.append(TimelineStep(e.kind, label, e.created_at, True))
    shipment = getattr(order, "shipment", None)
    if shipment is not None and shipment.carrier_reference and OrderStatus.SHIPPED in reached:
        # A label Hashcart bought ships the order (and charges it) before the carrier has the
        # parcel: the label is a step of its own, and "Shipped" is the carrier's first scan
        # (``orders.progress``). A label staff recorded by hand is shipped when they say so.
        label_at = reached.pop(OrderStatus.SHIPPED)
        side.append(TimelineStep("label_bought", "Label bought", label_at, True))
    if shipment is not None:
        if shipment.shipped_at:
            reached.setdefault(OrderStatus.SHIPPED, shipment.shipped_at)
        if shipment.delivered_at:
            reached[OrderStatus.DELIVERED] = shipment.delivered_at
    steps = [TimelineStep("posted", f"Posted #{order.hashtag}", order.created_at, True)]
    ended = order.status in _ENDED
    for key, label, status in _PATH:
        at = reached.get(status) or (order.confirmed_at if key == "confirmed" else None)
        if at is None and ended:
            continue
        detail = ""
        if key == "shipped" and shipment is not None and shipment.tracking_number:
            detail = f"{shipment.carrier}, tracking number {shipment.tracking_number}"
        steps.append(TimelineStep(key, label, at, at is not None, detail))
    done = [step for step in steps + side if step.done]
    done.sort(key=lambda step: step.at or order.created_at)
    return done + [step for step in steps if not step.done]


def merchant_credit_note(*, credit_note_id: int, merchant_id: int | None) -> CreditNote | None:
    """A credit note of merchant ``merchant_id`` (any merchant's for ``None``, an operator);
    None when it is another merchant's."""
    notes = CreditNote.objects.filter(pk=credit_note_id)
    return scope_to_merchant(notes, "merchant", merchant_id).first()


def cardholder_order_events(*, cardholder_id: int, limit: int = 50) -> list[OrderEvent]:
    """The latest events of the cardholder's orders, newest first (their audit log)."""
    return list(
        OrderEvent.objects.filter(order__cardholder_id=cardholder_id)
        .select_related("order")
        .order_by("-created_at", "-id")[:limit]
    )


def cardholder_order_log(*, cardholder_id: int, limit: int = 50) -> list[tuple[datetime, str, str]]:
    """The cardholder's latest order events as lines of their account's log (when, what,
    detail), newest first: a source of ``HASHCART["CARDHOLDER_LOG_SOURCES"]``."""
    return [
        (
            e.created_at,
            f"Order #{e.order.confirmation_code}",
            f"{e.order.product_name}: {e.kind.replace('_', ' ')}",
        )
        for e in cardholder_order_events(cardholder_id=cardholder_id, limit=limit)
    ]


def orders_still_buyable(*, orders: list[Order]) -> set[int]:
    """Ids of the pending ``orders`` that may still be confirmed: the author's identity still
    links to the order's cardholder, buying by post is not paused, consent is not withdrawn,
    and the order's card is still on file (DESIGN §8). A lockdown cancels the others itself
    (``accounts.services.lockdown``); this check holds also for a lockdown that raced the
    order's creation, or a change made behind the services' backs. Callers read it under the
    order's campaign lock, so a lockdown that committed before it is seen."""
    pending = [o for o in orders if o.status == OrderStatus.PENDING]
    if not pending:
        return set()
    standing = buying_standing(
        cardholder_ids={o.cardholder_id for o in pending}, card_ids={o.card_id for o in pending}
    )
    return {
        o.pk
        for o in pending
        if (o.cardholder_id, o.platform, o.author_id) in standing.identities
        and o.cardholder_id in standing.may_buy
        and o.card_id in standing.cards_on_file
    }


def order_buyer_reference(*, merchant_id: int, cardholder_id: int) -> str:
    """An opaque name for a cardholder as one merchant sees them (DESIGN §10.2): the same for
    all of that cardholder's orders with the merchant, unrelated to their references with other
    merchants, and not derivable without ``SECRET_KEY`` (an HMAC of the two ids; rotating the key
    changes every reference). Merchant staff see it instead of the e-mail or card."""
    digest = salted_hmac(
        "hashcart.orders.buyer_reference", f"{merchant_id}:{cardholder_id}", algorithm="sha256"
    ).digest()
    return "B-" + base64.b32encode(digest[:10]).decode()


def disputes_visible(*, merchant_id: int | None) -> QuerySet[Dispute]:
    """The cases a back-office user may see: their merchant's (``core.scoping``: ``None`` for
    operators, who see all). An escalated case is the operator's to review: merchant staff no
    longer see it (DESIGN §3.4)."""
    cases = scope_to_merchant(Dispute.objects.all(), "merchant", merchant_id)
    if merchant_id is not None:
        cases = cases.exclude(status=DisputeStatus.ESCALATED)
    return cases


def disputes_open(*, merchant_id: int | None, limit: int = 10) -> tuple[int, list[Dispute]]:
    """The cases waiting for the user's answer, soonest deadline first (the notice at the top
    of the back office): how many, and the first ``limit`` with their orders. Operators see
    every merchant's, and the escalated ones waiting for them."""
    waiting = [DisputeStatus.OPENED] + ([DisputeStatus.ESCALATED] if merchant_id is None else [])
    cases = disputes_visible(merchant_id=merchant_id).filter(status__in=waiting)
    # One query on every order list: counted apart only when there are more than it shows.
    first = list(cases.select_related("order").order_by("deadline", "id")[: limit + 1])
    if len(first) <= limit:
        return len(first), first
    return cases.count(), first[:limit]


# --- Waitlist (issue 13) ------------------------------------------------------------------------
def waitlist_queue(*, campaign_id: int) -> QuerySet[WaitlistEntry]:
    """A campaign's waiting entries, first in first out (the partial index ``waitlist_queue_idx``
    serves it)."""
    return WaitlistEntry.objects.filter(
        campaign_id=campaign_id, status=WaitlistStatus.WAITING
    ).order_by("posted_at", "post_id")


def _ahead_of(outer: str = "") -> Q:
    """Waiting entries of the same campaign before the outer entry in the queue."""
    return Q(campaign_id=OuterRef(f"{outer}campaign_id"), status=WaitlistStatus.WAITING) & (
        Q(posted_at__lt=OuterRef(f"{outer}posted_at"))
        | Q(posted_at=OuterRef(f"{outer}posted_at"), post_id__lt=OuterRef(f"{outer}post_id"))
    )


def waitlist_positions(*, entry_ids: Iterable[int]) -> dict[int, int]:
    """The place (1 = next to be served) of each waiting entry among ``entry_ids``, by entry, in
    one query (an index-only count per entry); entries no longer waiting are absent."""
    return _places("pk", list(entry_ids))


def waitlist_positions_of_posts(*, post_ids: Iterable[int]) -> dict[int, int]:
    """``waitlist_positions`` of the waiting entries of these inbox posts, by post.

    For a decider's batch joining the end of a long queue: one query for the entries, then per
    campaign one count of those ahead of the earliest and one read of the span from it to the
    latest, numbered in queue order. (A count per entry, as ``waitlist_positions`` does, made a
    flash sale's batches cost the square of its queue.)"""
    ids = list(post_ids)
    if not ids:
        return {}
    mine = sorted(
        WaitlistEntry.objects.filter(
            AnyOf(F("post_id"), ids), status=WaitlistStatus.WAITING
        ).values_list("campaign_id", "posted_at", "post_id")
    )
    places: dict[int, int] = {}
    for campaign_id, group in groupby(mine, key=itemgetter(0)):
        entries = list(group)
        (_, first_at, first_post), (_, last_at, last_post) = entries[0], entries[-1]
        queue = WaitlistEntry.objects.filter(campaign_id=campaign_id, status=WaitlistStatus.WAITING)
        before_first = Q(posted_at__lt=first_at) | Q(posted_at=first_at, post_id__lt=first_post)
        after_last = Q(posted_at__gt=last_at) | Q(posted_at=last_at, post_id__gt=last_post)
        ahead = queue.filter(before_first).count()
        span = (
            queue.exclude(before_first)
            .exclude(after_last)
            .order_by("posted_at", "post_id")
            .values_list("post_id", flat=True)
        )
        wanted = {post_id for _, _, post_id in entries}
        for place, post_id in enumerate(span, start=ahead + 1):
            if post_id in wanted:
                places[post_id] = place
    return places


def _places(key: str, values: list[int]) -> dict[int, int]:
    if not values:
        return {}
    ahead = (
        WaitlistEntry.objects.filter(_ahead_of())
        .order_by()
        .values("campaign_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = (
        WaitlistEntry.objects.filter(AnyOf(F(key), values), status=WaitlistStatus.WAITING)
        .annotate(ahead=Coalesce(Subquery(ahead), 0))
        .values_list(key, "ahead")
    )
    return {value: ahead + 1 for value, ahead in rows}


def waitlist_position(entry: WaitlistEntry) -> int | None:
    """The entry's place in its campaign's queue (1 = next to be served), or None once it no
    longer waits (promoted, left, skipped or closed). For the cardholder's pages; never shown in
    a public reply."""
    if entry.status != WaitlistStatus.WAITING:
        return None
    return waitlist_positions(entry_ids=[entry.pk]).get(entry.pk)


def waitlist_lengths(*, campaign_ids: Iterable[int]) -> dict[int, int]:
    """How many wait on each campaign (the demand it could not serve), in one query; a campaign
    nobody waits on is absent."""
    return _waiting_per_campaign(campaign_ids)


def waitlist_units_owed(*, campaign_ids: Iterable[int]) -> dict[int, int]:
    """Units owed to each campaign's waitlist, which new posts may not take: one per waiting
    entry, for campaigns sold without variants. A campaign sold by variant owes none: a
    campaign-wide count would keep one size's units from sale while its waiters want another;
    there a unit that comes back may go to a new post that arrives before the promotion task
    (run right after the release commits). One query."""
    by_variant = CampaignVariantStock.objects.filter(campaign_id=OuterRef("campaign_id"))
    return _waiting_per_campaign(campaign_ids, unless=Exists(by_variant))


def _waiting_per_campaign(
    campaign_ids: Iterable[int], *, unless: Exists | None = None
) -> dict[int, int]:
    """Waiting entries counted per campaign among ``campaign_ids`` (less those matching
    ``unless``), in one query; a campaign with none is absent."""
    ids = list(campaign_ids)
    if not ids:
        return {}
    waiting = WaitlistEntry.objects.filter(
        AnyOf(F("campaign_id"), ids), status=WaitlistStatus.WAITING
    )
    if unless is not None:
        waiting = waiting.exclude(unless)
    rows = (
        waiting.order_by()
        .values("campaign_id")
        .annotate(n=Count("pk"))
        .values_list("campaign_id", "n")
    )
    return dict(rows)


def waitlist_length_expression() -> Coalesce:
    """A campaign's waitlist length as an expression over its row (``OuterRef("pk")``), for
    ``catalog.selectors.campaigns_with_waitlist_length``: one index-only count per campaign."""
    return _waiting_count(campaign_id=OuterRef("pk"))


def variant_waitlist_length_expression() -> Coalesce:
    """How many wait for a campaign's variant, as an expression over a campaign's variant stock
    row (``OuterRef("campaign_id")``, ``OuterRef("variant_id")``), for the back office and the
    API (``catalog.variant_selectors.variant_stocks_with_waitlist_length``)."""
    return _waiting_count(campaign_id=OuterRef("campaign_id"), variant_id=OuterRef("variant_id"))


def _waiting_count(**outer: OuterRef) -> Coalesce:
    """The number of waiting entries matching ``outer`` (fields of the outer row), as a
    subquery expression; 0 when none."""
    waiting = (
        WaitlistEntry.objects.filter(status=WaitlistStatus.WAITING, **outer)
        .order_by()
        .values("campaign_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(waiting), 0)


def waitlist_waiting_pairs(
    *, cardholder_ids: Iterable[int], campaign_ids: Iterable[int]
) -> set[tuple[int, int]]:
    """(cardholder, campaign) pairs with a waiting entry among these, in one query."""
    holders, campaigns = list(cardholder_ids), list(campaign_ids)
    if not holders or not campaigns:
        return set()
    return set(
        WaitlistEntry.objects.filter(
            AnyOf(F("cardholder_id"), holders),
            AnyOf(F("campaign_id"), campaigns),
            status=WaitlistStatus.WAITING,
        ).values_list("cardholder_id", "campaign_id")
    )


@dataclass(frozen=True)
class WaitingPlace:
    entry: WaitlistEntry
    position: int | None


def cardholder_waitlist(*, cardholder_id: int, limit: int = 50) -> list[WaitingPlace]:
    """The cardholder's waiting entries, newest first, with their places, for the settings page
    (two queries)."""
    entries = list(
        WaitlistEntry.objects.filter(cardholder_id=cardholder_id, status=WaitlistStatus.WAITING)
        .select_related("campaign__product")
        .order_by("-id")[:limit]
    )
    positions = waitlist_positions(entry_ids=[e.pk for e in entries])
    return [WaitingPlace(entry=e, position=positions.get(e.pk)) for e in entries]
