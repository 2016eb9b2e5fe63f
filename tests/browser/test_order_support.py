"""The order's support view in a browser (issue 14, item 1), as merchant staff at the back
office's widths: the timeline and the actions are visible, and the page is accessible and does
not scroll sideways."""

import pytest
from playwright.sync_api import expect

from orders.tests.test_support_view import _busy_order, _staff
from tests.browser.conftest import accessible, signed_in
from tests.shop import shop_open

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("width", [1280, 1440])
def test_the_order_page_shows_its_timeline_and_actions(page, shot, live_server, width):
    shop_open()
    order = _busy_order()
    signed_in(page, _staff(order.merchant_id), live_server.url)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"/admin/orders/order/{order.pk}/change/")
    expect(page.locator("h1")).to_contain_text(f"Order #{order.confirmation_code}")
    expect(page.locator(".support-timeline li").first).to_be_visible()
    expect(page.locator(".support-actions a.refund-order")).to_be_visible()
    expect(page.locator(".support-summary address")).to_contain_text("Springfield, IL")
    accessible(page)
    shot(page, f"order-{width}")
