"""Reads for ops: what to ship by the next business day (``labels_due``, the one list every
view of it reads), what buying those labels will cost and capture, and what is at risk or late
(DESIGN §7, §10.4).

"Today" is each merchant's own date (its time zone), as ship-by dates are.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet

from catalog.models import Merchant
from fulfillment.business_days import next_business_day
from fulfillment.carriers import carrier_for
from fulfillment.carriers.base import Carrier, CarrierError, Parcel, Quote
from fulfillment.models import Shipment, ShipmentStatus
from orders.models import OrderStatus

OPEN = (ShipmentStatus.AWAITING_LABEL, ShipmentStatus.LABEL_BOUGHT, ShipmentStatus.IN_TRANSIT)
# (A shipment with a label is still "not left" until the carrier scans it: in_transit.)
NOT_DELIVERED = (*OPEN, ShipmentStatus.EXCEPTION)


def shipment_tracking_url(*, carrier: str, tracking_number: str) -> str:
    """The public tracking page of a parcel of ``carrier`` (a key of ``HASHCART["CARRIERS"]``),
    or "" for an unknown carrier, no tracking number, or a carrier without such a page
    (``HASHCART["TRACKING_URL_SOURCE"]``, read by the buyer's order page)."""
    if not tracking_number:
        return ""
    try:
        return carrier_for(carrier).tracking_url(tracking_number=tracking_number)
    except LookupError:
        return ""


def parcel_of(shipment: Shipment) -> Parcel:
    """What the carrier is told about ``shipment`` (its order loaded): to quote or buy its
    label."""
    order = shipment.order
    return Parcel(
        shipment_id=shipment.pk,
        order_code=order.confirmation_code,
        product_name=order.product_name,
        ship_to={k: str(v) for k, v in order.ship_to.items()},
        ship_from_name=str(order.merchant_id),
    )


@dataclass(frozen=True)
class LabelToBuy:
    """One line of the buy-labels confirmation: ``buys`` (awaiting a label and its order paid)
    or why not (``skip_reason``); the label's price if the carrier quoted it; the amount its
    order's capture takes (the authorized total)."""

    shipment: Shipment
    buys: bool
    skip_reason: str
    label_price: Quote | None
    capture: Decimal
    currency: str


@dataclass(frozen=True)
class LabelPurchase:
    """What "Buy labels" will do: its lines, and the totals of what it buys, per currency.
    ``labels_total`` is None when some label's price is known only once bought."""

    lines: list[LabelToBuy]
    captures_total: dict[str, Decimal]
    labels_total: dict[str, Decimal] | None

    @property
    def buying(self) -> list[LabelToBuy]:
        return [line for line in self.lines if line.buys]


# The carrier is asked for at most this many quotes per page (one call each, while staff wait);
# beyond, prices are known when bought.
QUOTES_MAX = 25


def label_purchase_preview(*, shipments: list[Shipment], carrier: Carrier) -> LabelPurchase:
    """What buying the labels of ``shipments`` (their order and merchant loaded) would buy from
    ``carrier`` and capture, read without writing anything: the page staff confirm. The first
    ``QUOTES_MAX`` labels bought are quoted, if the carrier can."""
    lines = []
    quotes = QUOTES_MAX
    for shipment in shipments:
        order = shipment.order
        if shipment.status != ShipmentStatus.AWAITING_LABEL:
            reason = f"skipped: {shipment.get_status_display().lower()} already"
        elif order.status != OrderStatus.PAID:
            reason = f"skipped: the order is {order.get_status_display().lower()}"
        else:
            reason = ""
            quotes -= 1
        lines.append(
            LabelToBuy(
                shipment=shipment,
                buys=not reason,
                skip_reason=reason,
                label_price=None if reason or quotes <= 0 else _quote(carrier, shipment),
                capture=order.total,
                currency=order.currency,
            )
        )
    captures: dict[str, Decimal] = {}
    labels: dict[str, Decimal] | None = {}
    for line in lines:
        if not line.buys:
            continue
        captures[line.currency] = captures.get(line.currency, Decimal(0)) + line.capture
        if line.label_price is None or labels is None:
            labels = None
        else:
            price = line.label_price
            labels[price.currency] = labels.get(price.currency, Decimal(0)) + price.amount
    return LabelPurchase(lines=lines, captures_total=captures, labels_total=labels)


def _quote(carrier: Carrier, shipment: Shipment) -> Quote | None:
    try:
        return carrier.label_quote(parcel=parcel_of(shipment))
    except CarrierError:  # the contract says never; a page that fails to show is worse
        return None


def merchant_today(merchant: Merchant, now: datetime) -> date:
    return now.astimezone(ZoneInfo(merchant.time_zone)).date()


def _merchants(merchant_slug: str | None) -> QuerySet[Merchant]:
    merchants = Merchant.objects.order_by("slug")
    return merchants.filter(slug=merchant_slug) if merchant_slug else merchants


def labels_due_by(merchant: Merchant, now: datetime) -> date:
    """The default horizon of the label queue: the merchant's next business day. A paid order
    due tomorrow is work staff can (and should) do today; a queue that showed only today's would
    say "nothing to ship" while the admin shows the order waiting."""
    return next_business_day(merchant_today(merchant, now))


def labels_due_horizons(
    *,
    now: datetime,
    merchant_slug: str | None = None,
    merchant_id: int | None = None,
    due_by: date | None = None,
) -> dict[Merchant, date]:
    """Each merchant in scope with the ship-by day ``labels_due`` reaches for it: ``due_by``
    when given, else its next business day (``labels_due_by``). What "due" meant, for saying
    so ("Nothing to ship by Mon 30 Nov.")."""
    merchants = _merchants(merchant_slug)
    if merchant_id is not None:
        merchants = merchants.filter(pk=merchant_id)
    return {
        merchant: due_by if due_by is not None else labels_due_by(merchant, now)
        for merchant in merchants
    }


def labels_due_queryset(
    *,
    now: datetime,
    merchant_slug: str | None = None,
    merchant_id: int | None = None,
    due_by: date | None = None,
) -> QuerySet[Shipment]:
    """``labels_due`` as a query not yet run, for the shipment admin's "Labels due" filter to
    narrow its own (scoped, paginated) list with: the same rows by construction."""
    horizons = labels_due_horizons(
        now=now, merchant_slug=merchant_slug, merchant_id=merchant_id, due_by=due_by
    )
    due = Q()
    for merchant, horizon in horizons.items():
        due |= Q(merchant=merchant, ship_by__lte=horizon)
    if not due:
        return Shipment.objects.none()
    return (
        Shipment.objects.filter(due, status=ShipmentStatus.AWAITING_LABEL)
        .select_related("order", "merchant")
        .order_by("ship_by", "id")
    )


def labels_due(
    *,
    now: datetime,
    merchant_slug: str | None = None,
    merchant_id: int | None = None,
    due_by: date | None = None,
) -> list[Shipment]:
    """The one answer to "what should ship, and by when": shipments awaiting a label whose
    ship-by day is on or before ``due_by`` (default: each merchant's next business day,
    ``labels_due_by``), the most overdue first, with their order and merchant loaded.

    ``fulfillment_queue``, ``buy_labels``, the shipment admin and the merchant home page all
    read this, so they agree on the same data set."""
    return list(
        labels_due_queryset(
            now=now, merchant_slug=merchant_slug, merchant_id=merchant_id, due_by=due_by
        )
    )


def horizon_phrase(horizons: dict[Merchant, date]) -> str:
    """ "Mon 30 Nov", or "Mon 30 Nov to Tue 1 Dec" when merchants' horizons differ (their
    zones or calendars), or "" when there is no merchant in scope."""
    days = sorted(set(horizons.values()))
    if not days:
        return ""
    first, last = day_phrase(days[0]), day_phrase(days[-1])
    return first if first == last else f"{first} to {last}"


def day_phrase(day: date) -> str:
    """ "Mon 30 Nov": a ship-by day as staff read it."""
    return f"{day:%a} {day.day} {day:%b}"


@dataclass(frozen=True)
class SlaRow:
    shipment: Shipment
    state: str  # "late" or "at risk"
    reason: str


def sla_state(shipment: Shipment, today: date) -> tuple[str, str] | None:
    """``("late" | "at risk", reason)`` for a shipment against its merchant's ``today``, or
    None when it is on time. Late: not handed to the carrier after its ship-by day (with or
    without a label), or not delivered after its promised day. At risk: due to leave today and
    not yet with the carrier, due to arrive today, or in exception."""
    s = shipment
    if s.status in (ShipmentStatus.DELIVERED, ShipmentStatus.CANCELLED):
        return None
    not_left = s.status in (ShipmentStatus.AWAITING_LABEL, ShipmentStatus.LABEL_BOUGHT)
    if s.promised_delivery < today:
        return "late", f"not delivered, promised {s.promised_delivery:%a %d %b}"
    if not_left and s.ship_by < today:
        return "late", f"not handed to the carrier, was due {s.ship_by:%a %d %b}"
    if s.status == ShipmentStatus.EXCEPTION:
        return "at risk", f"carrier exception: {s.exception_reason or 'unknown'}"
    if not_left and s.ship_by == today:
        if s.status == ShipmentStatus.AWAITING_LABEL:
            return "at risk", "ships today and has no label yet"
        return "at risk", "ships today and the carrier has not scanned it yet"
    if s.promised_delivery == today:
        return "at risk", "promised for today"
    return None


def sla_rows(*, now: datetime, merchant_slug: str | None = None) -> Iterator[SlaRow]:
    """The late and at-risk shipments of each merchant (``sla_state``), by promised day."""
    for merchant in _merchants(merchant_slug):
        today = merchant_today(merchant, now)
        shipments = (
            Shipment.objects.filter(merchant=merchant, status__in=NOT_DELIVERED)
            .filter(Q(ship_by__lte=today) | Q(promised_delivery__lte=today) | Q(status="exception"))
            .select_related("order", "merchant")
            .order_by("promised_delivery", "id")
        )
        # Streamed: a reader that wants the first rows (the home page) stops reading there, however
        # many shipments a sale left late.
        for shipment in shipments.iterator(chunk_size=200):
            state = sla_state(shipment, today)
            if state is not None:
                yield SlaRow(shipment, *state)
