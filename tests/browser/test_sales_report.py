"""The sales report in a browser, as merchant staff at 1,280 and 1,440 pixels (issue 14, item 7):
its chart and table show, nothing scrolls sideways, axe-core finds nothing serious."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from accounts.services import staff_user_upsert
from orders.tests.test_sales_report import DAY1, DAY2, shop  # noqa: F401  (the data set)
from tests.browser.conftest import accessible, signed_in
from tests.mfa import totp_enable

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("width", [1280, 1440])
def test_the_sales_report_draws_its_chart_and_table(page, shot, live_server, shop, width):  # noqa: F811
    merchant, _ = shop
    staff = staff_user_upsert(
        username="s", email="s@example.com", password="pw", merchant_id=merchant.pk
    )
    totp_enable(staff)
    signed_in(page, staff, live_server.url)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(
        f"{reverse('admin:orders_sales_report')}"
        f"?date_from={DAY1.isoformat()}&date_until={DAY2.isoformat()}"
    )
    expect(page.locator("svg.chart").first).to_be_visible()
    expect(page.locator("svg.chart").first.locator("rect")).to_have_count(3)  # 2 + 1 platforms
    expect(page.locator("svg.funnel rect")).to_have_count(6)
    table = page.get_by_role("table", name="Sales per day and platform", exact=False)
    expect(table.locator("tbody tr")).to_have_count(5)  # four rows and the total
    expect(page.get_by_role("link", name="Download as CSV")).to_be_visible()
    accessible(page)
    shot(page, f"sales-report-{width}")
