"""The back office in a browser as one merchant's staff: ``Backoffice`` (the data set and the
signed-in page, with the checks each page gets: axe-core clean, no sideways scroll, every
visible link answering without a 403) and ``backoffice_open``, which the ``backoffice``
fixture (``tests/browser/conftest.py``) hands to the tests of the merchant's pages."""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urljoin, urlsplit

from django.utils import timezone

from accounts.services import staff_user_upsert
from fulfillment.business_days import add_business_days, next_business_day
from fulfillment.models import Shipment
from fulfillment.selectors import merchant_today
from orders.models import Order
from tests.browser.conftest import accessible, signed_in
from tests.mfa import totp_enable
from tests.shop import Shop, order_paid, shop_open

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


def backoffice_open(page: Any, shot: Callable, live_server: Any) -> Callable[..., Backoffice]:
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
        signed_in(page, user or staff, live_server.url)
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
