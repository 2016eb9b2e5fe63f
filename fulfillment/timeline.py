"""The shipment's part of an order's support timeline (``orders.timeline``), a source of
``HASHCART["ORDER_TIMELINE_SOURCES"]``: when it was scheduled, its label bought, handed to the
carrier and delivered, every tracking event the carrier sent, and an exception's reason."""

from fulfillment.models import Shipment, ShipmentStatus
from fulfillment.selectors import shipment_tracking_url
from orders.models import Order
from orders.timeline import FAILED, OK, WAITING, TimelineEntry


def shipment_timeline(*, order: Order) -> list[TimelineEntry]:
    """The shipment of ``order`` as timeline entries (none before it is paid): two queries."""
    shipment = Shipment.objects.filter(order_id=order.pk).prefetch_related("events").first()
    if shipment is None:
        return []
    case = ("fulfillment.shipment", shipment.pk)
    entries = [
        TimelineEntry(
            at=shipment.created_at,
            source="shipment",
            title=f"Shipment scheduled: ships by {shipment.ship_by:%a %d %b %Y}, "
            f"promised for {shipment.promised_delivery:%a %d %b %Y}",
            detail=f"Now: {shipment.get_status_display().lower()}",
            tone=WAITING if shipment.status == ShipmentStatus.AWAITING_LABEL else OK,
            actor="system",
            case=case,
        )
    ]
    tracking = f"{shipment.carrier} {shipment.tracking_number}".strip()
    url = shipment_tracking_url(carrier=shipment.carrier, tracking_number=shipment.tracking_number)
    for at, title in (
        (shipment.label_bought_at, "Label bought"),
        (shipment.shipped_at, "Handed to the carrier"),
        (shipment.delivered_at, "Delivered (carrier)"),
    ):
        if at is not None:
            entries.append(
                TimelineEntry(
                    at=at, source="shipment", title=title, detail=tracking, url=url, case=case
                )
            )
    for event in sorted(shipment.events.all(), key=lambda e: (e.occurred_at, e.pk)):
        exception = event.status == ShipmentStatus.EXCEPTION
        entries.append(
            TimelineEntry(
                at=event.occurred_at,
                source="tracking",
                title=f"Carrier: {event.status.replace('_', ' ')}",
                detail=event.description,
                status=event.status,
                tone=FAILED if exception else OK,
                actor=event.source,
                url=url,
            )
        )
    if shipment.status == ShipmentStatus.EXCEPTION and shipment.exception_reason:
        entries.append(
            TimelineEntry(
                at=shipment.updated_at,
                source="shipment",
                title="Shipment exception",
                detail=shipment.exception_reason,
                status=str(shipment.status),
                tone=FAILED,
                case=case,
            )
        )
    return entries
