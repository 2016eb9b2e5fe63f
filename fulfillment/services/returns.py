"""Return labels and their tracking (DESIGN §3.4, §7): the carrier side of orders' returns.

Orders owns the return and its states (``orders.services.returns``); fulfillment buys the label
of an approved return from the carrier (``Carrier.buy_return_label``: the sandbox's, EasyPost's
return shipments), outside any transaction and under the return's label lease, and records it
through orders. The label is tracked as outbound labels are, by polling (``returns_track``,
with the shipments) and by the carrier's webhook; when the carrier reports it delivered back,
the return is received (``return_receive``), which refunds what is left, and the refund runs at
once after the commit (the payment outbox gives it back once however often it is run).
"""

from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.exceptions import ApplicationError
from fulfillment.carriers import carrier_for, default_carrier
from fulfillment.carriers.base import Carrier, CarrierError, Parcel, TrackingStatus, TrackingUpdate
from fulfillment.services.labels import LabelOutcome
from orders.models import Return, ReturnStatus
from orders.services.payments import refund_run_on_commit
from orders.services.returns import (
    return_label_claim,
    return_label_record,
    return_label_release,
    return_label_remember,
    return_receive,
    returns_awaiting_label,
    returns_to_track,
)


def return_label_buy(*, return_id: int, carrier: Carrier | None = None) -> LabelOutcome:
    """Buy the label of one approved return from ``carrier`` (default:
    ``HASHCART["DEFAULT_CARRIER"]``): ``bought``, ``skipped`` (not approved, or another run
    holds it) or ``failed`` (the carrier failed; the next sweep tries again)."""
    lease = return_label_claim(return_id=return_id, now=timezone.now())
    if lease is None:
        return LabelOutcome("skipped", "not awaiting a label, or another run is buying it")
    returned = Return.objects.select_related("order").get(pk=return_id)
    order = returned.order
    carrier = carrier or default_carrier()
    parcel = Parcel(
        shipment_id=returned.pk,
        order_code=order.confirmation_code,
        product_name=order.product_name,
        ship_to={k: str(v) for k, v in order.ship_to.items()},
        ship_from_name=str(order.merchant_id),
    )
    try:
        label = carrier.buy_return_label(
            parcel=parcel,
            reference=returned.carrier_reference,
            remember=partial(_remember, return_id),
        )
    except CarrierError as exc:
        return_label_release(return_id=return_id, lease=lease)
        return LabelOutcome("failed", str(exc)[:200])
    bought = return_label_record(
        return_id=return_id,
        carrier=label.carrier,
        tracking_number=label.tracking_number,
        label_url=label.label_url,
        reference=label.reference,
        now=timezone.now(),
    )
    return LabelOutcome("bought" if bought else "skipped")


def _remember(return_id: int, reference: str) -> None:
    return_label_remember(return_id=return_id, reference=reference)


def return_track(
    *, return_id: int, now: datetime, updates: list[TrackingUpdate] | None = None
) -> str:
    """Apply the carrier's updates about a return on its way back (polled from it when
    ``updates`` is None); delivered back, it is received and refunded. Returns the return's
    status afterwards."""
    returned = Return.objects.get(pk=return_id)
    if returned.status != ReturnStatus.LABEL_BOUGHT or not returned.carrier_reference:
        return str(returned.status)
    if updates is None:
        updates = carrier_for(returned.carrier).track(
            tracking_number=returned.tracking_number,
            reference=returned.carrier_reference,
            now=now,
        )
    if any(update.status == TrackingStatus.DELIVERED for update in updates):
        try:
            with transaction.atomic():
                refund = return_receive(return_id=return_id, now=now, actor_label="carrier")
                if refund is not None:
                    refund_run_on_commit(refund_id=refund.pk, now=now)
        except ApplicationError:
            pass  # received meanwhile (staff said so, or a webhook raced the poll): done once
    return str(Return.objects.values_list("status", flat=True).get(pk=return_id))


def returns_sweep(*, now: datetime) -> dict[str, int]:
    """The periodic work on returns: buy the labels still missing (one lost hand-off only
    delays), then poll the carriers about returns on their way back. A carrier that fails is
    tried again next time. Counts by outcome."""
    counts = {"labels": 0, "tracked": 0, "failed": 0}
    for return_id in returns_awaiting_label():
        outcome = return_label_buy(return_id=return_id)
        if outcome.status == "bought":
            counts["labels"] += 1
        elif outcome.status == "failed":
            counts["failed"] += 1
    for return_id in returns_to_track(carriers=list(settings.HASHCART["CARRIERS"])):
        try:
            return_track(return_id=return_id, now=now)
            counts["tracked"] += 1
        except CarrierError:
            counts["failed"] += 1
    return counts
