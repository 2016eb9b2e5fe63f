"""The back office's fulfillment: the campaign dashboard, shipment actions, SLA badges."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.services import operator_upsert, staff_user_upsert
from catalog.tests.factories import MerchantFactory
from fulfillment.models import Shipment
from fulfillment.selectors import merchant_today
from fulfillment.services import label_buy
from fulfillment.tests.test_labels_and_tracking import paid_order
from orders.models import Order, OrderStatus
from sandbox.models import SandboxLedgerEntry
from tests.mfa import totp_enable
from tests.shop import BRAND, buyer_ready, post, shop_open, tick

pytestmark = pytest.mark.django_db


def _staff_of(merchant_id: int, name: str = "s") -> Client:
    staff = staff_user_upsert(
        username=name, email=f"{name}@example.com", password="pw", merchant_id=merchant_id
    )
    totp_enable(staff)
    client = Client()
    client.force_login(staff)
    return client


def test_the_campaign_dashboard_draws_orders_per_hour_and_the_funnel():
    shop = shop_open(stock=1)
    order = paid_order()
    buyer_ready("late_bob")
    post("late_bob", f"@{BRAND} #BuyKindleFireHD")  # sold out
    tick()
    client = _staff_of(shop.campaign.merchant_id)
    page = client.get(reverse("admin:orders_campaign_dashboard", args=[shop.campaign.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('<svg class="chart') == 2
    # Hours in the merchant's zone, as every back-office time for its staff (issue 14).
    local = order.created_at.astimezone(ZoneInfo(shop.campaign.merchant.time_zone))
    assert f"{local:%H}:00: 1 paid or later" in html
    funnel = dict(page.context["d"].funnel[i][:2] for i in range(5))
    assert funnel == {
        "purchase posts": 2,
        "orders (pending)": 1,
        "confirmed": 1,
        "paid": 1,
        "shipped": 0,
    }


def test_another_merchants_staff_cannot_see_the_dashboard():
    shop = shop_open()
    client = _staff_of(MerchantFactory().pk, "other")
    url = reverse("admin:orders_campaign_dashboard", args=[shop.campaign.pk])
    assert client.get(url).status_code == 404


def test_staff_buy_labels_from_the_change_list_and_see_sla_badges():
    shop = shop_open()
    order = paid_order()
    today = merchant_today(order.merchant, timezone.now())
    Shipment.objects.filter(order=order).update(ship_by=today - timedelta(days=1))
    client = _staff_of(shop.campaign.merchant_id)
    listing = client.get(reverse("admin:fulfillment_shipment_changelist")).content.decode()
    assert 'class="sla sla-late" title="not handed to the carrier' in listing
    confirm = client.post(
        reverse("admin:fulfillment_shipment_changelist"),
        {"action": "buy_labels", ACTION_CHECKBOX_NAME: [order.shipment.pk]},
        follow=True,
    )
    assert f"Buy 1 label and capture {order.total} USD" in confirm.content.decode()
    assert not SandboxLedgerEntry.objects.filter(operation="capture").exists()
    response = client.post(
        reverse("admin:fulfillment_shipment_buy_labels"), {"ids": order.shipment.pk}, follow=True
    )
    assert f"#{order.confirmation_code}: label bought" in response.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    assert SandboxLedgerEntry.objects.filter(operation="capture").count() == 1


def test_mark_shipped_from_the_admin_needs_the_permission_and_the_merchant():
    shop = shop_open()
    order = paid_order()
    url = reverse("admin:fulfillment_shipment_mark_shipped", args=[order.shipment.pk])
    assert _staff_of(MerchantFactory().pk, "other").get(url).status_code == 404
    client = _staff_of(shop.campaign.merchant_id)
    assert client.get(url).status_code == 200
    client.post(url, {"carrier": "UPS", "tracking_number": "1Z42"})
    shipment = Shipment.objects.get(pk=order.shipment.pk)
    assert (shipment.status, shipment.tracking_number) == ("label_bought", "1Z42")
    assert SandboxLedgerEntry.objects.filter(operation="capture").count() == 1


def test_closure_dates_are_for_operators():
    shop = shop_open()
    staff = _staff_of(shop.campaign.merchant_id)
    assert staff.get(reverse("admin:fulfillment_closuredate_changelist")).status_code == 403
    operator = operator_upsert(username="op", email="op@example.com", password="pw")
    totp_enable(operator)
    client = Client()
    client.force_login(operator)
    assert client.get(reverse("admin:fulfillment_closuredate_add")).status_code == 200


def test_the_shipment_page_shows_the_address_as_an_address_and_the_label():
    shop_open()
    order = paid_order()
    Order.objects.filter(pk=order.pk).update(ship_to={**order.ship_to, "line2": "Apt <4>"})
    client = _staff_of(order.merchant_id)
    url = reverse("admin:fulfillment_shipment_change", args=[order.shipment.pk])
    html = client.get(url).content.decode()
    assert "1 Main Street<br>Apt &lt;4&gt;<br>Springfield, IL 62701</address>" in html
    assert '"line1"' not in html  # not the JSON snapshot
    assert "No label yet" in html
    assert "Awaiting label, ships by" in html
    label_buy(shipment_id=order.shipment.pk)
    shipment = Shipment.objects.get(pk=order.shipment.pk)
    html = client.get(url).content.decode()
    assert f"sandbox, tracking number {shipment.tracking_number}" in html
    assert f'href="{shipment.label_url}" rel="noopener">Label file</a>' in html
    tracking = f"https://sandbox-carrier.invalid/track/{shipment.tracking_number}"
    assert f'href="{tracking}" rel="noopener">Track the parcel</a>' in html
    assert "Label bought, awaiting the carrier&#x27;s scan" in html
