"""The alert sweep: finds the causes Hashcart watches and raises each once (STYLE §6: stored
state and a periodic sweep, not the hot decide path). Run by the ``orders.alerts_sweep`` beat
task and the ``alerts_sweep`` management command; running it twice raises nothing new.

Every query is bounded: live campaigns; the few standing low-stock alerts; failed payment
operations (a partial index) and disputes and returns of the last ``LOOKBACK``; the label queue
(``HASHCART["ALERT_LABELS_DUE_SOURCE"]``); each merchant's late shipments once a local day. What
was alerted already is found by the (kind, subject id) index. ``LOOKBACK`` also keeps a first
run from alerting on the whole history.

Fulfillment's reads come through settings hooks (orders does not import fulfillment, DESIGN §2):
``ALERT_LABELS_DUE_SOURCE`` (``fulfillment.selectors.labels_due``: shipments awaiting a label,
with ``order``, ``merchant`` and ``ship_by``) and ``ALERT_LATE_SHIPMENTS_SOURCE``
(``fulfillment.selectors.sla_rows``: rows with ``shipment``, ``state`` and ``reason``).
"""

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Value
from django.db.models.functions import Greatest
from django.utils.module_loading import import_string

from catalog.models import Campaign, Merchant
from core.when import local_moment_words
from orders.models import (
    Alert,
    AlertSettings,
    Dispute,
    OrderStatus,
    OutboxStatus,
    PaymentOperation,
    PaymentOperationKind,
    Return,
)
from orders.selectors import waitlist_length_expression
from orders.services.alerts import (
    AUTHORIZATION_LAPSE,
    DISPUTE_OPENED,
    LATE_SHIPMENTS,
    LOW_STOCK,
    PAYMENT_FAILED,
    RETURN_OPENED,
    SOLD_OUT,
    WAITLIST_DEMAND,
    Cause,
    admin_url,
    alert_kind_on,
    alert_record,
    alerts_raise,
)
from orders.services.webhooks import webhook_event_record

logger = logging.getLogger(__name__)

# Payment failures, disputes and returns older than this are not looked at (bounded queries;
# a first run does not alert on the whole history). Longer than any outage the sweep outlives.
LOOKBACK = timedelta(days=3)
# A digest lists at most this many late shipments (then says how many more).
DIGEST_MAX_ROWS = 200
# Campaign alerts that are also webhook events (issue 14, item 5), with the alert's cause as
# the event's key: one event per cause, as one alert.
WEBHOOK_EVENTS = {SOLD_OUT: "campaign.sold_out", LOW_STOCK: "campaign.low_stock"}


def _live(now: datetime) -> Q:
    return Q(starts_at__lte=now, ends_at__gt=now)


def _not_alerted(kind: str, **extra: Any) -> Exists:
    return Exists(Alert.objects.filter(kind=kind, subject_id=OuterRef("pk"), **extra))


def _campaign_data(campaign: Campaign) -> dict[str, Any]:
    """The webhook payload's ``campaign`` object (the shape the OpenAPI document gives)."""
    return {
        "id": campaign.pk,
        "hashtag": campaign.hashtag,
        "stock_total": campaign.stock_total,
        "stock_available": campaign.stock_available,
        "low_stock_threshold": campaign.low_stock_threshold,
    }


# --- Campaigns --------------------------------------------------------------------------------
def low_stock_rearm(*, now: datetime) -> int:
    """Clear the standing low-stock alerts whose campaign's stock is back above its threshold
    by a margin (or has none now): the next crossing below it is a new cause. A campaign that
    ended has its alert cleared too (it alerts no more), so the standing ones stay those of
    live campaigns.
    Returns how many were cleared."""
    standing = Alert.objects.filter(kind=LOW_STOCK, cleared_at__isnull=True)
    ids = {a.subject_id: a.pk for a in standing.only("pk", "subject_id")}
    if not ids:
        return 0
    # Back above the threshold by a margin (half the threshold, at least one unit): a unit or
    # two coming back in a sale (an order expiring) and taken again is the same crossing, not
    # an e-mail every sweep.
    rearm_above = F("low_stock_threshold") + Greatest(F("low_stock_threshold") / 2, Value(1))
    back = Campaign.objects.filter(pk__in=list(ids)).filter(
        Q(low_stock_threshold__isnull=True)
        | Q(ends_at__lte=now)
        | Q(stock_total__gt=F("stock_reserved") + rearm_above)
    )
    done = [ids[pk] for pk in back.values_list("pk", flat=True)]
    return standing.filter(pk__in=done).update(cleared_at=now)


def low_stock_causes(*, now: datetime) -> list[Cause]:
    """Live campaigns with units left at or under their threshold and no standing low-stock
    alert. (None left is ``sold_out``'s.) The cause counts the crossings: ``campaign:7:2``."""
    campaigns = list(
        Campaign.objects.filter(_live(now), low_stock_threshold__isnull=False)
        .filter(
            stock_total__gt=F("stock_reserved"),
            stock_total__lte=F("stock_reserved") + F("low_stock_threshold"),
        )
        .exclude(_not_alerted(LOW_STOCK, cleared_at__isnull=True))
        .order_by("pk")
    )
    before = dict(
        Alert.objects.filter(kind=LOW_STOCK, subject_id__in=[c.pk for c in campaigns])
        .values_list("subject_id")
        .annotate(n=Count("pk"))
    )
    return [
        Cause(
            merchant_id=c.merchant_id,
            kind=LOW_STOCK,
            cause=f"campaign:{c.pk}:{before.get(c.pk, 0) + 1}",
            subject_id=c.pk,
            subject=f"Low stock: #{c.hashtag} has {c.stock_available} left",
            body=(
                f"Campaign #{c.hashtag} has {c.stock_available} of {c.stock_total} units left, "
                f"at or under its low-stock threshold of {c.low_stock_threshold}.\n\n"
                f"{admin_url('admin:catalog_campaign_change', c.pk)}\n"
            ),
            event_data=_campaign_data(c),
        )
        for c in campaigns
    ]


def sold_out_causes(*, now: datetime) -> list[Cause]:
    """Live campaigns with no unit left, once per campaign."""
    campaigns = (
        Campaign.objects.filter(_live(now), stock_total__gt=0)
        .filter(stock_reserved__gte=F("stock_total"))
        .exclude(_not_alerted(SOLD_OUT))
        .order_by("pk")
    )
    return [
        Cause(
            merchant_id=c.merchant_id,
            kind=SOLD_OUT,
            cause=f"campaign:{c.pk}",
            subject_id=c.pk,
            subject=f"Sold out: #{c.hashtag}",
            body=(
                f"Campaign #{c.hashtag} has sold all {c.stock_total} units (held by orders "
                "from pending on; units of orders that expire or are cancelled come back).\n\n"
                f"{admin_url('admin:catalog_campaign_change', c.pk)}\n"
            ),
            event_data=_campaign_data(c),
        )
        for c in campaigns
    ]


def waitlist_demand_causes(*, now: datetime) -> list[Cause]:
    """Live campaigns whose waitlist holds more buyers than their merchant's threshold, once
    per campaign."""
    campaigns = list(
        Campaign.objects.filter(_live(now))
        .exclude(_not_alerted(WAITLIST_DEMAND))
        .annotate(waiting=waitlist_length_expression())
        .filter(waiting__gt=0)
        .order_by("pk")
    )
    thresholds = _settings_of({c.merchant_id for c in campaigns})
    causes = []
    for c in campaigns:
        threshold = thresholds[c.merchant_id].waitlist_threshold
        waiting = int(getattr(c, "waiting", 0))
        if waiting > threshold:
            causes.append(
                Cause(
                    merchant_id=c.merchant_id,
                    kind=WAITLIST_DEMAND,
                    cause=f"campaign:{c.pk}",
                    subject_id=c.pk,
                    subject=f"Waitlist demand: {waiting} buyers wait for #{c.hashtag}",
                    body=(
                        f"{waiting} buyers are on the waitlist of campaign #{c.hashtag}, above "
                        f"your threshold of {threshold}: more stock would sell.\n\n"
                        f"{admin_url('admin:catalog_campaign_change', c.pk)}\n"
                    ),
                )
            )
    return causes


def _settings_of(merchant_ids: Iterable[int]) -> dict[int, AlertSettings]:
    ids = set(merchant_ids)
    found = {s.merchant_id: s for s in AlertSettings.objects.filter(merchant_id__in=ids)}
    return {m: found.get(m) or AlertSettings(merchant_id=m) for m in ids}


# --- Payments, disputes, returns ----------------------------------------------------------------
def payment_failed_causes(*, now: datetime) -> list[Cause]:
    """Captures and voids that failed for good (the payment outbox gave up or the gateway
    refused), once per operation."""
    ops = (
        PaymentOperation.objects.filter(
            status=OutboxStatus.FAILED,
            operation__in=[PaymentOperationKind.CAPTURE, PaymentOperationKind.VOID],
            updated_at__gte=now - LOOKBACK,
        )
        .exclude(_not_alerted(PAYMENT_FAILED))
        .select_related("order")
        .order_by("pk")
    )
    return [
        Cause(
            merchant_id=op.order.merchant_id,
            kind=PAYMENT_FAILED,
            cause=f"payment_op:{op.pk}",
            subject_id=op.pk,
            subject=f"The {op.operation} of order #{op.order.confirmation_code} failed",
            body=(
                f"The {op.operation} of order #{op.order.confirmation_code} "
                f"({op.order.total} {op.order.currency}) failed after {op.attempts} attempt(s)"
                + (f" (gateway code: {op.result})" if op.result else "")
                + ". It can be run again with retry_payments.\n\n"
                + f"{admin_url('admin:orders_order_change', op.order_id)}\n"
            ),
        )
        for op in ops
    ]


def dispute_opened_causes(*, now: datetime) -> list[Cause]:
    """Disputes ("Not me") opened, once each."""
    disputes = (
        Dispute.objects.filter(opened_at__gte=now - LOOKBACK)
        .exclude(_not_alerted(DISPUTE_OPENED))
        .select_related("order", "merchant")
        .order_by("pk")
    )
    return [
        Cause(
            merchant_id=d.merchant_id,
            kind=DISPUTE_OPENED,
            cause=f"dispute:{d.pk}",
            subject_id=d.pk,
            subject=f"Dispute opened on order #{d.order.confirmation_code}",
            body=(
                f"The buyer of order #{d.order.confirmation_code} says they did not make it. "
                f"Answer by {local_moment_words(d.deadline, d.merchant.time_zone)}.\n\n"
                f"{admin_url('admin:orders_dispute_change', d.pk)}\n"
            ),
        )
        for d in disputes
    ]


def return_opened_causes(*, now: datetime) -> list[Cause]:
    """Returns asked for (or opened by a dispute's resolution), once each. The buyer's reason
    stays in the admin: it is their free text."""
    returns = (
        Return.objects.filter(requested_at__gte=now - LOOKBACK)
        .exclude(_not_alerted(RETURN_OPENED))
        .select_related("order")
        .order_by("pk")
    )
    return [
        Cause(
            merchant_id=r.merchant_id,
            kind=RETURN_OPENED,
            cause=f"return:{r.pk}",
            subject_id=r.pk,
            subject=f"Return opened on order #{r.order.confirmation_code}",
            body=(
                f"A return was opened on order #{r.order.confirmation_code} ({r.status}).\n\n"
                f"{admin_url('admin:orders_return_change', r.pk)}\n"
            ),
        )
        for r in returns
    ]


# --- Shipments (through fulfillment's selectors) ----------------------------------------------
def authorization_lapse_causes(*, now: datetime) -> list[Cause]:
    """Paid orders in the label queue whose card authorization will be older than
    ``HASHCART["AUTH_LAPSE_DAYS"]`` before their ship-by day ends (in the merchant's zone):
    the label may be bought, and the capture tried, after the hold lapsed. Once per order.
    The authorization's age runs from when it was queued, erring early as the payment
    outbox's give-up does (``payment_give_up_at``)."""
    labels_due = import_string(settings.HASHCART["ALERT_LABELS_DUE_SOURCE"])
    shipments = [
        s for s in labels_due(now=now, due_by=date.max) if s.order.status == OrderStatus.PAID
    ]
    if not shipments:
        return []
    order_ids = [s.order_id for s in shipments]
    authorized = dict(
        PaymentOperation.objects.filter(
            order_id__in=order_ids, operation=PaymentOperationKind.AUTHORIZE
        ).values_list("order_id", "created_at")
    )
    alerted = set(
        Alert.objects.filter(kind=AUTHORIZATION_LAPSE, subject_id__in=order_ids).values_list(
            "subject_id", flat=True
        )
    )
    lapse = timedelta(days=settings.HASHCART["AUTH_LAPSE_DAYS"])
    causes = []
    for s in shipments:
        since = authorized.get(s.order_id)
        if since is None or s.order_id in alerted:
            continue
        zone = ZoneInfo(s.merchant.time_zone)
        ship_by_ends = datetime.combine(s.ship_by + timedelta(days=1), datetime.min.time(), zone)
        lapses_at = since + lapse
        if lapses_at >= ship_by_ends:
            continue
        code = s.order.confirmation_code
        causes.append(
            Cause(
                merchant_id=s.merchant_id,
                kind=AUTHORIZATION_LAPSE,
                cause=f"order:{s.order_id}",
                subject_id=s.order_id,
                subject=f"Order #{code}: buy its label before its authorization lapses",
                body=(
                    f"The card authorization of order #{code} ({s.order.total} "
                    f"{s.order.currency}) lapses about "
                    f"{local_moment_words(lapses_at, s.merchant.time_zone)}, "
                    f"before its ship-by day ({s.ship_by:%a %d %b}) ends. Buy its label (which "
                    "captures the payment) before then.\n\n"
                    f"{admin_url('admin:orders_order_change', s.order_id)}\n"
                ),
            )
        )
    return causes


def late_shipments_digest(*, now: datetime) -> list[Alert]:
    """Each merchant's daily digest of late shipments, once per merchant and local day, from
    its chosen local time on (``AlertSettings.digest_time``, its time zone), or until the next
    day's time when no sweep ran at it. A day with none
    late is recorded too (``emails`` 0), so the day is looked at once."""
    late_rows = import_string(settings.HASHCART["ALERT_LATE_SHIPMENTS_SOURCE"])
    merchants = list(Merchant.objects.order_by("pk"))
    chosen = _settings_of(m.pk for m in merchants)
    # Merchants whose digests already run: before today's time comes, yesterday's is still
    # owed if no sweep ran at its time (the beat was down, or its time fell just before
    # midnight, between two sweeps). A merchant's first digest is today's, never yesterday's.
    running = set(
        Alert.objects.filter(kind=LATE_SHIPMENTS, merchant_id__in=[m.pk for m in merchants])
        .values_list("merchant_id", flat=True)
        .distinct()
    )
    due: dict[int, tuple[Merchant, date]] = {}
    for merchant in merchants:
        local = now.astimezone(ZoneInfo(merchant.time_zone))
        if local.time() >= chosen[merchant.pk].digest_time:
            due[merchant.pk] = (merchant, local.date())
        elif merchant.pk in running:
            due[merchant.pk] = (merchant, local.date() - timedelta(days=1))
    done = set(
        Alert.objects.filter(
            kind=LATE_SHIPMENTS,
            merchant_id__in=list(due),
            cause__in=sorted({f"digest:{day.isoformat()}" for _, day in due.values()}),
        ).values_list("merchant_id", "cause")
    )
    raised = []
    for merchant, day in due.values():
        cause_key = f"digest:{day.isoformat()}"
        if (merchant.pk, cause_key) in done:
            continue
        on = alert_kind_on(chosen[merchant.pk], LATE_SHIPMENTS)
        rows = (
            [r for r in late_rows(now=now, merchant_slug=merchant.slug) if r.state == "late"]
            if on
            else []  # turned off: the day is recorded, its shipments not read
        )
        cause = Cause(
            merchant_id=merchant.pk,
            kind=LATE_SHIPMENTS,
            cause=cause_key,
            subject=f"{len(rows)} late shipment(s) on {day:%a %d %b}",
            body=_digest_body(rows, day) if rows else "No late shipments.",
        )
        with transaction.atomic():
            if rows:
                raised.extend(alerts_raise([cause], now=now))
            else:
                alert_record(cause, now=now)
    return raised


def _digest_body(rows: list[Any], day: date) -> str:
    lines = [f"Late shipments on {day:%A %d %B %Y}:", ""]
    for row in rows[:DIGEST_MAX_ROWS]:
        s = row.shipment
        lines.append(
            f"- #{s.order.confirmation_code}: ship by {s.ship_by:%a %d %b}, "
            f"{row.reason} ({admin_url('admin:fulfillment_shipment_change', s.pk)})"
        )
    if len(rows) > DIGEST_MAX_ROWS:
        lines.append(f"… and {len(rows) - DIGEST_MAX_ROWS} more (fulfillment_sla lists them).")
    return "\n".join(lines) + "\n"


# --- The sweep ----------------------------------------------------------------------------------
FINDERS: tuple[Callable[..., list[Cause]], ...] = (
    low_stock_causes,
    sold_out_causes,
    waitlist_demand_causes,
    payment_failed_causes,
    authorization_lapse_causes,
    dispute_opened_causes,
    return_opened_causes,
)


def causes_raise(causes: Iterable[Cause], *, now: datetime) -> list[Alert]:
    """Raise found causes, one transaction per merchant and kind (the alerts, their e-mails
    and, for campaign alerts, their webhook events, together or not at all)."""
    groups: dict[tuple[int, str], list[Cause]] = defaultdict(list)
    for cause in causes:
        groups[(cause.merchant_id, cause.kind)].append(cause)
    raised: list[Alert] = []
    for (merchant_id, kind), group in groups.items():
        data = {c.cause: c.event_data for c in group}
        try:
            with transaction.atomic():
                new = alerts_raise(group, now=now)
                if kind in WEBHOOK_EVENTS:
                    for alert in new:
                        webhook_event_record(
                            merchant_id=merchant_id,
                            event_type=WEBHOOK_EVENTS[kind],
                            data={"campaign": dict(data[alert.cause] or {})},
                            event_key=alert.cause,
                            now=now,
                        )
        except Exception:
            # One merchant's group failing (its webhook events, say) rolls back alone and is
            # found again by the next sweep; the other merchants' alerts go on.
            logger.exception("alerts: raising %s for merchant %s failed", kind, merchant_id)
            continue
        raised.extend(new)
    return raised


def alerts_sweep(*, now: datetime) -> Counter[str]:
    """Re-arm low-stock alerts, then find and raise every cause; returns the alerts raised now
    by kind (those of kinds a merchant turned off included: they are recorded unsent)."""
    low_stock_rearm(now=now)
    raised: Counter[str] = Counter()
    for finder in FINDERS:
        for alert in causes_raise(finder(now=now), now=now):
            raised[alert.kind] += 1
    for alert in late_shipments_digest(now=now):
        raised[alert.kind] += 1
    return raised
