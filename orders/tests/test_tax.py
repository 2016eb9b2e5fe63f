"""Sales tax from the shipped rates table (DESIGN §3.8, issue 12 item 5): what an order stores,
what the card is authorized for, what the buyer is told in private and in public, and the caps
that compare the total."""

from decimal import Decimal

import pytest
from django.core import mail

from orders.models import Order, OrderStatus
from orders.outcomes import PostOutcome
from orders.tax import TaxRequest
from orders.tax.table import TableTax
from sandbox.models import SandboxLedgerEntry
from social.models import Post, Reply
from tests.shop import BRAND, buyer_ready, code_in, post, replies_to, shop_open, tick

pytestmark = pytest.mark.django_db

BUY = f"@{BRAND} #BuyKindleFireHD"  # $149.00
MANHATTAN = {"city": "New York", "state": "NY", "postal_code": "10001"}
PORTLAND = {"city": "Portland", "state": "OR", "postal_code": "97201"}


def _buy_and_confirm(handle: str) -> Order:
    post(handle, BUY)
    tick()
    post(handle, f"@{BRAND} #Confirm{code_in(replies_to(handle)[-1])}")
    tick()
    tick()
    order = Order.objects.get(author_handle=handle)
    assert order.status == OrderStatus.PAID
    return order


def _created_email(handle: str):
    return next(
        m
        for m in mail.outbox
        if m.subject.startswith("Confirm your order") and m.to == [f"{handle}@example.com"]
    )


def test_an_order_to_new_york_city_pays_state_city_and_mctd_tax_and_is_authorized_for_the_total():
    shop_open()
    buyer_ready("alice", address=MANHATTAN)
    order = _buy_and_confirm("alice")

    # 4% + 4.5% + 0.375% = 8.875% of $149.00, each line rounded half up.
    assert order.tax_lines == [
        {"jurisdiction": "New York", "rate": "0.04000", "amount": "5.96"},
        {"jurisdiction": "New York City", "rate": "0.04500", "amount": "6.71"},
        {
            "jurisdiction": "Metropolitan Commuter Transportation District",
            "rate": "0.00375",
            "amount": "0.56",
        },
    ]
    assert (order.subtotal, order.tax_total, order.total) == (
        Decimal("149.00"),
        Decimal("13.23"),
        Decimal("162.23"),
    )
    [authorization] = SandboxLedgerEntry.objects.filter(operation="authorize")
    assert authorization.amount == order.total == Decimal("162.23")

    # Told in private before confirming: the exact total and each line.
    body = _created_email("alice").body
    assert "$162.23" in body
    lines = [line.split() for line in body.splitlines()]
    assert ["New", "York", "City", "tax", "4.5%", "$6.71"] in lines
    assert ["Metropolitan", "Commuter", "Transportation", "District", "tax", "0.375%", "$0.56"] in (
        lines
    )
    assert ["Total", "$162.23"] in lines


def test_an_order_to_oregon_pays_no_sales_tax_and_is_authorized_for_the_price():
    shop_open()
    buyer_ready("olive", address=PORTLAND)
    order = _buy_and_confirm("olive")

    assert (order.subtotal, order.tax_lines, order.tax_total, order.total) == (
        Decimal("149.00"),
        [],
        Decimal("0.00"),
        Decimal("149.00"),
    )
    [authorization] = SandboxLedgerEntry.objects.filter(operation="authorize")
    assert authorization.amount == Decimal("149.00")
    assert "none at this address" in _created_email("olive").body


def test_a_price_that_includes_tax_is_the_total_and_the_tax_is_taken_out_of_it():
    shop_open(price_includes_tax=True)
    buyer_ready("alice", address=MANHATTAN)
    order = _buy_and_confirm("alice")

    # 149.00 times the rate / 1.08875, per line.
    assert [line["amount"] for line in order.tax_lines] == ["5.47", "6.16", "0.51"]
    assert (order.price_includes_tax, order.subtotal, order.tax_total, order.total) == (
        True,
        Decimal("149.00"),
        Decimal("12.14"),
        Decimal("149.00"),
    )
    [authorization] = SandboxLedgerEntry.objects.filter(operation="authorize")
    assert authorization.amount == Decimal("149.00")
    assert replies_to("alice")[0].startswith(
        "@alice To buy Kindle Fire HD for $149.00 (tax incl., free 2-day shipping) post"
    )
    assert "New York City tax 4.5% (included)" in _created_email("alice").body


def test_no_public_reply_tells_the_total_with_tax():
    shop_open()
    buyer_ready("alice", address=MANHATTAN)
    buyer_ready("bob")  # Springfield, Illinois: $158.31
    alice = _buy_and_confirm("alice")
    bob = _buy_and_confirm("bob")

    texts = list(Reply.objects.values_list("text", flat=True))
    assert len(texts) >= 4  # two requests, two "paid" replies
    for order in (alice, bob):
        assert order.total != order.unit_price
        assert not [t for t in texts if str(order.total) in t]
        assert not [t for t in texts if str(order.tax_total) in t]
    assert all("+tax" in t for t in texts if "To buy" in t)


@pytest.mark.parametrize(
    ("controls", "reason"),
    [
        ({"per_order_cap": Decimal("150.00")}, "total with tax is above your per-order limit"),
        ({"per_day_cap": Decimal("150.00")}, "daily spending limit"),
    ],
    ids=["per_order_cap", "per_day_cap"],
)
def test_a_cap_compares_the_total_with_tax_not_the_price(controls, reason):
    # $149.00 is under the cap; $162.23 with New York City's tax is over it.
    shop_open()
    buyer_ready("alice", address=MANHATTAN, **controls)
    purchase = post("alice", BUY)
    tick()

    assert not Order.objects.exists()
    assert Post.objects.get(post_id=str(purchase.pk)).outcome == PostOutcome.BLOCKED
    [email] = [m for m in mail.outbox if "couldn't take your order" in m.subject]
    assert reason in email.body


def test_the_same_cap_lets_an_untaxed_order_under_it_through():
    shop_open()
    buyer_ready("olive", address=PORTLAND, per_order_cap=Decimal("150.00"))
    post("olive", BUY)
    tick()
    assert Order.objects.get().total == Decimal("149.00")


def test_the_email_confirmation_threshold_compares_the_total_with_tax():
    shop_open()
    buyer_ready("alice", address=MANHATTAN, email_confirm_above=Decimal("150.00"))
    buyer_ready("olive", address=PORTLAND, email_confirm_above=Decimal("150.00"))
    post("alice", BUY)
    post("olive", BUY)
    tick()
    required = dict(Order.objects.values_list("author_handle", "email_confirm_required"))
    assert required == {"alice": True, "olive": False}


@pytest.mark.parametrize(
    ("ship_to", "jurisdictions"),
    [
        ({"state": "NY", "postal_code": "14604", "country": "US"}, ["New York"]),  # Rochester
        ({"state": "IL", "postal_code": "60601", "country": "US"}, None),  # Chicago: four lines
        ({"state": "ZZ", "postal_code": "00000", "country": "US"}, []),  # unknown state
        ({"state": "ON", "postal_code": "M5V", "country": "CA"}, []),  # outside the US
        ({}, []),  # no address at all
    ],
    ids=["state-only", "city", "unknown-state", "abroad", "none"],
)
def test_the_table_taxes_by_state_and_zip_prefix_and_nothing_it_does_not_know(
    ship_to, jurisdictions
):
    quote = TableTax().quote(
        TaxRequest(
            merchant_id=1,
            campaign_id=1,
            unit_price=Decimal("100.00"),
            quantity=2,
            currency="USD",
            price_includes_tax=False,
            ship_to=ship_to,
        )
    )
    names = [line.jurisdiction for line in quote.lines]
    if jurisdictions is None:
        assert names == [
            "Illinois",
            "City of Chicago",
            "Cook County",
            "Regional Transportation Authority",
        ]
        assert (quote.tax_total, quote.total) == (Decimal("20.50"), Decimal("220.50"))
    else:
        assert names == jurisdictions
    assert quote.subtotal == Decimal("200.00")


def test_the_cardholders_order_list_shows_the_total_with_its_tax():
    from django.test import Client
    from django.urls import reverse

    shop_open()
    alice = buyer_ready("alice", address=MANHATTAN)
    post("alice", BUY)
    tick()
    client = Client()
    client.force_login(alice.cardholder.user)
    page = client.get(reverse("accounts:settings")).content.decode()
    assert "$162.23 ($149.00 + $13.23 tax)" in page
