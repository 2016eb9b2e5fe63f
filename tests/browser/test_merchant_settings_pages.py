"""The merchant's other pages in a browser, as merchant staff at 1,280 pixels (issue 14): the
alert settings and the alerts, the webhook endpoints (list, add, change with the signing secret
and its "Rotate secret" button), the deliveries and a delivery's attempts, the product import
and the sales report. Each is axe-core clean (no serious or critical violation), needs no
sideways scroll, and every link staff can see on it answers without a 403
(``Backoffice.check_page``, as on the home page).

The data set is ``backoffice``'s (a merchant with a live campaign and a paid order) with an
alert raised, and an endpoint whose delivery failed once and then arrived.
"""

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from orders.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from orders.services.alerts import SOLD_OUT, alert_raise
from orders.services.webhooks import (
    webhook_deliveries_send_due,
    webhook_endpoint_create,
    webhook_endpoint_secret,
    webhook_event_record,
)
from orders.tests.test_webhooks import Receiver
from tests.browser.backoffice import Backoffice

pytestmark = pytest.mark.django_db(transaction=True)

WIDTH = 1280


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _merchant_pages_data(bo: Backoffice, receiver: Receiver) -> WebhookDelivery:
    """An alert, and an endpoint with one delivery: failed once (HTTP 500), then delivered."""
    merchant_id, now = bo.shop.campaign.merchant_id, timezone.now()
    alert_raise(
        merchant_id=merchant_id,
        kind=SOLD_OUT,
        cause=f"campaign:{bo.shop.campaign.pk}",
        subject=f"#{bo.shop.campaign.hashtag} sold out",
        body="Every unit is sold.",
        now=now,
    )
    endpoint = webhook_endpoint_create(
        merchant_id=merchant_id, url=receiver.url, events=["order.paid"], description="Shop"
    )
    webhook_event_record(
        merchant_id=merchant_id,
        event_type="order.paid",
        data={"order": {"code": bo.order.confirmation_code}},
        event_key=f"order.paid:{bo.order.pk}",
        now=now,
    )
    receiver.answer = lambda: 500
    webhook_deliveries_send_due(now=now)
    receiver.answer = lambda: 200
    webhook_deliveries_send_due(now=now + timedelta(days=1))
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.tries.count()) == ("delivered", 2)
    return delivery


def step_alerts(bo: Backoffice) -> None:
    # Staff have one settings page: the list takes them to it (here, to create it).
    bo.visit(reverse("admin:orders_alertsettings_changelist"))
    expect(bo.page).to_have_url(re.compile(r"/admin/orders/alertsettings/add/"))
    expect(bo.page.get_by_text("Alerts on")).to_be_visible()
    bo.check_page("alert-settings-add")
    bo.page.get_by_role("button", name="Save", exact=True).click()
    expect(bo.page.locator("ul.messagelist")).to_be_visible()
    bo.visit(reverse("admin:orders_alertsettings_changelist"))
    expect(bo.page).to_have_url(re.compile(r"/admin/orders/alertsettings/\d+/change/"))
    bo.check_page("alert-settings")
    bo.visit(reverse("admin:orders_alert_changelist"))
    expect(bo.page.locator("#result_list tbody tr")).to_have_count(1)
    expect(bo.page.locator("#result_list")).to_contain_text("sold out")
    bo.check_page("alerts")


def step_webhook_endpoints(bo: Backoffice, delivery: WebhookDelivery) -> None:
    endpoint = delivery.endpoint
    bo.visit(reverse("admin:orders_webhookendpoint_changelist"))
    expect(bo.page.locator("#result_list tbody tr")).to_have_count(1)
    bo.check_page("webhook-endpoints")
    bo.visit(reverse("admin:orders_webhookendpoint_add"))
    expect(bo.page.get_by_label("URL")).to_be_visible()
    bo.check_page("webhook-endpoint-add")
    bo.visit(reverse("admin:orders_webhookendpoint_change", args=[endpoint.pk]))
    secret = webhook_endpoint_secret(endpoint=endpoint)
    expect(bo.page.locator("#content")).to_contain_text(secret)
    rotate = bo.page.get_by_role("button", name="Rotate secret")
    expect(rotate).to_be_visible()
    bo.check_page("webhook-endpoint")
    rotate.click()
    expect(bo.page.locator("ul.messagelist")).to_contain_text("A new secret signs")
    rotated = webhook_endpoint_secret(endpoint=WebhookEndpoint.objects.get(pk=endpoint.pk))
    assert rotated != secret
    expect(bo.page.locator("#content")).to_contain_text(rotated)
    bo.check_page("webhook-endpoint-rotated")


def step_webhook_deliveries(bo: Backoffice, delivery: WebhookDelivery) -> None:
    bo.visit(reverse("admin:orders_webhookdelivery_changelist"))
    expect(bo.page.locator("#result_list tbody tr")).to_have_count(1)
    bo.check_page("webhook-deliveries")
    bo.visit(reverse("admin:orders_webhookdelivery_change", args=[delivery.pk]))
    # Its attempts, newest first: the failure, then the success.
    attempts = bo.page.locator(".inline-group")
    expect(attempts).to_contain_text("HTTP 500")
    for attempt in WebhookAttempt.objects.filter(delivery=delivery):
        expect(attempts).to_contain_text(str(attempt))
    bo.check_page("webhook-delivery")


def step_product_import(bo: Backoffice) -> None:
    bo.visit(reverse("admin:catalog_product_import"))
    expect(bo.page.locator("input[type=file]")).to_be_attached()
    bo.check_page("product-import")


def step_sales_report(bo: Backoffice) -> None:
    bo.visit(reverse("admin:orders_sales_report"))
    expect(bo.page.get_by_role("link", name="Download as CSV")).to_be_visible()
    bo.check_page("sales-report")


def test_merchant_staff_settings_and_reports_pages(backoffice, receiver):
    bo = backoffice(WIDTH)
    delivery = _merchant_pages_data(bo, receiver)
    # Reached from the home page, like staff do.
    bo.visit(reverse("admin:index"))
    links = bo.page.locator("nav.home-links")
    for name in ("Sales report", "Alert settings", "Alerts", "Webhook endpoints"):
        expect(links.get_by_role("link", name=name, exact=True)).to_be_visible()
    step_alerts(bo)
    step_webhook_endpoints(bo, delivery)
    step_webhook_deliveries(bo, delivery)
    step_product_import(bo)
    step_sales_report(bo)
    assert bo.crawled  # the crawl followed links
