"""The back office as merchant staff use it, on the screens they use (issue 14's acceptance).

At 1,280 and 1,440 pixels, signed in as staff of a merchant with a paid order due on the next
business day: the home page lists the order under its ship-by day; the home page, the order list
and the order page are axe-clean (no serious or critical violations), need no sideways scroll,
and every link on them that staff can see answers without a 403; the campaign, order and
shipment lists show every action without a sideways scroll.

From the home page, staff buy the order's label through its confirmation page (nothing bought
before it), find the order and its shipment saying the same thing, and refund the order from its
page's actions, its timeline telling each step.

``backoffice`` is the data set and a signed-in page, and ``Backoffice`` holds the checks each
step repeats (``check_page``); each step is one function taking ``bo``.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts.services import operator_upsert, staff_user_upsert
from fulfillment.business_days import add_business_days, next_business_day
from fulfillment.models import Shipment
from fulfillment.selectors import merchant_today
from orders.models import Order
from tests.browser.conftest import accessible
from tests.mfa import totp_enable
from tests.shop import Shop, order_paid, shop_open

pytestmark = pytest.mark.django_db(transaction=True)

WIDTHS = [1280, 1440]

# Elements a user acts on: none may sit beyond the screen's right edge.
ACTIONS = "a[href], button, select, input:not([type=hidden]), textarea"

# Links never followed by the crawl: signing out would end the session it crawls with.
NOT_CRAWLED = re.compile(r"/logout/")


@dataclass
class Backoffice:
    """One merchant's back office in a browser: the data set and the page signed in as its
    staff, with the checks every step makes."""

    page: Any
    shot: Callable
    live_server_url: str
    shop: Shop
    staff: Any
    order: Order
    shipment: Shipment
    width: int
    crawled: dict[str, int] = field(default_factory=dict)

    def visit(self, path: str) -> None:
        response = self.page.goto(path)
        assert response is not None
        assert response.status == 200, f"{path} answered {response.status}"

    def check_page(self, name: str) -> None:
        """axe-core clean, no sideways scroll (the page's or a list's), every action inside
        the screen, and every visible link answering without a 403."""
        accessible(self.page)
        self.no_sideways_scroll()
        self.crawl_links()
        self.shot(self.page, f"{name}-{self.width}")

    def no_sideways_scroll(self) -> None:
        wide = self.page.evaluate(
            """() => [...document.querySelectorAll('*')]
                .filter(el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX)
                    && el.scrollWidth > el.clientWidth + 1)
                .map(el => `${el.tagName}#${el.id}.${el.className}: ` +
                    `${el.scrollWidth} in ${el.clientWidth}`)"""
        )
        assert not wide, f"{self.page.url} scrolls sideways at {self.width}px: {wide}"
        beyond = self.page.evaluate(
            """(selector) => [...document.querySelectorAll(selector)]
                .filter(el => el.offsetParent !== null)
                .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
                .map(el => el.outerHTML.slice(0, 120))""",
            ACTIONS,
        )
        assert not beyond, f"{self.page.url}: actions off screen at {self.width}px: {beyond}"

    def crawl_links(self) -> None:
        """Request every visible link of the page, with the page's own session: none may answer
        403 (or fail). Links outside the site are not followed; each link once per test."""
        hrefs = self.page.evaluate(
            """() => [...document.querySelectorAll('a[href]')]
                .filter(a => a.offsetParent !== null || a.getClientRects().length)
                .map(a => a.href)"""
        )
        origin = urlsplit(self.live_server_url).netloc
        bad = {}
        for href in hrefs:
            url = urljoin(self.page.url, href).split("#", 1)[0]
            if urlsplit(url).netloc != origin or NOT_CRAWLED.search(url) or url in self.crawled:
                continue
            status = self.page.request.get(url, max_redirects=5).status
            self.crawled[url] = status
            if status == 403 or status >= 500:
                bad[url] = status
        assert not bad, f"links on {self.page.url} that fail for staff: {bad}"


def _due_day(shop: Shop) -> date:
    return next_business_day(merchant_today(shop.campaign.merchant, timezone.now()))


@pytest.fixture
def backoffice(page, shot, live_server) -> Callable[..., Backoffice]:
    """The data set (a merchant, its staff login with TOTP, a live campaign, and a paid order
    whose shipment is due on the merchant's next business day) and a function opening the back
    office at a screen width, signed in as that staff member."""
    shop = shop_open(stock=5)
    order = order_paid("alice")
    # Paid now, the order ships today or on the next business day depending on the clock and
    # the merchant's cut-off; the data set fixes it on the next business day ("tomorrow").
    due = _due_day(shop)
    Shipment.objects.filter(order=order).update(
        ship_by=due, promised_delivery=add_business_days(due, 2)
    )
    staff = staff_user_upsert(
        username="staff",
        email="staff@example.com",
        password="pw-staff",
        merchant_id=shop.campaign.merchant_id,
    )
    totp_enable(staff)

    def open_at(width: int, user: Any = None) -> Backoffice:
        """The back office at ``width`` pixels, signed in as ``user`` (the staff member)."""
        client = Client()
        client.force_login(user or staff)
        page.context.clear_cookies()
        page.context.add_cookies(
            [
                {
                    "name": django_settings.SESSION_COOKIE_NAME,
                    "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                    "url": live_server.url,
                }
            ]
        )
        page.set_viewport_size({"width": width, "height": 900})
        return Backoffice(
            page=page,
            shot=shot,
            live_server_url=live_server.url,
            shop=shop,
            staff=user or staff,
            order=order,
            shipment=Shipment.objects.get(order=order),
            width=width,
        )

    return open_at


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
