"""Buying labels in a browser as merchant staff, at the back office's widths (issue 14): from
the shipments' "Labels due" to the confirmation and back, axe-core clean."""

import pytest
from django.conf import settings as django_settings
from django.test import Client
from playwright.sync_api import expect

from accounts.services import staff_user_upsert
from fulfillment.models import Shipment, ShipmentStatus
from fulfillment.tests.test_labels_and_tracking import paid_order
from tests.browser.conftest import accessible, page, shot  # noqa: F401 (fixtures)
from tests.mfa import totp_enable
from tests.shop import shop_open

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("width", [1280, 1440])
def test_staff_confirm_and_buy_the_labels_due(page, shot, live_server, width):  # noqa: F811
    shop_open()
    order = paid_order()
    staff = staff_user_upsert(
        username="s", email="s@example.com", password="pw", merchant_id=order.merchant_id
    )
    totp_enable(staff)
    client = Client()
    client.force_login(staff)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies(
        [{"name": django_settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
    )
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/admin/fulfillment/shipment/?labels_due=next")
    expect(page.locator("#result_list")).to_contain_text(f"#{order.confirmation_code}")
    accessible(page)
    page.get_by_role("link", name="Buy the labels due…").click()
    table = page.locator("#labels-to-buy")
    expect(table).to_contain_text(f"#{order.confirmation_code}")
    expect(table).to_contain_text("price known when bought")
    expect(table).to_contain_text(f"{order.total} USD")
    accessible(page)
    shot(page, f"confirm-{width}")
    assert Shipment.objects.get(order=order).status == ShipmentStatus.AWAITING_LABEL
    page.get_by_role("button", name=f"Buy 1 label and capture {order.total} USD").click()
    expect(page.locator(".messagelist")).to_contain_text(
        f"#{order.confirmation_code}: label bought"
    )
    expect(page.locator("#result_list")).to_contain_text("Label bought, awaiting the carrier")
    accessible(page)
    shot(page, f"bought-{width}")
