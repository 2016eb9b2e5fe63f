"""Periodic fulfillment work: ask the carriers about shipments on their way (DESIGN §7)."""

import logging

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from fulfillment.carriers.base import CarrierError
from fulfillment.services import shipment_track, shipments_to_track
from fulfillment.services.returns import return_label_buy, returns_sweep

logger = logging.getLogger(__name__)


@shared_task(
    name="fulfillment.track_shipments",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def track_shipments_task() -> int:
    """Poll every trackable shipment once, then the returns (labels still missing bought, those
    on their way back polled); a carrier that fails is tried again next time."""
    tracked = 0
    for shipment_id in shipments_to_track():
        try:
            shipment_track(shipment_id=shipment_id, now=timezone.now())
            tracked += 1
        except CarrierError as exc:
            logger.warning("tracking shipment %s failed: %s", shipment_id, exc)
    returns = returns_sweep(now=timezone.now())
    return tracked + returns["tracked"]


@shared_task(
    name="fulfillment.return_label_buy",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def return_label_buy_task(return_id: int) -> str:
    """Buy an approved return's label (``return_label_buy``; idempotent: the lease and the
    carrier's reference make a second run buy nothing)."""
    return return_label_buy(return_id=return_id).status


def return_label_enqueue(*, return_id: int) -> None:
    """``HASHCART["RETURN_APPROVED_HANDLER"]``: orders approved a return (called after the
    commit): buy its label now rather than at the next sweep."""
    return_label_buy_task.delay(return_id)
