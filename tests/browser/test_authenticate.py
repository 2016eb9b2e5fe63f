"""Card authentication (3-D Secure) on a phone: the private page from the e-mail, the sandbox's
stand-in for the bank's check, and the order paid (issue 12 item 7)."""

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail
from playwright.sync_api import expect

from fulfillment.models import Shipment
from orders.models import Order, OrderStatus
from sandbox.models import SandboxLedgerEntry
from sandbox.vault import card_tokenize
from tests.browser.conftest import accessible
from tests.shop import BRAND, buyer_ready, post, shop_open, tick

pytestmark = pytest.mark.django_db(transaction=True)


def _waiting_order() -> tuple[Order, str]:
    """Alice buys with the test card whose bank always asks; the link from her e-mail."""
    shop_open(stock=2)
    card = card_tokenize(number="4000 0027 6000 3184", exp_month=12, exp_year=2030)
    buyer_ready("alice", token=card.token)
    post("alice", f"@{BRAND} #BuyKindleFireHD")
    tick()
    order = Order.objects.get()
    post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    tick()
    order.refresh_from_db()
    assert order.status == OrderStatus.AUTHENTICATION_REQUIRED
    (asked,) = [m for m in mail.outbox if m.subject.startswith("Approve your payment")]
    link = re.search(r"https?://\S+/orders/authenticate/\S+/", str(asked.body))
    assert link is not None
    # The e-mail names the public site; the test's is local.
    return order, urlsplit(link.group(0)).path


def test_the_buyer_authenticates_on_a_phone_and_the_order_is_paid(page, shot):
    order, path = _waiting_order()
    page.goto(path)
    expect(page.get_by_role("heading", name="Approve your payment")).to_be_visible()
    expect(page.get_by_text("Kindle Fire HD, $158.31 (sales tax $9.31 included)")).to_be_visible()
    authenticate = page.get_by_role("button", name="Authenticate")
    assert authenticate.bounding_box()["height"] >= 44  # a target a thumb can hit
    accessible(page)
    shot(page, "approve")
    authenticate.click()
    expect(page.get_by_role("status")).to_contain_text("Your bank approved the payment")
    accessible(page)
    shot(page, "paid")
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert Shipment.objects.filter(order=order).exists()
    (authorization,) = SandboxLedgerEntry.objects.filter(operation="authorize")
    assert authorization.approved

    page.reload()  # the same link again: nothing more to do
    expect(page.get_by_role("status")).to_contain_text("is paid: there is nothing more to do")
    expect(page.get_by_role("button", name="Authenticate")).to_have_count(0)


def test_the_buyer_fails_the_check_and_the_order_is_declined(page, shot):
    order, path = _waiting_order()
    page.goto(path)
    page.get_by_role("button", name="Fail").click()
    expect(page.get_by_role("status")).to_contain_text("did not approve the payment")
    accessible(page)
    shot(page, "declined")
    order.refresh_from_db()
    assert order.status == OrderStatus.DECLINED
    order.campaign.refresh_from_db()
    assert order.campaign.stock_reserved == 0
