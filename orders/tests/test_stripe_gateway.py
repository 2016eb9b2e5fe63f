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


REFUNDS = "https://api.stripe.com/v1/refunds"


def _refund(status: str, refund_id: str = "re_1", key: str = "order-7-refund-1", **extra) -> dict:
    return {
        "id": refund_id,
        "object": "refund",
        "status": status,
        "amount": 4900,
        "payment_intent": "pi_123",
        "metadata": {"hashcart_order_id": "7", "hashcart_idempotency_key": key},
        **extra,
    }


def _refund_call(gateway, amount: str = "49.00", key: str = "order-7-refund-1"):
    return gateway.refund(
        reference="pi_123",
        amount=Decimal(amount),
        currency="USD",
        idempotency_key=key,
        order_id=7,
    )


@responses.activate
def test_a_refund_is_a_stripe_refund_of_the_intent_in_cents_with_its_key(gateway):
    responses.post(REFUNDS, json=_refund("succeeded"))
    result = _refund_call(gateway)
    assert (result.approved, result.reference) == (True, "re_1")
    (call,) = responses.calls
    assert call.request.headers["Idempotency-Key"] == "order-7-refund-1"
    assert _form(call) == {
        "payment_intent": ["pi_123"],
        "amount": ["4900"],
        "metadata[hashcart_order_id]": ["7"],
        "metadata[hashcart_idempotency_key]": ["order-7-refund-1"],
    }


@responses.activate
def test_a_pending_refund_counts_as_given_and_a_failed_one_does_not(gateway):
    responses.post(REFUNDS, json=_refund("pending"))
    responses.post(REFUNDS, json=_refund("failed", failure_reason="expired_or_canceled_card"))
    assert _refund_call(gateway).approved
    failed = _refund_call(gateway, key="order-7-refund-2")
    assert (failed.approved, failed.decline_code) == (False, "expired_or_canceled_card")


@responses.activate
def test_a_refund_above_what_is_left_is_refused_not_retried(gateway):
    body = {
        "error": {
            "type": "invalid_request_error",
            "code": "amount_too_large",
            "message": "Refund amount ($150.00) is greater than unrefunded amount on charge",
        }
    }
    responses.post(REFUNDS, status=400, body=json.dumps(body))
    result = _refund_call(gateway, amount="150.00")
    assert (result.approved, result.decline_code) == (False, "amount_too_large")


@pytest.mark.parametrize("status", [500, 429])
@responses.activate
def test_a_refund_that_stripe_cannot_answer_is_retried_with_the_same_key(gateway, status):
    responses.post(REFUNDS, status=status, json={"error": {"type": "api_error", "message": "x"}})
    with pytest.raises(GatewayError):
        _refund_call(gateway)


@responses.activate
def test_a_refund_whose_answer_was_lost_is_found_among_the_intents_refunds_by_its_key(gateway):
    listing = {
        "object": "list",
        "url": "/v1/refunds",
        "has_more": False,
        "data": [
            _refund("succeeded", "re_other", key="order-7-refund-2"),
            _refund("succeeded", "re_1", key="order-7-refund-1"),
        ],
    }
    responses.get(REFUNDS, json=listing)
    found = gateway.refund_lookup(reference="pi_123", idempotency_key="order-7-refund-1")
    assert (found.approved, found.reference) == (True, "re_1")
    assert gateway.refund_lookup(reference="pi_123", idempotency_key="order-7-refund-3") is None
    assert "payment_intent=pi_123" in responses.calls[0].request.url


@responses.activate
def test_a_refund_lookup_stripe_cannot_answer_is_an_error(gateway):
    responses.get(REFUNDS, status=503, json={"error": {"type": "api_error", "message": "x"}})
    with pytest.raises(GatewayError):
        gateway.refund_lookup(reference="pi_123", idempotency_key="order-7-refund-1")
