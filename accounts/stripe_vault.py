"""Cards on file at Stripe: a SetupIntent for the Payment Element, and what it saved (§6).

The card number goes from the Payment Element (Stripe's iframe) to Stripe; Hashcart only ever
sees the SetupIntent, its payment method's brand, last four digits and expiry, and keeps
``<customer id>:<payment method id>`` as the token ``orders.payments.stripe`` charges.
"""

import logging
from typing import Any

import stripe
from django.conf import settings
from stripe.params import CustomerCreateParams, SetupIntentCreateParams

from accounts.models import Cardholder
from accounts.vault import CardVault, VaultedCard
from core.exceptions import ApplicationError

logger = logging.getLogger(__name__)


class StripeVault(CardVault):
    """Cards go to Stripe from its Payment Element, on Stripe's side of the page."""

    name = "stripe"
    hosted = True


def client() -> stripe.StripeClient:
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        http_client=stripe.RequestsClient(timeout=20),
        max_network_retries=2,
    )


def setup_intent_start(*, cardholder: Cardholder) -> str:
    """A SetupIntent for saving a card for off-session use; returns its client secret. Creates
    the cardholder's Stripe customer on first use."""
    stripe_client = client()
    if not cardholder.stripe_customer_id:
        customer = stripe_client.v1.customers.create(
            params=CustomerCreateParams(
                email=cardholder.user.email, metadata={"cardholder": str(cardholder.pk)}
            ),
            options={"idempotency_key": f"cardholder-{cardholder.pk}-customer"},
        )
        cardholder.stripe_customer_id = customer.id
        cardholder.save(update_fields=["stripe_customer_id", "updated_at"])
    intent = stripe_client.v1.setup_intents.create(
        params=SetupIntentCreateParams(
            customer=cardholder.stripe_customer_id,
            usage="off_session",
            metadata={"cardholder": str(cardholder.pk)},
        )
    )
    return str(intent.client_secret)


def setup_intent_card(*, setup_intent_id: str) -> tuple[int, VaultedCard]:
    """The cardholder id and the card a succeeded SetupIntent saved. Raises
    ``ApplicationError`` if it did not succeed or is not one of Hashcart's."""
    intent = _setup_intent(setup_intent_id)
    if intent.status != "succeeded":
        raise ApplicationError("The card was not saved: please try again.")
    cardholder_id = _cardholder_id(intent)
    if cardholder_id is None:
        raise ApplicationError("That card was not saved here: please try again.")
    return cardholder_id, _card_of(intent)


def webhook_setup_intent(*, payload: bytes, signature: str) -> tuple[int, VaultedCard] | None:
    """Verify a webhook by its signature; for ``setup_intent.succeeded`` return what it saved
    (the payment method is fetched, as the event carries only its id). None for any other
    event, and for a SetupIntent Hashcart did not make (no cardholder in its metadata: the
    Stripe account may serve other products too), which is acknowledged and ignored, never
    refused (Stripe would retry a refusal for days). Raises
    ``stripe.SignatureVerificationError`` for a forged or stale event."""
    event = stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)
    if event.type != "setup_intent.succeeded":
        return None
    intent = _setup_intent(event.data.object["id"])
    cardholder_id = _cardholder_id(intent)
    if cardholder_id is None or intent.status != "succeeded":
        logger.info("Stripe webhook %s: SetupIntent %s is not Hashcart's", event.id, intent.id)
        return None
    return cardholder_id, _card_of(intent)


def _setup_intent(setup_intent_id: str) -> Any:
    return client().v1.setup_intents.retrieve(
        setup_intent_id, params={"expand": ["payment_method"]}
    )


def _cardholder_id(intent: Any) -> int | None:
    """The cardholder a SetupIntent was made for (``setup_intent_start`` puts it in the
    metadata), or None when it names none."""
    value = str((intent.to_dict().get("metadata") or {}).get("cardholder", ""))
    return int(value) if value.isascii() and value.isdigit() else None


def _card_of(intent: Any) -> VaultedCard:
    method = intent.payment_method
    card = method.card
    return VaultedCard(
        token=f"{intent.customer}:{method.id}",
        brand=str(card.brand).title(),
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
    )
