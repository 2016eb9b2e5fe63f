"""Cards set up at Stripe: the Payment Element page, the return, the signed webhook (§6).

Stripe's API is mocked with ``responses``; the webhook is signed as Stripe signs it.
"""

import hashlib
import hmac
import json
import time

import pytest
import responses
from django.test import Client
from django.urls import reverse

from accounts.models import Card, PendingCard
from accounts.services import cardholder_upsert

pytestmark = pytest.mark.django_db

API = "https://api.stripe.com/v1"
SECRET = "whsec_hashcart_test"


@pytest.fixture(autouse=True)
def stripe_vault(settings):
    settings.HASHCART = {**settings.HASHCART, "CARD_VAULT": "accounts.stripe_vault.StripeVault"}
    settings.STRIPE_SECRET_KEY = "sk_test_hashcart"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_hashcart"
    settings.STRIPE_WEBHOOK_SECRET = SECRET


def _setup_intent(cardholder_id: int, status: str = "succeeded") -> dict:
    return {
        "id": "seti_1",
        "object": "setup_intent",
        "status": status,
        "customer": "cus_1",
        "metadata": {"cardholder": str(cardholder_id)},
        "payment_method": {
            "id": "pm_1",
            "object": "payment_method",
            "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2031},
        },
    }


def _signed(payload: bytes, secret: str = SECRET) -> str:
    stamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256)
    return f"t={stamp},v1={digest.hexdigest()}"


def _client(email="carol@example.com"):
    cardholder = cardholder_upsert(email=email, password="pw-carol-123")
    client = Client()
    client.force_login(cardholder.user)
    return cardholder, client


@responses.activate
def test_the_card_page_sets_up_an_intent_for_the_payment_element():
    cardholder, client = _client()
    responses.post(f"{API}/customers", json={"id": "cus_1", "object": "customer"})
    responses.post(
        f"{API}/setup_intents",
        json={"id": "seti_1", "object": "setup_intent", "client_secret": "seti_1_secret_abc"},
    )
    page = client.get(reverse("accounts:link_card"))
    assert b'data-client-secret="seti_1_secret_abc"' in page.content
    assert b"https://js.stripe.com/v3/" in page.content
    assert b'name="number"' not in page.content  # no card field of ours
    cardholder.refresh_from_db()
    assert cardholder.stripe_customer_id == "cus_1"
    setup = responses.calls[1].request
    assert "usage=off_session" in setup.body
    assert "customer=cus_1" in setup.body


@responses.activate
def test_the_return_from_stripe_keeps_the_card_for_its_address():
    cardholder, client = _client()
    responses.get(f"{API}/setup_intents/seti_1", json=_setup_intent(cardholder.pk))
    response = client.get(reverse("accounts:link_card_stripe_return"), {"setup_intent": "seti_1"})
    assert response["Location"] == reverse("accounts:link_address")
    client.post(
        reverse("accounts:link_address"),
        {
            "billing_name": "Carol",
            "address_line1": "1 Main Street",
            "city": "Springfield",
            "state": "IL",
            "postal_code": "62701",
        },
    )
    card = Card.objects.get(cardholder=cardholder)
    assert (card.gateway, card.token, card.brand, card.last4) == (
        "stripe",
        "cus_1:pm_1",
        "Visa",
        "4242",
    )


@responses.activate
def test_someone_elses_setup_intent_is_refused():
    owner = cardholder_upsert(email="owner@example.com", password="pw-owner-123")
    _, client = _client()
    responses.get(f"{API}/setup_intents/seti_1", json=_setup_intent(owner.pk))
    response = client.get(reverse("accounts:link_card_stripe_return"), {"setup_intent": "seti_1"})
    assert response["Location"] == reverse("accounts:link_card")
    assert not PendingCard.objects.exists()


@responses.activate
def test_a_signed_webhook_keeps_the_card_once():
    cardholder, _ = _client()
    responses.get(f"{API}/setup_intents/seti_1", json=_setup_intent(cardholder.pk))
    payload = json.dumps(
        {
            "id": "evt_1",
            "object": "event",
            "type": "setup_intent.succeeded",
            "data": {"object": {"id": "seti_1", "object": "setup_intent"}},
        }
    ).encode()
    url = reverse("accounts:stripe_webhook")
    for _ in range(2):  # Stripe delivers at least once
        response = Client().post(
            url, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=_signed(payload)
        )
        assert response.status_code == 200
    pending = PendingCard.objects.get()
    assert (pending.cardholder, pending.token, pending.reference) == (
        cardholder,
        "cus_1:pm_1",
        "seti_1",
    )


@pytest.mark.parametrize("signature", ["", "t=1,v1=deadbeef", "forged"])
def test_an_unsigned_or_forged_webhook_is_refused(signature):
    cardholder_upsert(email="carol@example.com", password="pw")
    payload = b'{"type": "setup_intent.succeeded", "data": {"object": {"id": "seti_1"}}}'
    response = Client().post(
        reverse("accounts:stripe_webhook"),
        payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature,
    )
    assert response.status_code == 400
    assert not PendingCard.objects.exists()


def test_a_webhook_signed_with_another_secret_is_refused():
    payload = b'{"type": "setup_intent.succeeded", "data": {"object": {"id": "seti_1"}}}'
    response = Client().post(
        reverse("accounts:stripe_webhook"),
        payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=_signed(payload, "whsec_someone_else"),
    )
    assert response.status_code == 400


@responses.activate
@pytest.mark.parametrize("metadata", [{}, {"cardholder": ""}, {"cardholder": "cus_x"}, None])
def test_a_webhook_for_a_setup_intent_hashcart_did_not_make_is_acknowledged_and_ignored(
    metadata,
):
    # The Stripe account serves another product too: its SetupIntents carry no cardholder.
    cardholder_upsert(email="carol@example.com", password="pw")
    foreign = {**_setup_intent(0), "id": "seti_other", "metadata": metadata}
    responses.get(f"{API}/setup_intents/seti_other", json=foreign)
    payload = json.dumps(
        {
            "id": "evt_2",
            "object": "event",
            "type": "setup_intent.succeeded",
            "data": {"object": {"id": "seti_other", "object": "setup_intent"}},
        }
    ).encode()
    response = Client().post(
        reverse("accounts:stripe_webhook"),
        payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=_signed(payload),
    )
    assert response.status_code == 200
    assert not PendingCard.objects.exists()


@responses.activate
def test_returning_with_a_setup_intent_hashcart_did_not_make_is_refused_politely():
    _, client = _client()
    foreign = {**_setup_intent(0), "metadata": {}}
    responses.get(f"{API}/setup_intents/seti_1", json=foreign)
    response = client.get(reverse("accounts:link_card_stripe_return"), {"setup_intent": "seti_1"})
    assert response["Location"] == reverse("accounts:link_card")
    assert not PendingCard.objects.exists()
