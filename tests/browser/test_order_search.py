"""Support finds an order from the order list's search box and date range (issue 14, item 3)."""

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from accounts.services import staff_user_upsert
from catalog.tests.factories import CampaignFactory
from orders.models import Order
from orders.tests.factories import OrderFactory
from tests.browser.conftest import accessible, signed_in
from tests.mfa import totp_enable

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("width", [1280, 1440])
def test_staff_find_an_order_by_code_and_by_day(page, shot, live_server, width):
    campaign = CampaignFactory(merchant__time_zone="America/New_York")
    wanted = OrderFactory(campaign=campaign, confirmation_code="GAQ37", author_handle="carol")
    other = OrderFactory(campaign=campaign, confirmation_code="HHHHH", author_handle="dan")
    # 03:30 UTC on 10 March is 9 March in New York.
    Order.objects.filter(pk=wanted.pk).update(created_at=datetime(2026, 3, 10, 3, 30, tzinfo=UTC))
    Order.objects.filter(pk=other.pk).update(created_at=datetime(2026, 3, 12, 15, 0, tzinfo=UTC))
    staff = staff_user_upsert(
        username="s", email="s@example.com", password="pw", merchant_id=campaign.merchant_id
    )
    totp_enable(staff)
    signed_in(page, staff, live_server.url)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/admin/orders/order/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    accessible(page)

    page.fill("#searchbar", "#gaq37")
    page.press("#searchbar", "Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("carol")
    shot(page, "by-code")

    page.goto("/admin/orders/order/")
    page.fill("#created-from", "2026-03-09")
    page.fill("#created-to", "2026-03-09")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("carol")
    expect(page.locator(".date-range-filter")).to_contain_text("America/New_York")
    accessible(page)
    shot(page, "by-day")
