"""Tracking numbers and carrier names are kept whole or refused, never cut or a crash (issue 10,
item 3): they are looked up as they were typed."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from fulfillment.models import TRACKING_NUMBER_MAX_LENGTH, Shipment, ShipmentStatus
from fulfillment.tests.test_labels_and_tracking import paid_order
from tests.shop import shop_open

pytestmark = pytest.mark.django_db


def test_mark_shipped_keeps_a_long_tracking_number_whole():
    shop_open()
    order = paid_order()
    tracking = "1Z" + "9" * (TRACKING_NUMBER_MAX_LENGTH - 2)
    call_command("mark_shipped", str(order.pk), "--tracking", tracking, stdout=io.StringIO())
    shipment = Shipment.objects.get(order=order)
    assert (shipment.status, shipment.tracking_number) == (ShipmentStatus.LABEL_BOUGHT, tracking)


def test_mark_shipped_refuses_a_tracking_number_too_long_to_keep():
    shop_open()
    order = paid_order()
    with pytest.raises(CommandError, match="tracking number"):
        call_command(
            "mark_shipped",
            str(order.pk),
            "--tracking",
            "9" * (TRACKING_NUMBER_MAX_LENGTH + 1),
            stdout=io.StringIO(),
        )
    assert Shipment.objects.get(order=order).status == ShipmentStatus.AWAITING_LABEL
