"""Labels ship orders and capture payments once; tracking moves shipments on (DESIGN §7)."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from fulfillment.carriers.base import Carrier, CarrierError
from fulfillment.models import Shipment, ShipmentStatus, TrackingEvent
from fulfillment.services import label_buy, shipment_track
from orders.models import Order, OrderStatus, PaymentOperation
from orders.pipeline import stage_payments
from orders.services import order_cancel
from sandbox.models import SandboxLabel, SandboxLedgerEntry
from tests.shop import BRAND, buyer_ready, code_in, post, replies_to, shop_open, tick

pytestmark = pytest.mark.django_db


def paid_order(handle: str = "alice", address: str = "1 Main Street") -> Order:
    """A paid order of ``handle``'s, with its shipment awaiting a label."""
    buyer = buyer_ready(handle)
    if address != "1 Main Street":
        buyer.card.address_line1 = address
        buyer.card.save()
    post(handle, f"@{BRAND} #BuyKindleFireHD")
    tick()
    post(handle, f"@{BRAND} #Confirm{code_in(replies_to(handle)[-1])}")
    tick()
    tick()
    order = Order.objects.get(cardholder=buyer.cardholder)
    assert order.status == OrderStatus.PAID
    return order


def test_buying_the_label_ships_the_order_and_captures_once():
    shop_open()
    order = paid_order()
    outcome = label_buy(shipment_id=order.shipment.pk)
    assert outcome.status == "bought"
    assert label_buy(shipment_id=order.shipment.pk).status == "skipped"
    stage_payments(now=timezone.now())
    stage_payments(now=timezone.now())
    order.refresh_from_db()
    shipment = order.shipment
    assert (order.status, shipment.status) == (OrderStatus.SHIPPED, ShipmentStatus.LABEL_BOUGHT)
    assert shipment.tracking_number.startswith("SBX")
    assert shipment.tracking_number == outcome.detail
    captures = SandboxLedgerEntry.objects.filter(operation="capture")
    assert [(c.amount, c.calls) for c in captures] == [(order.total, 1)]
    assert order.notifications.filter(kind="shipped").exists()


def test_a_cancelled_order_gets_no_label():
    shop_open()
    order = paid_order()
    order_cancel(order_id=order.pk, now=timezone.now(), actor_label="t", reason="operator")
    assert label_buy(shipment_id=order.shipment.pk).status == "skipped"
    assert not PaymentOperation.objects.filter(operation="capture").exists()


class Down(Carrier):
    name = "down"

    def buy_label(self, *, parcel, reference="", remember=None):
        raise CarrierError("503 from the carrier")

    def track(self, *, tracking_number, reference, now):
        raise CarrierError("503 from the carrier")


def test_a_carrier_failure_leaves_the_shipment_for_the_next_run():
    shop_open()
    order = paid_order()
    assert label_buy(shipment_id=order.shipment.pk, carrier=Down()).status == "failed"
    shipment = Shipment.objects.get(pk=order.shipment.pk)
    assert (shipment.status, shipment.label_claimed_until) == (ShipmentStatus.AWAITING_LABEL, None)
    assert label_buy(shipment_id=shipment.pk).status == "bought"


def test_a_dead_buyers_lease_lapses():
    shop_open()
    order = paid_order()
    Shipment.objects.filter(pk=order.shipment.pk).update(
        label_claimed_until=timezone.now() + timedelta(minutes=2)
    )
    assert label_buy(shipment_id=order.shipment.pk).status == "skipped"
    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        assert label_buy(shipment_id=order.shipment.pk).status == "bought"


def test_tracking_moves_the_shipment_and_the_order_to_delivered():
    shop_open()
    order = paid_order()
    label_buy(shipment_id=order.shipment.pk)
    bought_at = SandboxLabel.objects.get().bought_at  # the carrier's clock
    shipment_id = order.shipment.pk
    assert shipment_track(shipment_id=shipment_id, now=bought_at + timedelta(minutes=30)) == (
        "label_bought"
    )
    assert shipment_track(shipment_id=shipment_id, now=bought_at + timedelta(hours=2)) == (
        "in_transit"
    )
    assert shipment_track(shipment_id=shipment_id, now=bought_at + timedelta(hours=33)) == (
        "delivered"
    )
    # Polled again: nothing twice.
    shipment_track(shipment_id=shipment_id, now=bought_at + timedelta(hours=40))
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    shipment = order.shipment
    assert shipment.shipped_at == bought_at + timedelta(hours=1)
    assert shipment.delivered_at == bought_at + timedelta(hours=32)
    assert list(
        TrackingEvent.objects.filter(shipment=shipment)
        .order_by("occurred_at")
        .values_list("status", flat=True)
    ) == ["pre_transit", "in_transit", "out_for_delivery", "delivered"]
    assert list(order.events.values_list("kind", flat=True))[-2:] == ["shipped", "delivered"]


def test_a_carrier_exception_is_recorded():
    shop_open()
    order = paid_order(address="1 Exception Road")
    label_buy(shipment_id=order.shipment.pk)
    bought_at = SandboxLabel.objects.get().bought_at
    status = shipment_track(shipment_id=order.shipment.pk, now=bought_at + timedelta(hours=33))
    assert status == "exception"
    assert Shipment.objects.get(pk=order.shipment.pk).exception_reason == "Address not found"


def test_marking_shipped_by_hand_waits_for_a_label_being_bought():
    from fulfillment.services import order_mark_shipped

    shop_open()
    order = paid_order()
    # buy_labels holds the lease: the carrier is selling it a label right now.
    Shipment.objects.filter(order=order).update(
        label_claimed_until=timezone.now() + timedelta(minutes=2)
    )
    assert order_mark_shipped(order=order, carrier="UPS", tracking_number="1Z", actor="t") == (
        "skipped"
    )
    assert Shipment.objects.get(order=order).status == ShipmentStatus.AWAITING_LABEL
