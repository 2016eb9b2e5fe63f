"""factory_boy factories for fulfillment's models, over orders' factories."""

from datetime import timedelta

import factory
from django.utils import timezone

from fulfillment.models import Shipment
from orders.tests.factories import OrderFactory


class ShipmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shipment

    order = factory.SubFactory(OrderFactory)
    merchant = factory.SelfAttribute("order.merchant")
    ship_by = factory.LazyFunction(lambda: timezone.localdate())
    promised_delivery = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=2))
