"""Buying labels, which ships the order and captures its payment exactly once (DESIGN §7).

One buyer per shipment: a lease taken by compare-and-set (``label_claimed_until``), so two
``buy_labels`` runs at once never buy twice. The carrier is called outside any transaction; the
result is applied in one: the shipment to ``label_bought``, the order to ``shipped``, and the
capture written to the payment outbox, whose row is unique per order and operation and whose
idempotency key makes the gateway charge once however often it is presented. The capture is
then run at once, so every caller (command, admin, API) gets it without running the outbox.
"""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from core import outbox
from core.exceptions import ApplicationError
from core.outbox import Lease
from fulfillment.carriers import carrier_for, default_carrier
from fulfillment.carriers.base import Carrier, CarrierError, Label
from fulfillment.models import (
    CARRIER_MAX_LENGTH,
    TRACKING_NUMBER_MAX_LENGTH,
    Shipment,
    ShipmentStatus,
)
from fulfillment.selectors import parcel_of
from fulfillment.services.schedule import shipment_transition
from orders.models import Order, OrderStatus
from orders.services import order_capture, order_ship


@dataclass(frozen=True)
class LabelOutcome:
    """``bought``, ``skipped`` (not awaiting a label, another run holds it, or the order is no
    longer paid) or ``failed`` (the carrier failed; the shipment waits for the next run)."""

    status: str
    detail: str = ""


def label_buy(*, shipment_id: int, carrier: Carrier | None = None) -> LabelOutcome:
    """Buy the label of one shipment from ``carrier`` (default: ``HASHCART["DEFAULT_CARRIER"]``)."""
    lease = _claim(shipment_id)
    if lease is None:
        return LabelOutcome("skipped", "not awaiting a label, or another run is buying it")
    shipment = Shipment.objects.select_related("order").get(pk=shipment_id)
    order = shipment.order
    if order.status != OrderStatus.PAID:
        lease.release(Shipment.objects.filter(pk=shipment_id))
        return LabelOutcome("skipped", f"order is {order.status}")
    carrier = carrier or default_carrier()
    parcel = parcel_of(shipment)
    try:
        label = carrier.buy_label(
            parcel=parcel,
            reference=shipment.carrier_reference,
            remember=lambda reference: Shipment.objects.filter(pk=shipment_id).update(
                carrier_reference=reference
            ),
        )
    except CarrierError as exc:
        lease.release(Shipment.objects.filter(pk=shipment_id))
        return LabelOutcome("failed", str(exc)[:200])
    return _shipped(shipment_id=shipment_id, label=label, actor="buy_labels", lease=lease)


def order_mark_shipped(*, order: Order, carrier: str, tracking_number: str, actor: str) -> str:
    """Record a label bought outside Hashcart (``mark_shipped``): the same transition and the
    same single capture as a bought label. Returns ``bought`` or ``skipped``.

    Raises ``ApplicationError`` for a carrier name or tracking number longer than the shipment
    keeps (they are looked up as typed, so they are refused rather than cut).
    """
    if len(carrier) > CARRIER_MAX_LENGTH or len(tracking_number) > TRACKING_NUMBER_MAX_LENGTH:
        raise ApplicationError(
            f"A carrier name has at most {CARRIER_MAX_LENGTH} characters and a tracking number "
            f"at most {TRACKING_NUMBER_MAX_LENGTH}."
        )
    shipment = Shipment.objects.filter(order=order).first()
    lease = None if shipment is None else _claim(shipment.pk)
    if shipment is None or lease is None:
        return "skipped"  # none, or buy_labels is buying its label right now
    label = Label(carrier=carrier, tracking_number=tracking_number, label_url="")
    return _shipped(shipment_id=shipment.pk, label=label, actor=actor, lease=lease).status


def _claim(shipment_id: int) -> Lease | None:
    """Take the shipment's label lease (compare-and-set, ``HASHCART["OUTBOX"]["labels"]``): one
    label per shipment at a time. None if it is not awaiting a label or another run holds it."""
    return outbox.claim(
        Shipment.objects.filter(pk=shipment_id, status=ShipmentStatus.AWAITING_LABEL),
        now=timezone.now(),
        lease=outbox.policy("labels").lease,
        field="label_claimed_until",
    )


def _shipped(*, shipment_id: int, label: Label, actor: str, lease: Lease) -> LabelOutcome:
    now = timezone.now()
    with transaction.atomic():
        # Campaign, then order (``order_ship`` locks them), then shipment: the order in which
        # cancelling locks them.
        shipment = Shipment.objects.get(pk=shipment_id)
        shipped = order_ship(
            order_id=shipment.order_id,
            carrier=label.carrier,
            tracking_number=label.tracking_number,
            actor=actor,
            now=now,
        )
        if shipped.result == "not_paid":
            lease.release(Shipment.objects.filter(pk=shipment_id))
            return LabelOutcome("skipped", f"order is {shipped.order_status}")
        bought = shipped.result == "shipped" and shipment_transition(
            shipment=shipment,
            transition="buy_label",
            fields={
                "carrier": label.carrier,
                "tracking_number": label.tracking_number,
                "label_url": label.label_url,
                "carrier_reference": label.reference,
                "label_bought_at": now,
                "label_claimed_until": None,
            },
        )
        if not bought:
            transaction.set_rollback(True)
            return LabelOutcome("skipped", "changed meanwhile")
    # Capture now rather than at the payments sweep (outside the transaction: it calls the
    # gateway); a gateway that fails leaves it to the sweep's retries.
    order_capture(order_id=shipment.order_id, now=now)
    return LabelOutcome("bought", label.tracking_number)


def carrier_of(shipment: Shipment) -> Carrier:
    return carrier_for(shipment.carrier) if shipment.carrier else default_carrier()
