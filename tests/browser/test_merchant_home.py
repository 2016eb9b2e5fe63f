"""The back office as merchant staff use it, on the screens they use (issue 14's acceptance).

At 1,280 and 1,440 pixels, signed in as staff of a merchant with a paid order due on the next
business day: the home page lists the order under its ship-by day; the home page, the order list
and the order page are axe-clean (no serious or critical violations), need no sideways scroll,
and every link on them that staff can see answers without a 403; the campaign, order and
shipment lists show every action without a sideways scroll.

From the home page, staff buy the order's label through its confirmation page (nothing bought
before it), find the order and its shipment saying the same thing, and refund the order from its
page's actions, its timeline telling each step.

``backoffice`` (``tests/browser/conftest.py``) is the data set and a signed-in page, and
``Backoffice`` (``tests/browser/backoffice.py``) holds the checks each step repeats
(``check_page``); each step is one function taking ``bo``.
"""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from accounts.services import operator_upsert
from tests.browser.backoffice import Backoffice
from tests.mfa import totp_enable

pytestmark = pytest.mark.django_db(transaction=True)

WIDTHS = [1280, 1440]


# --- Steps ----------------------------------------------------------------------------------
def step_home_lists_the_order_due_tomorrow(bo: Backoffice) -> None:
    bo.visit(reverse("admin:index"))
    labels = bo.page.locator("section.home-labels")
    day = bo.shipment.ship_by
    heading = labels.get_by_role("heading", name=re.compile(f"Ship by {day:%a} {day.day} "))
    expect(heading).to_be_visible()
    order_link = labels.get_by_role("link", name=f"Order #{bo.order.confirmation_code}")
    expect(order_link).to_be_visible()
    expect(labels.get_by_role("link", name="Buy labels (1)")).to_be_visible()
    campaigns = bo.page.locator("section.home-campaigns")
    expect(campaigns.get_by_role("link", name="Chart and funnel")).to_be_visible()
    bo.check_page("home")


def step_order_list(bo: Backoffice) -> None:
    bo.visit(reverse("admin:orders_order_changelist"))
    expect(bo.page.locator("#result_list tbody tr")).to_have_count(1)
    bo.check_page("orders")


def step_order_page(bo: Backoffice) -> None:
    bo.visit(reverse("admin:index"))
    bo.page.locator("section.home-labels").get_by_role(
        "link", name=f"Order #{bo.order.confirmation_code}"
    ).click()
    expect(bo.page).to_have_url(re.compile(rf"/admin/orders/order/{bo.order.pk}/change/"))
    bo.check_page("order")


def step_buy_the_label_from_home(bo: Backoffice) -> None:
    """ "Buy labels" shows what it will buy and charge and asks first; once confirmed, the order
    and its shipment say the same thing (the label is bought, the carrier has not scanned it)."""
    bo.visit(reverse("admin:index"))
    bo.page.locator("section.home-labels").get_by_role("link", name="Buy labels (1)").click()
    expect(bo.page).to_have_url(re.compile(r"/buy-labels/"))
    table = bo.page.locator("table", has=bo.page.locator("caption", has_text="Labels to buy"))
    expect(table).to_contain_text(f"#{bo.order.confirmation_code}")
    expect(table).to_contain_text(f"{bo.order.total}")
    bo.check_page("buy-labels")
    # Nothing is bought before the confirmation.
    bo.shipment.refresh_from_db()
    assert bo.shipment.status == "awaiting_label"
    bo.page.get_by_role("button", name=re.compile(r"^Buy 1 label and capture ")).click()
    expect(bo.page.locator("ul.messagelist")).to_contain_text(
        f"#{bo.order.confirmation_code}: label bought"
    )
    bo.shipment.refresh_from_db()
    bo.order.refresh_from_db()
    assert (bo.shipment.status, bo.order.status) == ("label_bought", "shipped")
    words = str(bo.shipment.progress)
    bo.visit(reverse("admin:orders_order_change", args=[bo.order.pk]))
    expect(bo.page.locator("#support-item")).to_have_text(f"Status: {words}")
    bo.visit(reverse("admin:fulfillment_shipment_change", args=[bo.shipment.pk]))
    expect(bo.page.locator("#content")).to_contain_text(words)
    expect(bo.page.locator("#content")).to_contain_text(bo.shipment.tracking_number)
    bo.check_page("shipment")


def step_refund_from_the_timeline(bo: Backoffice) -> None:
    """The order page's timeline tells what happened, and its "Refund" action refunds."""
    bo.visit(reverse("admin:orders_order_change", args=[bo.order.pk]))
    timeline = bo.page.locator("section.support-timeline")
    expect(timeline).to_contain_text("Label bought")
    bo.check_page("order-shipped")
    bo.page.locator("section.support-actions").get_by_role("link", name="Refund").click()
    bo.page.get_by_label("Amount").fill(str(bo.order.total))
    bo.page.get_by_label("Reason").fill("Arrived damaged")
    bo.check_page("refund")
    bo.page.get_by_role("button", name="Refund").click()
    expect(bo.page.locator("ul.messagelist")).to_contain_text(
        f"order #{bo.order.confirmation_code}"
    )
    refund = bo.order.refunds.get()
    assert (refund.amount, refund.reason) == (bo.order.total, "Arrived damaged")
    expect(bo.page.locator("section.support-timeline")).to_contain_text("Arrived damaged")


def step_lists_show_every_action(bo: Backoffice) -> None:
    """The campaign, order and shipment lists: every action on screen without a sideways
    scroll (the campaign's "Chart and funnel" hid behind one at these widths)."""
    for name in (
        "admin:catalog_campaign_changelist",
        "admin:orders_order_changelist",
        "admin:fulfillment_shipment_changelist",
    ):
        bo.visit(reverse(name))
        expect(bo.page.locator("#result_list tbody tr").first).to_be_visible()
        bo.no_sideways_scroll()
        bo.shot(bo.page, f"{name.split(':')[1]}-{bo.width}")
    bo.visit(reverse("admin:catalog_campaign_changelist"))
    chart = bo.page.get_by_role("link", name="Chart and funnel")
    expect(chart).to_be_in_viewport()


# --- The walk -------------------------------------------------------------------------------
@pytest.mark.parametrize("width", WIDTHS)
def test_merchant_staff_work_from_the_home_page(backoffice, width):
    bo = backoffice(width)
    step_home_lists_the_order_due_tomorrow(bo)
    step_order_list(bo)
    step_order_page(bo)
    step_buy_the_label_from_home(bo)
    step_refund_from_the_timeline(bo)
    step_lists_show_every_action(bo)
    assert bo.crawled  # the crawl followed links


@pytest.mark.parametrize("width", WIDTHS)
def test_operators_lists_show_every_action_too(backoffice, width):
    """Operators see one more column on each list (the merchant) and pick the merchant whose
    home page they see."""
    operator = operator_upsert(username="op", email="op@example.com", password="pw-op")
    totp_enable(operator)
    bo = backoffice(width, operator)
    bo.visit(reverse("admin:index"))
    bo.page.get_by_label("Merchant's work to show").select_option(
        label=bo.shop.campaign.merchant.name
    )
    bo.page.get_by_role("button", name="Show").click()
    labels = bo.page.locator("section.home-labels")
    expect(labels.get_by_role("link", name=f"Order #{bo.order.confirmation_code}")).to_be_visible()
    bo.check_page("operator-home")
    step_lists_show_every_action(bo)
