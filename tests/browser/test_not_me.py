"""The "Not me" link from an order e-mail cancels the order and pauses buying (DESIGN §8)."""

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail
from playwright.sync_api import expect

from orders.models import Order, OrderStatus
from tests.browser.conftest import accessible
from tests.shop import BRAND, buyer_ready, post, shop_open, tick

pytestmark = pytest.mark.django_db(transaction=True)


def test_not_me_cancels_the_order_and_pauses_buying(page, shot):
    shop = shop_open(stock=2)
    buyer_ready("alice")
    post("alice", f"@{BRAND} #BuyKindleFireHD")
    tick()
    (created,) = [m for m in mail.outbox if "Not you?" in m.body]
    link = re.search(r"https?://\S+/orders/not-me/\S+/", created.body).group(0)
    page.goto(urlsplit(link).path)  # the e-mail names the public site; the test's is local
    accessible(page)
    shot(page, "not-me")
    page.get_by_role("button", name="Cancel the order and pause buying").click()
    expect(page.get_by_role("status")).to_contain_text("is cancelled")
    accessible(page)
    shot(page, "cancelled")
    assert Order.objects.get().status == OrderStatus.CANCELLED
    shop.campaign.refresh_from_db()
    assert shop.campaign.stock_reserved == 0

    page.goto("/accounts/login/")
    page.fill("input[name=login]", "alice@example.com")
    page.fill("input[name=password]", "pw-buyer")
    page.get_by_role("button", name="Sign In").click()
    page.goto("/link/settings/")
    # The pause is stated at the top of the page (the audit log below repeats it).
    expect(page.locator("p.error", has_text="Paused: 'Not me' on order")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Kindle Fire HD"))).to_contain_text("Cancelled")
    accessible(page)
    shot(page, "settings-paused")
