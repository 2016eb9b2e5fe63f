"""Tracking: what carriers report moves shipments and their orders on (DESIGN §7).

Updates come from polling (``track_shipments``, a periodic task) and from carrier webhooks; both
go through ``shipment_track``. Only shipments whose label Hashcart bought are tracked, and they
are matched by the carrier's own reference recorded at purchase (``carrier_reference``), never
by a tracking number alone: a merchant may type any number for a label bought elsewhere, even
another merchant's, and must not capture that shipment's updates. Each update is stored once
(``TrackingEvent`` is unique per shipment, time and status); the transitions are
compare-and-set, so a repeated or out-of-order report changes nothing twice.
"""

from datetime import datetime

from django.conf import settings
from django.db import transaction

from core.lengths import fit
from fulfillment.carriers.base import TrackingStatus, TrackingUpdate
from fulfillment.models import Shipment, ShipmentStatus, TrackingEvent
from fulfillment.services.labels import carrier_of
from fulfillment.services.schedule import shipment_transition
from orders.services import order_deliver

TRACKABLE = (ShipmentStatus.LABEL_BOUGHT, ShipmentStatus.IN_TRANSIT, ShipmentStatus.EXCEPTION)
_MOVING = (TrackingStatus.IN_TRANSIT, TrackingStatus.OUT_FOR_DELIVERY)


def shipments_to_track() -> list[int]:
    """Shipments on their way with a carrier Hashcart can ask (not labels bought elsewhere)."""
    return list(
        Shipment.objects.filter(
            status__in=TRACKABLE, carrier__in=list(settings.HASHCART["CARRIERS"])
        )
        # Carriers are asked by their own reference: a label recorded by hand has none.
        .exclude(carrier_reference="")
        .order_by("id")
        .values_list("pk", flat=True)
    )


def shipment_for_carrier_update(
    *, carrier: str, reference: str, tracking_number: str
) -> int | None:
    """The shipment a carrier's pushed update is about: the label Hashcart bought from that
    carrier under ``reference`` (with that tracking number), or None."""
    if not reference:
        return None
    return (
        Shipment.objects.filter(
            carrier=carrier, carrier_reference=reference, tracking_number=tracking_number
        )
        .values_list("pk", flat=True)
        .first()
    )


def shipment_track(
    *,
    shipment_id: int,
    now: datetime,
    updates: list[TrackingUpdate] | None = None,
    source: str = "poll",
) -> str:
    """Apply the carrier's updates (polled from it when ``updates`` is None); returns the
    shipment's status afterwards."""
    shipment = Shipment.objects.get(pk=shipment_id)
    if shipment.status not in TRACKABLE or not shipment.carrier_reference:
        return str(shipment.status)
    if updates is None:
        updates = carrier_of(shipment).track(
            tracking_number=shipment.tracking_number,
            reference=shipment.carrier_reference,
            now=now,
        )
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().get(pk=shipment_id)
        TrackingEvent.objects.bulk_create(
            [
                TrackingEvent(
                    shipment=shipment,
                    occurred_at=u.occurred_at,
                    # The carrier's words, cut to what the row keeps (``core.lengths``).
                    status=fit(u.status, 32),
                    description=fit(u.description, 300),
                    source=source,
                )
                for u in updates
            ],
            ignore_conflicts=True,
        )
        for update in sorted(updates, key=lambda u: u.occurred_at):
            _apply(shipment, update)
    return str(shipment.status)


def _apply(shipment: Shipment, update: TrackingUpdate) -> None:
    moving = update.status in _MOVING or update.status == TrackingStatus.DELIVERED
    if moving and shipment.status == ShipmentStatus.LABEL_BOUGHT:
        shipment_transition(
            shipment=shipment, transition="hand_over", fields={"shipped_at": update.occurred_at}
        )
    delivered = update.status == TrackingStatus.DELIVERED and shipment_transition(
        shipment=shipment, transition="deliver", fields={"delivered_at": update.occurred_at}
    )
    if delivered:
        order_deliver(order_id=shipment.order_id, delivered_at=update.occurred_at, actor="carrier")
    if update.status == TrackingStatus.EXCEPTION:
        shipment_transition(
            shipment=shipment,
            transition="report_exception",
            fields={"exception_reason": fit(update.description, 200)},
        )
