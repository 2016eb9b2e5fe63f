"""The database rejects inconsistent shipments."""

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from fulfillment.models import Shipment
from fulfillment.tests.factories import ShipmentFactory

pytestmark = pytest.mark.django_db


def test_delivery_is_promised_after_the_ship_by_date():
    shipment = ShipmentFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Shipment.objects.filter(pk=shipment.pk).update(promised_delivery=F("ship_by"))


def test_status_must_be_a_known_state():
    shipment = ShipmentFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Shipment.objects.filter(pk=shipment.pk).update(status="lost")


def test_an_order_has_one_shipment():
    shipment = ShipmentFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        ShipmentFactory(order=shipment.order)
