"""Writes of fulfillment: scheduling the two-day shipment of a paid order, and cancelling it
with its order (DESIGN §7)."""

from datetime import datetime
from typing import Any

from core.fsm import transition_save
from fulfillment.business_days import add_business_days, closures, ship_by_date
from fulfillment.models import Shipment
from orders.models import Order

TWO_DAY = 2


def shipment_schedule(*, order: Order, now: datetime) -> Shipment:
    """Create the shipment of ``order``, just paid at ``now``, in the caller's transaction.

    Ship-by: today (merchant's time zone) if before the merchant's cut-off on a business day,
    else the next business day. Promised delivery: two business days after ship-by.
    Idempotent: an order that has a shipment keeps it.
    """
    merchant = order.merchant
    closed = closures()
    ship_by = ship_by_date(
        paid_at=now, time_zone=merchant.time_zone, cutoff=merchant.cutoff_time, closed=closed
    )
    shipment, _ = Shipment.objects.get_or_create(
        order=order,
        defaults={
            "merchant_id": order.merchant_id,
            "ship_by": ship_by,
            "promised_delivery": add_business_days(ship_by, TWO_DAY, closed),
        },
    )
    return shipment


def shipment_cancel(*, order: Order) -> bool:
    """Cancel the shipment of ``order``, being cancelled, in the caller's transaction; True if
    there was one that had not left yet. A label not yet bought is simply never bought."""
    shipment = Shipment.objects.filter(order=order).first()
    if shipment is None:
        return False
    return shipment_transition(shipment=shipment, transition="cancel")


def shipment_transition(
    *, shipment: Shipment, transition: str, fields: dict[str, Any] | None = None
) -> bool:
    """Run a shipment's ``transition`` by compare-and-set (``core.fsm.transition_save``);
    False, changing nothing, if it is not allowed from its status or another worker won."""
    return transition_save(instance=shipment, transition=transition, fields=fields)
