"""Stripe Tax (``HASHCART_TAX=stripe``) against a mocked Stripe API (``responses``): no network."""

import json
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import responses
import stripe
from django.core import mail
from django.db import connection

from orders.models import Order
from orders.outcomes import PostOutcome
from orders.tax import TaxError, TaxRequest
from orders.tax.stripe import StripeTax
from social.models import Post
from tests.shop import BRAND, buyer_ready, post, shop_open, tick

API = "https://api.stripe.com/v1/tax/calculations"
MANHATTAN = {"line1": "350 Fifth Avenue", "city": "New York", "state": "NY",
             "postal_code": "10001", "country": "US"}  # fmt: skip


@pytest.fixture
def tax():
    client = stripe.StripeClient(
        "sk_test_hashcart", http_client=stripe.RequestsClient(), max_network_retries=0
    )
    return StripeTax(client)


def _part(amount: int, name: str, level: str, percent: str | None) -> dict:
    return {
        "amount": amount,
        "jurisdiction": {"country": "US", "display_name": name, "level": level, "state": "NY"},
        "sourcing": "destination",
        "tax_rate_details": None
        if percent is None
        else {"display_name": "Sales Tax", "percentage_decimal": percent, "tax_type": "sales_tax"},
        "taxability_reason": "standard_rated" if amount else "not_subject_to_tax",
        "taxable_amount": 14900 if amount else 0,
    }


def _calculation(behavior: str, amounts: tuple[int, int, int]) -> dict:
    state, city, mctd = amounts
    tax = state + city + mctd
    return {
        "id": "taxcalc_1",
        "object": "tax.calculation",
        "currency": "usd",
        "amount_total": 14900 + (tax if behavior == "exclusive" else 0),
        "tax_amount_exclusive": tax if behavior == "exclusive" else 0,
        "tax_amount_inclusive": tax if behavior == "inclusive" else 0,
        "line_items": {
            "object": "list",
            "url": "/v1/tax/calculations/taxcalc_1/line_items",
            "has_more": False,
            "data": [
                {
                    "id": "tax_li_1",
                    "object": "tax.calculation_line_item",
                    "amount": 14900,
                    "amount_tax": tax,
                    "quantity": 1,
                    "reference": "campaign-5",
                    "tax_behavior": behavior,
                    "tax_breakdown": [
                        _part(state, "New York", "state", "4.0"),
                        _part(0, "NEW YORK", "county", None),
                        _part(city, "NEW YORK CITY", "city", "4.5"),
                        _part(
                            mctd,
                            "Metropolitan Commuter Transportation District",
                            "district",
                            "0.375",
                        ),
                    ],
                }
            ],
        },
    }


def _request(includes_tax: bool) -> TaxRequest:
    return TaxRequest(
        merchant_id=3,
        campaign_id=5,
        unit_price=Decimal("149.00"),
        quantity=1,
        currency="USD",
        price_includes_tax=includes_tax,
        ship_to={**MANHATTAN, "line2": "", "name": "Alice"},
    )


@responses.activate
def test_tax_on_top_of_the_price_comes_back_by_jurisdiction(tax):
    responses.post(API, json=_calculation("exclusive", (596, 671, 56)))
    quote = tax.quote(_request(includes_tax=False))

    (call,) = responses.calls
    assert parse_qs(call.request.body) == {
        "currency": ["usd"],
        "line_items[0][amount]": ["14900"],
        "line_items[0][reference]": ["campaign-5"],
        "line_items[0][quantity]": ["1"],
        "line_items[0][tax_behavior]": ["exclusive"],
        "customer_details[address][line1]": ["350 Fifth Avenue"],
        "customer_details[address][city]": ["New York"],
        "customer_details[address][state]": ["NY"],
        "customer_details[address][postal_code]": ["10001"],
        "customer_details[address][country]": ["US"],
        "customer_details[address_source]": ["shipping"],
        "expand[0]": ["line_items"],
    }
    assert [(line.jurisdiction, line.rate, line.amount) for line in quote.lines] == [
        ("New York", Decimal("0.04"), Decimal("5.96")),
        ("NEW YORK CITY", Decimal("0.045"), Decimal("6.71")),
        ("Metropolitan Commuter Transportation District", Decimal("0.00375"), Decimal("0.56")),
    ]  # the county, which charges nothing, has no line
    assert (quote.subtotal, quote.tax_total, quote.total) == (
        Decimal("149.00"),
        Decimal("13.23"),
        Decimal("162.23"),
    )


@responses.activate
def test_tax_included_in_the_price_is_taken_out_of_it(tax):
    responses.post(API, json=_calculation("inclusive", (547, 616, 51)))
    quote = tax.quote(_request(includes_tax=True))

    (call,) = responses.calls
    assert parse_qs(call.request.body)["line_items[0][tax_behavior]"] == ["inclusive"]
    assert [line.amount for line in quote.lines] == [
        Decimal("5.47"),
        Decimal("6.16"),
        Decimal("0.51"),
    ]
    assert (quote.subtotal, quote.tax_total, quote.total) == (
        Decimal("149.00"),
        Decimal("12.14"),
        Decimal("149.00"),
    )


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, {"type": "api_error", "message": "boom"}),
        (
            400,
            {
                "type": "invalid_request_error",
                "code": "customer_tax_location_invalid",
                "message": "We could not determine the customer's tax location.",
            },
        ),
        (401, {"type": "invalid_request_error", "message": "Invalid API Key"}),
    ],
    ids=["server-error", "address-refused", "bad-key"],
)
@responses.activate
def test_any_stripe_error_is_the_contracts_error(tax, status, error):
    responses.post(API, status=status, body=json.dumps({"error": error}))
    with pytest.raises(TaxError):
        tax.quote(_request(includes_tax=False))


@pytest.fixture
def stripe_tax(settings):
    settings.HASHCART = {**settings.HASHCART, "TAX": "orders.tax.stripe.StripeTax"}
    settings.STRIPE_SECRET_KEY = "sk_test_hashcart"


@pytest.mark.django_db
@responses.activate
def test_deciding_with_stripe_tax_stores_its_lines_on_the_order(stripe_tax):
    responses.post(API, json=_calculation("exclusive", (596, 671, 56)))
    shop_open()
    buyer_ready("alice", address={"state": "NY", "postal_code": "10001"})
    post("alice", f"@{BRAND} #BuyKindleFireHD")
    tick()

    order = Order.objects.get()
    assert (order.tax_total, order.total) == (Decimal("13.23"), Decimal("162.23"))
    assert order.tax_lines[1] == {
        "jurisdiction": "NEW YORK CITY",
        "rate": "0.045",
        "amount": "6.71",
    }


@pytest.mark.django_db
@responses.activate
def test_when_stripe_tax_fails_the_purchase_is_blocked_and_the_buyer_told_why(stripe_tax):
    responses.post(API, status=500, json={"error": {"type": "api_error", "message": "boom"}})
    shop_open()
    buyer_ready("alice")
    purchase = post("alice", f"@{BRAND} #BuyKindleFireHD")
    tick()

    assert not Order.objects.exists()
    assert Post.objects.get(post_id=str(purchase.pk)).outcome == PostOutcome.BLOCKED
    [email] = [m for m in mail.outbox if "couldn't take your order" in m.subject]
    assert "sales tax" in email.body


@pytest.mark.django_db(transaction=True)  # so that the batch's own transaction can be seen
@responses.activate
def test_stripe_tax_is_asked_before_the_batch_opens_its_transaction(stripe_tax):
    """A call over the network never waits under the batch's locks (campaign and buyer rows)."""
    asked_in_a_transaction = []

    def answer(request):
        asked_in_a_transaction.append(connection.in_atomic_block)
        return 200, {}, json.dumps(_calculation("exclusive", (596, 671, 56)))

    responses.add_callback(responses.POST, API, callback=answer)
    shop_open()
    buyer_ready("alice", address={"state": "NY", "postal_code": "10001"})
    post("alice", f"@{BRAND} #BuyKindleFireHD")
    tick()

    assert asked_in_a_transaction == [False]
    assert Order.objects.get().total == Decimal("162.23")


@pytest.mark.django_db
@responses.activate
def test_a_purchase_of_a_sold_out_campaign_asks_no_tax(stripe_tax):
    responses.post(API, json=_calculation("exclusive", (596, 671, 56)))
    shop_open(stock=1)
    for handle in ("alice", "bob", "carol"):
        buyer_ready(handle, address={"state": "NY", "postal_code": "10001"})
    post("alice", f"@{BRAND} #BuyKindleFireHD")
    tick()
    assert len(responses.calls) == 1
    post("bob", f"@{BRAND} #BuyKindleFireHD")
    post("carol", f"@{BRAND} #BuyKindleFireHD")
    tick()

    assert len(responses.calls) == 1  # sold out: no question asked (they wait for a unit)
    outcomes = dict(Post.objects.exclude(outcome="").values_list("author_handle", "outcome"))
    assert (outcomes["bob"], outcomes["carol"]) == (PostOutcome.WAITLISTED, PostOutcome.WAITLISTED)


@pytest.mark.django_db
def test_a_purchase_not_asked_ahead_is_refused_for_now(monkeypatch):
    """The buyer's address changed between the look ahead and the batch, so the answer asked
    ahead is not this purchase's: it is refused for now (post again), never asked late."""
    import orders.services.decide as deciding
    from orders.services.decide.taxes import Prequoted

    monkeypatch.setattr(deciding, "batch_tax", lambda **kwargs: Prequoted({}))
    shop_open()
    buyer_ready("alice", address={"state": "NY", "postal_code": "10001"})
    post("alice", f"@{BRAND} #BuyKindleFireHD")
    tick()

    assert not Order.objects.exists()
    assert Post.objects.exclude(outcome="").get().outcome == PostOutcome.BLOCKED
    [email] = [m for m in mail.outbox if "couldn't take your order" in m.subject]
    assert "post again" in email.body
