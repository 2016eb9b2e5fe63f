"""What fulfillment asks of an order (``order_ship``, ``order_capture``, ``order_deliver``)."""

import pytest
from django.db import transaction
from django.utils import timezone

from fulfillment.services import label_buy
from fulfillment.tests.test_labels_and_tracking import paid_order
from orders.models import Notification, OrderEvent, OrderStatus, OutboxStatus, PaymentOperation
from orders.services import order_capture, order_deliver, order_ship
from orders.tests.factories import OrderFactory
from tests.shop import shop_open

pytestmark = pytest.mark.django_db


def test_an_order_not_paid_is_not_shipped_and_nothing_is_written():
    order = OrderFactory()
    with transaction.atomic():
        outcome = order_ship(
            order_id=order.pk,
            carrier="sandbox",
            tracking_number="SBX1",
            actor="t",
            now=timezone.now(),
        )
    assert (outcome.result, outcome.order_status) == ("not_paid", OrderStatus.PENDING)
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert not OrderEvent.objects.filter(order=order).exists()
    assert not PaymentOperation.objects.filter(order=order).exists()
    assert not Notification.objects.filter(order=order).exists()


def test_a_paid_order_ships_once_with_its_audit_row_capture_and_email():
    shop_open()
    order = paid_order()
    now = timezone.now()
    with transaction.atomic():
        first = order_ship(
            order_id=order.pk, carrier="sandbox", tracking_number="SBX1", actor="t", now=now
        )
        second = order_ship(
            order_id=order.pk, carrier="sandbox", tracking_number="SBX1", actor="t", now=now
        )
    assert (first.result, second.result) == ("shipped", "not_paid")
    assert OrderEvent.objects.filter(order=order, kind="shipped").count() == 1
    assert PaymentOperation.objects.filter(order=order, operation="capture").count() == 1
    assert Notification.objects.filter(order=order, kind="shipped").count() == 1
    order_capture(order_id=order.pk, now=now)
    order_capture(order_id=order.pk, now=now)
    assert (
        PaymentOperation.objects.get(order=order, operation="capture").status == OutboxStatus.DONE
    )


def test_an_order_is_delivered_once():
    shop_open()
    order = paid_order()
    label_buy(shipment_id=order.shipment.pk)
    now = timezone.now()
    assert order_deliver(order_id=order.pk, delivered_at=now) is True
    assert order_deliver(order_id=order.pk, delivered_at=now) is False
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert OrderEvent.objects.filter(order=order, kind="delivered").count() == 1
