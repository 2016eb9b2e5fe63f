"""The order and its shipment say the same, true thing (issue 14): a bought label ships and
charges the order, but the parcel leaves at the carrier's first scan, so every page says
"Label bought, awaiting the carrier's scan" until then, and "In transit" after it."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from fulfillment.models import Shipment
from fulfillment.services import label_buy, order_mark_shipped, shipment_track
from fulfillment.tests.test_labels_and_tracking import paid_order
from fulfillment.tests.test_labels_due_views import staff_of
from orders.models import Order
from orders.progress import order_status_words
from tests.shop import shop_open

pytestmark = pytest.mark.django_db

LABEL_BOUGHT = "Label bought, awaiting the carrier's scan"
IN_TRANSIT = "In transit with the carrier"


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _buyer_pages(order: Order) -> tuple[str, str, list[str]]:
    """The buyer's order page, their settings page's order list, and the page's timeline."""
    client = Client()
    client.force_login(order.cardholder.user)
    page = client.get(reverse("orders:cardholder_order", args=[order.pk])).content.decode()
    settings_page = client.get(reverse("accounts:settings")).content.decode()
    timeline = page.split('<ol class="timeline">', 1)[1].split("</ol>", 1)[0]
    steps = [_text(item).strip() for item in re.findall(r"<li.*?</li>", timeline, re.S)]
    return _text(page), _text(settings_page), steps


def _staff_says(client: Client, order: Order) -> tuple[str, str]:
    listing = client.get(reverse("admin:fulfillment_shipment_changelist")).content.decode()
    change = client.get(reverse("admin:fulfillment_shipment_change", args=[order.shipment.pk]))
    return _text(listing), _text(change.content.decode())


def test_after_the_label_every_page_says_it_awaits_the_carrier_then_in_transit():
    shop_open()
    order = paid_order()
    assert order_status_words(order) == "Paid"
    staff = staff_of(order.merchant)
    label_buy(shipment_id=order.shipment.pk)
    order = Order.objects.select_related("shipment").get(pk=order.pk)
    assert order_status_words(order) == LABEL_BOUGHT
    page, settings_page, steps = _buyer_pages(order)
    assert f"free two-day shipping · {LABEL_BOUGHT}" in page
    assert LABEL_BOUGHT in settings_page
    assert "Shipped" not in settings_page
    assert [s.split(" ")[0] for s in steps if "not yet" not in s][-1] == "Label"
    assert [s.split(" ")[0] for s in steps if "not yet" in s] == ["Shipped", "Delivered"]
    for staff_page in _staff_says(staff, order):
        assert LABEL_BOUGHT in staff_page
    mail = order.notifications.get(kind="shipped")
    assert "shipped" not in (mail.subject + mail.body).lower()
    assert "label of order" in mail.body
    assert "carrier picks the parcel up next" in mail.body

    bought_at = Shipment.objects.get(pk=order.shipment.pk).label_bought_at
    shipment_track(shipment_id=order.shipment.pk, now=bought_at + timedelta(hours=2))
    order = Order.objects.select_related("shipment").get(pk=order.pk)
    assert order_status_words(order) == IN_TRANSIT
    page, settings_page, steps = _buyer_pages(order)
    assert f"free two-day shipping · {IN_TRANSIT}" in page
    assert IN_TRANSIT in settings_page
    assert [s.split(" ")[0] for s in steps if "not yet" not in s][-2:] == ["Label", "Shipped"]
    for staff_page in _staff_says(staff, order):
        assert IN_TRANSIT in staff_page


def test_a_label_recorded_by_staff_ships_the_order_when_they_say_so():
    shop_open()
    order = paid_order()
    order_mark_shipped(order=order, carrier="UPS", tracking_number="1Z42", actor="t")
    order = Order.objects.select_related("shipment").get(pk=order.pk)
    _, _, steps = _buyer_pages(order)
    done = [s.split(" ")[0] for s in steps if "not yet" not in s]
    assert done[-1] == "Shipped"
    assert "Label" not in done
