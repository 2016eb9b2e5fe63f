"""The Stripe gateway against a mocked Stripe API (``responses``): no network."""

import json
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import responses
import stripe

from orders.payments.base import GatewayError
from orders.payments.stripe import StripeGateway, minor_units

API = "https://api.stripe.com/v1/payment_intents"


@pytest.fixture
def gateway():
    client = stripe.StripeClient(
        "sk_test_hashcart", http_client=stripe.RequestsClient(), max_network_retries=0
    )
    return StripeGateway(client)


def _intent(status: str, intent_id: str = "pi_123") -> dict:
    return {"id": intent_id, "object": "payment_intent", "status": status}


def _form(call) -> dict[str, list[str]]:
    return parse_qs(call.request.body)


@responses.activate
def test_authorize_is_an_off_session_manual_capture_intent_with_the_idempotency_key(gateway):
    responses.post(API, json=_intent("requires_capture"))
    result = gateway.authorize(
        token="cus_9:pm_4",
        amount=Decimal("149.00"),
        currency="USD",
        idempotency_key="order-7-authorize",
        order_id=7,
    )
    assert (result.approved, result.reference) == (True, "pi_123")
    (call,) = responses.calls
    assert call.request.headers["Idempotency-Key"] == "order-7-authorize"
    assert _form(call) == {
        "amount": ["14900"],
        "currency": ["usd"],
        "customer": ["cus_9"],
        "payment_method": ["pm_4"],
        "capture_method": ["manual"],
        "confirm": ["true"],
        "off_session": ["true"],
        "metadata[hashcart_order_id]": ["7"],
        "metadata[hashcart_idempotency_key]": ["order-7-authorize"],
    }


@responses.activate
def test_a_card_decline_is_an_answer_not_an_error(gateway):
    body = {
        "error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
            "payment_intent": _intent("requires_payment_method", "pi_456"),
        }
    }
    responses.post(API, status=402, body=json.dumps(body))
    result = gateway.authorize(
        token="cus_9:pm_4",
        amount=Decimal("80"),
        currency="USD",
        idempotency_key="order-8-authorize",
        order_id=8,
    )
    assert (result.approved, result.reference, result.decline_code) == (
        False,
        "pi_456",
        "insufficient_funds",
    )


@pytest.mark.parametrize("status", [500, 429])
@responses.activate
def test_server_errors_and_rate_limits_are_retried_later_with_the_same_key(gateway, status):
    responses.post(API, status=status, json={"error": {"type": "api_error", "message": "boom"}})
    with pytest.raises(GatewayError):
        gateway.authorize(
            token="cus_9:pm_4",
            amount=Decimal("80"),
            currency="USD",
            idempotency_key="order-9-authorize",
            order_id=9,
        )


@responses.activate
def test_capture_and_void(gateway):
    responses.post(f"{API}/pi_123/capture", json=_intent("succeeded"))
    responses.post(f"{API}/pi_123/cancel", json=_intent("canceled"))
    captured = gateway.capture(
        reference="pi_123",
        amount=Decimal("149.00"),
        currency="USD",
        idempotency_key="order-7-capture",
    )
    voided = gateway.void(reference="pi_123", idempotency_key="order-7-void")
    assert captured.approved
    assert voided.approved
    capture_call, void_call = responses.calls
    assert _form(capture_call) == {"amount_to_capture": ["14900"]}
    assert capture_call.request.headers["Idempotency-Key"] == "order-7-capture"
    assert void_call.request.headers["Idempotency-Key"] == "order-7-void"


def test_minor_units():
    assert minor_units(Decimal("149.99"), "USD") == 14999
    assert minor_units(Decimal("500"), "JPY") == 500


@responses.activate
def test_a_request_stripe_refuses_is_a_decline_and_a_bad_key_is_retried(gateway):
    too_small = {"error": {"type": "invalid_request_error", "code": "amount_too_small",
                           "message": "Amount must be at least $0.50 usd"}}  # fmt: skip
    responses.post(API, status=400, body=json.dumps(too_small))
    result = gateway.authorize(
        token="cus_9:pm_4",
        amount=Decimal("0.30"),
        currency="USD",
        idempotency_key="order-1-a",
        order_id=1,
    )
    assert (result.approved, result.decline_code) == (False, "amount_too_small")
    bad_key = {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}}
    responses.replace(responses.POST, API, status=401, body=json.dumps(bad_key))
    with pytest.raises(GatewayError):
        gateway.authorize(
            token="cus_9:pm_4",
            amount=Decimal("10"),
            currency="USD",
            idempotency_key="order-2-a",
            order_id=2,
        )


def _search_result(*intents: dict) -> dict:
    return {"object": "search_result", "data": list(intents), "has_more": False, "url": API}


@responses.activate
def test_authorization_lookup_finds_the_intent_of_a_lost_answer_by_its_key(gateway):
    held = {**_intent("requires_capture", "pi_held"), "metadata": {"hashcart_order_id": "7"}}
    responses.get(f"{API}/search", json=_search_result(held))
    found = gateway.authorization_lookup(idempotency_key="order-7-authorize", order_id=7)
    assert found is not None
    assert (found.approved, found.reference) == (True, "pi_held")
    (call,) = responses.calls
    assert parse_qs(call.request.url.split("?", 1)[1])["query"] == [
        "metadata['hashcart_idempotency_key']:'order-7-authorize'"
    ]


@responses.activate
def test_authorization_lookup_tells_none_a_cancelled_hold_and_an_outage_apart(gateway):
    cancelled = {**_intent("canceled", "pi_gone"), "metadata": {"hashcart_order_id": "7"}}
    responses.get(f"{API}/search", json=_search_result())
    assert gateway.authorization_lookup(idempotency_key="order-7-authorize", order_id=7) is None
    responses.replace(responses.GET, f"{API}/search", json=_search_result(cancelled))
    gone = gateway.authorization_lookup(idempotency_key="order-7-authorize", order_id=7)
    assert gone is not None
    assert (gone.approved, gone.reference, gone.decline_code) == (
        False,
        "pi_gone",
        "status_canceled",
    )
    responses.replace(
        responses.GET, f"{API}/search", status=503, json={"error": {"type": "api_error"}}
    )
    with pytest.raises(GatewayError):
        gateway.authorization_lookup(idempotency_key="order-7-authorize", order_id=7)
