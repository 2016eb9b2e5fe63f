"""Writes of fulfillment: scheduling the two-day shipment of a paid order, and cancelling it
with its order (DESIGN §7)."""

from datetime import datetime
from typing import Any

from django.db import transaction
from django_fsm import ConcurrentTransition, can_proceed

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
    """Run a declared shipment transition, set ``fields``, and save by compare-and-set on the
    status; False, changing nothing, if it is not allowed from the current status or another
    worker won."""
    method = getattr(shipment, transition)
    if not can_proceed(method):
        return False
    method()
    for name, value in (fields or {}).items():
        setattr(shipment, name, value)
    try:
        with transaction.atomic():
            shipment.save(update_fields=["status", "updated_at", *(fields or {})])
    except ConcurrentTransition:
        shipment.refresh_from_db()
        return False
    return True
