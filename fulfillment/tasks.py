"""Periodic fulfillment work: ask the carriers about shipments on their way (DESIGN §7)."""

import logging

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from fulfillment.carriers.base import CarrierError
from fulfillment.services import shipment_track, shipments_to_track

logger = logging.getLogger(__name__)


@shared_task(
    name="fulfillment.track_shipments",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def track_shipments_task() -> int:
    """Poll every trackable shipment once; a carrier that fails is tried again next time."""
    tracked = 0
    for shipment_id in shipments_to_track():
        try:
            shipment_track(shipment_id=shipment_id, now=timezone.now())
            tracked += 1
        except CarrierError as exc:
            logger.warning("tracking shipment %s failed: %s", shipment_id, exc)
    return tracked
