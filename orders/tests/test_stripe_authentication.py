"""Card authentication with Stripe (3-D Secure), against a mocked Stripe API (``responses``):
an off-session confirm that the bank wants the cardholder for becomes ``requires_action``, and
the intent retrieved after the buyer acted says whether it is authorized."""

import json
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import responses
import stripe
from django.utils import timezone

from orders.messages import authenticate_url
from orders.models import Order, OrderStatus
from orders.payments.base import GatewayError
from orders.payments.stripe import StripeGateway
from orders.pipeline import stage_decide, stage_payments, stage_poll
from tests.shop import BRAND, buyer_ready, post, shop_open, tick

API = "https://api.stripe.com/v1/payment_intents"
SECRET = "pi_123_secret_abc"


@pytest.fixture
def gateway():
    client = stripe.StripeClient(
        "sk_test_hashcart", http_client=stripe.RequestsClient(), max_network_retries=0
    )
    return StripeGateway(client)


def _intent(status: str, **fields) -> dict:
    return {
        "id": "pi_123",
        "object": "payment_intent",
        "status": status,
        "client_secret": SECRET,
        **fields,
    }


def _authorize(gateway):
    return gateway.authorize(
        token="cus_9:pm_4",
        amount=Decimal("149.00"),
        currency="USD",
        idempotency_key="order-7-authorize",
        order_id=7,
    )


@responses.activate
def test_an_intent_left_requiring_action_asks_for_the_cardholder(gateway):
    responses.post(API, json=_intent("requires_action", next_action={"type": "use_stripe_sdk"}))
    result = _authorize(gateway)
    assert (result.approved, result.requires_action, result.reference) == (False, True, "pi_123")
    assert (result.client_secret, result.payment_method) == (SECRET, "")
    assert SECRET not in repr(result)  # never in a log line


@responses.activate
def test_an_authentication_required_decline_asks_for_the_cardholder_with_the_card(gateway):
    body = {
        "error": {
            "type": "card_error",
            "code": "authentication_required",
            "decline_code": "authentication_required",
            "message": "Your card was declined. This transaction requires authentication.",
            "payment_intent": _intent(
                "requires_payment_method",
                last_payment_error={"code": "authentication_required"},
            ),
            "payment_method": {"id": "pm_4", "object": "payment_method"},
        }
    }
    responses.post(API, status=402, body=json.dumps(body))
    result = _authorize(gateway)
    assert (result.approved, result.requires_action) == (False, True)
    assert (result.reference, result.client_secret, result.payment_method) == (
        "pi_123",
        SECRET,
        "pm_4",
    )
    assert result.decline_code == "authentication_required"


@pytest.mark.parametrize("status", ["requires_capture", "succeeded"])
@responses.activate
def test_the_intent_retrieved_after_the_buyer_acted_is_approved_when_it_holds(gateway, status):
    responses.get(f"{API}/pi_123", json=_intent(status))
    result = gateway.authentication_status(reference="pi_123")
    assert (result.approved, result.requires_action, result.reference) == (True, False, "pi_123")


@responses.activate
def test_the_intent_retrieved_after_a_failed_check_is_declined(gateway):
    failed = {"code": "payment_intent_authentication_failure", "type": "card_error"}
    declined = _intent("requires_payment_method", last_payment_error=failed)
    responses.get(f"{API}/pi_123", json=declined)
    result = gateway.authentication_status(reference="pi_123")
    assert (result.approved, result.requires_action) == (False, False)
    assert result.decline_code == "payment_intent_authentication_failure"


@responses.activate
def test_an_intent_not_yet_acted_on_still_waits(gateway):
    waiting_decline = {
        "code": "authentication_required",
        "payment_method": {"id": "pm_4", "object": "payment_method"},
    }
    responses.get(f"{API}/pi_123", json=_intent("requires_action"))
    responses.get(
        f"{API}/pi_124",
        json={**_intent("requires_payment_method", last_payment_error=waiting_decline)},
    )
    assert gateway.authentication_status(reference="pi_123").requires_action
    declined_off_session = gateway.authentication_status(reference="pi_124")
    assert declined_off_session.requires_action
    assert declined_off_session.payment_method == "pm_4"


@responses.activate
def test_a_retrieve_that_fails_or_finds_it_processing_cannot_say_yet(gateway):
    responses.get(f"{API}/pi_123", status=500, json={"error": {"type": "api_error"}})
    responses.get(f"{API}/pi_124", json=_intent("processing"))
    for reference in ("pi_123", "pi_124"):
        with pytest.raises(GatewayError):
            gateway.authentication_status(reference=reference)


@responses.activate
def test_a_lost_answer_looked_up_finds_the_intent_waiting_for_the_cardholder(gateway):
    responses.get(
        f"{API}/search",
        json={
            "object": "search_result",
            "data": [_intent("requires_action", metadata={"hashcart_order_id": "7"})],
            "has_more": False,
        },
    )
    found = gateway.authorization_lookup(idempotency_key="order-7-authorize", order_id=7)
    assert found is not None
    assert found.requires_action
    assert found.client_secret == SECRET


@pytest.mark.django_db
@responses.activate
def test_with_stripe_an_order_waits_for_authentication_and_is_paid_once_stripe_holds(
    settings, client
):
    """The whole path with Stripe's answers: the off-session confirm asks for the cardholder,
    the page gets the client secret for Stripe.js, and the return reads the intent."""
    settings.STRIPE_SECRET_KEY = "sk_test_hashcart"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_hashcart"
    settings.HASHCART = {
        **settings.HASHCART,
        "PAYMENT_GATEWAY": "orders.payments.stripe.StripeGateway",
    }
    shop_open()
    buyer_ready("alice", token="cus_9:pm_4")
    post("alice", f"@{BRAND} #BuyKindleFireHD")
    tick()
    order = Order.objects.get()
    post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    now = timezone.now()
    stage_poll(now=now)
    stage_decide(now=now)
    responses.post(API, json=_intent("requires_action"))
    stage_payments(now=now)
    order.refresh_from_db()
    assert order.status == OrderStatus.AUTHENTICATION_REQUIRED
    assert order.payment_reference == "pi_123"

    path = urlsplit(authenticate_url(order.pk)).path
    responses.get(f"{API}/pi_123", json=_intent("requires_action"))
    page = client.get(path).content.decode()
    assert 'src="https://js.stripe.com/v3/"' in page
    assert f'data-client-secret="{SECRET}"' in page
    assert "pk_test_hashcart" in page

    responses.replace(responses.GET, f"{API}/pi_123", json=_intent("requires_capture"))
    assert "Your bank approved the payment" in client.post(path).content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert order.shipment.ship_by >= (now - timedelta(days=1)).date()
