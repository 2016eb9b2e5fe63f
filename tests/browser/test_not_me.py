"""The "Not me" link from an order e-mail cancels the order and pauses buying (DESIGN §8); after
shipping it opens a dispute the buyer follows from their orders, where they also ask for returns
(issue 12)."""

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from orders.messages import not_me_url
from orders.models import Dispute, DisputeStatus, Order, OrderStatus, Return
from orders.services.disputes import dispute_reject
from tests.browser.conftest import accessible
from tests.shop import BRAND, buyer_ready, order_delivered, post, shop_open, tick

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


def _sign_in(page, email: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", "pw-buyer")
    page.get_by_role("button", name="Sign In").click()


def test_not_me_after_delivery_opens_a_case_the_buyer_follows_and_escalates(page, shot):
    shop_open(stock=2)
    order = order_delivered("alice")
    page.goto(urlsplit(not_me_url(order.pk)).path)
    accessible(page)
    page.get_by_role("button", name="Open a case and pause buying").click()
    expect(page.get_by_role("status")).to_contain_text("we opened a case")
    accessible(page)
    shot(page, "dispute-opened")
    dispute = Dispute.objects.get(order=order)
    dispute_reject(
        dispute_id=dispute.pk, reason="Signed for at the door.", now=timezone.now(), actor_label="t"
    )

    _sign_in(page, "alice@example.com")
    page.goto("/link/settings/")
    row = page.get_by_role("row", name=re.compile("Kindle Fire HD"))
    expect(row).to_contain_text("Case: Rejected")
    expect(row).to_contain_text("Signed for at the door.")
    accessible(page)
    shot(page, "dispute-rejected")
    page.get_by_role("button", name=re.compile("Ask Hashcart to review")).click()
    expect(page.get_by_role("row", name=re.compile("Kindle Fire HD"))).to_contain_text(
        "Case: Escalated to the operator"
    )
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.ESCALATED


def test_a_buyer_asks_for_a_return_from_their_orders(page, shot):
    shop_open(stock=2)
    order = order_delivered("bob")
    _sign_in(page, "bob@example.com")
    page.goto("/link/settings/")
    page.get_by_text("Return it").click()
    page.get_by_label(re.compile("Why are you returning it")).fill("It arrived cracked.")
    accessible(page)
    shot(page, "return-form")
    page.get_by_role("button", name="Ask for a return").click()
    expect(page.get_by_role("row", name=re.compile("Kindle Fire HD"))).to_contain_text(
        "Return: Requested"
    )
    accessible(page)
    assert Return.objects.get(order=order).reason == "It arrived cracked."
