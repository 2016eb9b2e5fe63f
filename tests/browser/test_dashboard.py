"""The campaign dashboard renders its chart in a browser (issue 5)."""

import pytest
from playwright.sync_api import expect

from accounts.services import staff_user_upsert
from fulfillment.tests.test_labels_and_tracking import paid_order
from tests.browser.conftest import accessible, signed_in
from tests.mfa import totp_enable
from tests.shop import shop_open

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_dashboard_draws_its_chart(page, shot, live_server):
    shop = shop_open(stock=5)
    for handle in ("alice", "bob", "carol"):
        paid_order(handle)
    staff = staff_user_upsert(
        username="s", email="s@example.com", password="pw", merchant_id=shop.campaign.merchant_id
    )
    totp_enable(staff)
    signed_in(page, staff, live_server.url)
    page.set_viewport_size({"width": 1024, "height": 900})
    page.goto(f"/admin/orders/order/campaign/{shop.campaign.pk}/dashboard/")
    chart = page.locator("svg.chart").first
    expect(chart).to_be_visible()
    bars = chart.locator("rect")
    expect(bars).to_have_count(1)  # one hour, one outcome: 3 paid
    box = bars.first.bounding_box()
    assert box is not None
    assert box["height"] > 100  # drawn to scale: 3 orders against a scale of 4
    funnel = page.locator("svg.funnel rect")
    expect(funnel).to_have_count(5)
    accessible(page)
    shot(page, "dashboard")
