"""Reads for ops: what to ship today, and what is at risk or late (DESIGN §7, §10.4).

"Today" is each merchant's own date (its time zone), as ship-by dates are.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet

from catalog.models import Merchant
from fulfillment.models import Shipment, ShipmentStatus

OPEN = (ShipmentStatus.AWAITING_LABEL, ShipmentStatus.LABEL_BOUGHT, ShipmentStatus.IN_TRANSIT)
NOT_DELIVERED = (*OPEN, ShipmentStatus.EXCEPTION)


def merchant_today(merchant: Merchant, now: datetime) -> date:
    return now.astimezone(ZoneInfo(merchant.time_zone)).date()


def _merchants(merchant_slug: str | None) -> QuerySet[Merchant]:
    merchants = Merchant.objects.order_by("slug")
    return merchants.filter(slug=merchant_slug) if merchant_slug else merchants


def fulfillment_queue(*, now: datetime, merchant_slug: str | None = None) -> list[Shipment]:
    """Shipments whose label is due by each merchant's today: to pick, pack and ship, the most
    overdue first."""
    due = Q()
    for merchant in _merchants(merchant_slug):
        due |= Q(merchant=merchant, ship_by__lte=merchant_today(merchant, now))
    if not due:
        return []
    return list(
        Shipment.objects.filter(due, status=ShipmentStatus.AWAITING_LABEL)
        .select_related("order", "merchant")
        .order_by("ship_by", "id")
    )


@dataclass(frozen=True)
class SlaRow:
    shipment: Shipment
    state: str  # "late" or "at risk"
    reason: str


def sla_rows(*, now: datetime, merchant_slug: str | None = None) -> Iterator[SlaRow]:
    """Late: not handed over after its ship-by day, or not delivered after its promised day.
    At risk: due to leave today without a label, due to arrive today and not delivered, or in
    exception."""
    for merchant in _merchants(merchant_slug):
        today = merchant_today(merchant, now)
        shipments = (
            Shipment.objects.filter(merchant=merchant, status__in=NOT_DELIVERED)
            .filter(Q(ship_by__lte=today) | Q(promised_delivery__lte=today) | Q(status="exception"))
            .select_related("order", "merchant")
            .order_by("promised_delivery", "id")
        )
        for s in shipments:
            if s.status == ShipmentStatus.AWAITING_LABEL and s.ship_by < today:
                yield SlaRow(s, "late", f"not shipped, was due {s.ship_by:%a %d %b}")
            elif s.promised_delivery < today:
                yield SlaRow(s, "late", f"not delivered, promised {s.promised_delivery:%a %d %b}")
            elif s.status == ShipmentStatus.EXCEPTION:
                yield SlaRow(s, "at risk", f"carrier exception: {s.exception_reason or 'unknown'}")
            elif s.status == ShipmentStatus.AWAITING_LABEL:
                yield SlaRow(s, "at risk", "ships today and has no label yet")
            else:
                yield SlaRow(s, "at risk", "promised for today")
