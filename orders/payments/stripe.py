"""The Stripe gateway: off-session PaymentIntents with manual capture (DESIGN §5.5, §6).

A card on file is the Stripe customer and its saved payment method, kept as the token
``<customer id>:<payment method id>`` (from the SetupIntent of the linking page). Authorize
creates and confirms a PaymentIntent off-session with ``capture_method=manual``; capture and void
capture or cancel it. Every call carries the operation's idempotency key, so Stripe answers a
repeated call with the first call's result. A card decline is an answer (``approved=False``);
network failures, Stripe's 5xx and rate limits are ``GatewayError`` (retried with the same key).

Each PaymentIntent carries ``hashcart_order_id`` and ``hashcart_idempotency_key`` in its metadata:
``authorization_lookup`` finds an intent whose creation answer was lost by searching on the key
(Stripe's Search API: usually current within a minute, slower during Stripe's own incidents, and
not offered to merchants in India; the payment outbox only trusts "none found" after its retries).

A refund is a Stripe Refund of the PaymentIntent (``amount`` in minor units), created with the
refund's idempotency key and carrying the same metadata; ``refund_lookup`` lists the intent's
refunds and finds it by the key (a list, not a search: current at once, and not limited to the
24 hours Stripe keeps idempotency keys). A refund Stripe accepted but has not settled
(``pending``) counts as given: Stripe completes it on its own.

Card authentication (3-D Secure): an off-session confirm may leave the intent in
``requires_action``, or Stripe may decline it with ``authentication_required`` (the intent then
waits in ``requires_payment_method``). Both become ``requires_action``, with the intent's client
secret (and, for the decline, the card to confirm it with again): the buyer's page runs Stripe.js
(``stripe.handleNextAction``, or ``stripe.confirmCardPayment`` after the decline) and posts
back, and ``authentication_status`` retrieves the intent to read the outcome.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings

from orders.payments.base import GatewayError, GatewayRecord, GatewayResult, PaymentGateway

# Currencies Stripe counts in whole units (no cents).
ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF"})
_RETRYABLE = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError)
# PaymentIntent states in which money is held (or was taken) on the card.
_HOLDING = frozenset({"requires_capture", "succeeded"})
# Refund states in which the money is (or is being) given back.
_REFUNDED = frozenset({"succeeded", "pending"})


def _metadata(obj: Any) -> dict[str, Any]:
    metadata = getattr(obj, "metadata", None)
    if metadata is None:
        return {}
    return dict(metadata.to_dict() if hasattr(metadata, "to_dict") else metadata)


def _refund_result(refund: Any) -> GatewayResult:
    approved = refund.status in _REFUNDED
    reason = getattr(refund, "failure_reason", None) or f"status_{refund.status}"
    return GatewayResult(
        approved=approved, reference=refund.id, decline_code="" if approved else reason
    )


# Stripe's code for an off-session payment the bank wants the cardholder to authenticate.
AUTHENTICATION_REQUIRED = "authentication_required"


def _order_id_of(intent: Any) -> str:
    return str(_metadata(intent).get("hashcart_order_id", ""))


def _id_of(value: Any) -> str:
    """The id of an expandable Stripe field (an object or its id), or ""."""
    if value is None or isinstance(value, str):
        return value or ""
    return str(getattr(value, "id", "") or "")


def _waiting(intent: Any) -> GatewayResult | None:
    """A ``requires_action`` result when ``intent`` waits for the cardholder to authenticate:
    in ``requires_action``, or declined off-session with ``authentication_required`` and not
    tried again since (its last error is still that one); else None."""
    error = getattr(intent, "last_payment_error", None)
    if intent.status == "requires_action":
        method = ""
    elif intent.status == "requires_payment_method" and AUTHENTICATION_REQUIRED in (
        getattr(error, "code", None),
        getattr(error, "decline_code", None),
    ):
        method = _id_of(getattr(error, "payment_method", None)) or _id_of(
            getattr(intent, "payment_method", None)
        )
    else:
        return None
    return GatewayResult(
        approved=False,
        reference=intent.id,
        decline_code=AUTHENTICATION_REQUIRED,
        requires_action=True,
        client_secret=str(getattr(intent, "client_secret", "") or ""),
        payment_method=method,
    )


def minor_units(amount: Decimal, currency: str) -> int:
    """``amount`` in the currency's smallest unit, as Stripe expects it."""
    if currency.upper() in ZERO_DECIMAL:
        return int(amount)
    return int((amount * 100).to_integral_value())


def major_units(amount: int, currency: str) -> Decimal:
    """An amount in the currency's smallest unit (as Stripe gives it) in its major unit."""
    if currency.upper() in ZERO_DECIMAL:
        return Decimal(amount)
    return Decimal(amount) / 100


def _intent_records(intent: Any) -> Iterator[GatewayRecord]:
    """What a PaymentIntent says happened: its authorization, and its capture or cancellation."""
    order_id = _order_id_of(intent)
    currency = str(intent.currency).upper()
    common = {
        "order_id": int(order_id) if order_id.isdigit() else None,
        "reference": intent.id,
        "currency": currency,
        "created_at": datetime.fromtimestamp(int(intent.created), tz=UTC),
    }
    # A cancelled intent held money only if a charge went through before it was cancelled.
    held = intent.status in _HOLDING or (
        intent.status == "canceled"
        and getattr(intent, "latest_charge", None)
        and getattr(intent, "last_payment_error", None) is None
    )
    yield GatewayRecord(
        operation="authorize",
        amount=major_units(int(intent.amount), currency),
        approved=bool(held),
        **common,
    )
    if intent.status == "succeeded":
        yield GatewayRecord(
            operation="capture",
            amount=major_units(int(intent.amount_received), currency),
            approved=True,
            **common,
        )
    elif intent.status == "canceled" and held:
        yield GatewayRecord(operation="void", amount=Decimal(0), approved=True, **common)


def _refund_record(refund: Any) -> GatewayRecord:
    """A Stripe Refund as the gateway's books have it (pending ones count as given)."""
    order_id = str(_metadata(refund).get("hashcart_order_id", ""))
    currency = str(refund.currency).upper()
    return GatewayRecord(
        operation="refund",
        order_id=int(order_id) if order_id.isdigit() else None,
        reference=str(getattr(refund, "payment_intent", "") or ""),
        amount=major_units(int(refund.amount), currency),
        currency=currency,
        approved=refund.status in _REFUNDED,
        created_at=datetime.fromtimestamp(int(refund.created), tz=UTC),
    )


class StripeGateway(PaymentGateway):
    authentication_template = "orders/_authenticate_stripe.html"

    @property
    def publishable_key(self) -> str:
        """The key Stripe.js runs with on the authentication page."""
        return str(settings.STRIPE_PUBLISHABLE_KEY)

    def __init__(self, client: stripe.StripeClient | None = None) -> None:
        self.client = client or stripe.StripeClient(
            settings.STRIPE_SECRET_KEY,
            http_client=stripe.RequestsClient(timeout=20),
            max_network_retries=0,  # the payment outbox retries, with the same key
        )

    def authorize(
        self, *, token: str, amount: Decimal, currency: str, idempotency_key: str, order_id: int
    ) -> GatewayResult:
        customer, _, payment_method = token.partition(":")
        params: dict[str, Any] = {
            "amount": minor_units(amount, currency),
            "currency": currency.lower(),
            "customer": customer,
            "payment_method": payment_method,
            "capture_method": "manual",
            "confirm": True,
            "off_session": True,
            "metadata": {
                "hashcart_order_id": str(order_id),
                "hashcart_idempotency_key": idempotency_key,
            },
        }
        try:
            intent = self.client.v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.CardError as exc:
            error = exc.error
            declined = getattr(error, "payment_intent", None)
            reference = getattr(declined, "id", "") or ""
            if AUTHENTICATION_REQUIRED in (exc.code, getattr(error, "decline_code", None)):
                # The bank wants the cardholder: the intent waits for them to authenticate.
                return GatewayResult(
                    approved=False,
                    reference=reference,
                    decline_code=AUTHENTICATION_REQUIRED,
                    requires_action=True,
                    client_secret=str(getattr(declined, "client_secret", "") or ""),
                    payment_method=_id_of(getattr(error, "payment_method", None)),
                )
            return GatewayResult(
                approved=False,
                reference=reference,
                decline_code=(getattr(error, "decline_code", None) or exc.code or "card_declined"),
            )
        except _RETRYABLE as exc:
            raise GatewayError(f"Stripe: {exc.user_message or exc}") from exc
        except stripe.InvalidRequestError as exc:
            # Refused as asked (an amount below Stripe's minimum, a detached card): a decline.
            return GatewayResult(
                approved=False, reference="", decline_code=exc.code or "invalid_request"
            )
        except stripe.StripeError as exc:
            # Our keys or idempotency use are wrong: retried, and declined after the last try.
            raise GatewayError(f"Stripe: {type(exc).__name__}") from exc
        waiting = _waiting(intent)
        if waiting is not None:
            return waiting
        approved = intent.status == "requires_capture"
        return GatewayResult(
            approved=approved,
            reference=intent.id,
            decline_code="" if approved else f"status_{intent.status}",
        )

    def authorization_lookup(self, *, idempotency_key: str, order_id: int) -> GatewayResult | None:
        # Search query values are quoted; our keys (``order-<id>-authorize``) hold no quote.
        query = f"metadata['hashcart_idempotency_key']:'{idempotency_key}'"
        try:
            found = self.client.v1.payment_intents.search(params={"query": query, "limit": 10})
        except _RETRYABLE as exc:
            raise GatewayError(f"Stripe: {exc.user_message or exc}") from exc
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe search: {type(exc).__name__}") from exc
        intents = [i for i in found.data if _order_id_of(i) == str(order_id)]
        if not intents:
            return None
        # One intent per key; should there be more, one still holding money is the one to know.
        intents.sort(key=lambda i: (i.status not in _HOLDING, -int(getattr(i, "created", 0) or 0)))
        intent = intents[0]
        return self._state(intent)

    def _state(self, intent: Any) -> GatewayResult:
        """What an intent says of its authorization: holding, waiting for the cardholder, or
        not (with the reason)."""
        if intent.status in _HOLDING:
            return GatewayResult(approved=True, reference=intent.id)
        waiting = _waiting(intent)
        if waiting is not None:
            return waiting
        error = getattr(intent, "last_payment_error", None)
        code = getattr(error, "decline_code", None) or getattr(error, "code", None)
        return GatewayResult(
            approved=False, reference=intent.id, decline_code=code or f"status_{intent.status}"
        )

    def authentication_status(self, *, reference: str) -> GatewayResult:
        try:
            intent = self.client.v1.payment_intents.retrieve(reference)
        except _RETRYABLE as exc:
            raise GatewayError(f"Stripe: {exc.user_message or exc}") from exc
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe retrieve: {type(exc).__name__}") from exc
        if intent.status == "processing":  # the bank's answer is on its way: not known yet
            raise GatewayError("Stripe: the payment is still processing")
        return self._state(intent)

    def capture(
        self, *, reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayResult:
        try:
            intent = self.client.v1.payment_intents.capture(
                reference,
                params={"amount_to_capture": minor_units(amount, currency)},
                options={"idempotency_key": idempotency_key},
            )
        except _RETRYABLE as exc:
            raise GatewayError(f"Stripe: {exc.user_message or exc}") from exc
        except stripe.InvalidRequestError as exc:
            return GatewayResult(approved=False, reference=reference, decline_code=exc.code or "")
        return GatewayResult(approved=intent.status == "succeeded", reference=intent.id)

    def void(self, *, reference: str, idempotency_key: str) -> GatewayResult:
        try:
            intent = self.client.v1.payment_intents.cancel(
                reference, options={"idempotency_key": idempotency_key}
            )
        except _RETRYABLE as exc:
            raise GatewayError(f"Stripe: {exc.user_message or exc}") from exc
        except stripe.InvalidRequestError as exc:
            return GatewayResult(approved=False, reference=reference, decline_code=exc.code or "")
        return GatewayResult(approved=intent.status == "canceled", reference=intent.id)

    def records(self, *, since: datetime) -> Iterator[GatewayRecord]:
        """The PaymentIntents created since ``since`` (every page), as authorizations with their
        captures and cancellations, then the refunds made since then."""
        try:
            page = self.client.v1.payment_intents.list(
                params={"created": {"gte": int(since.timestamp())}, "limit": 100}
            )
            for intent in page.auto_paging_iter():
                yield from _intent_records(intent)
            refunds = self.client.v1.refunds.list(
                params={"created": {"gte": int(since.timestamp())}, "limit": 100}
            )
            for refund in refunds.auto_paging_iter():
                yield _refund_record(refund)
        except _RETRYABLE as exc:
            raise GatewayError(f"Stripe: {exc.user_message or exc}") from exc
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe list: {type(exc).__name__}") from exc

    def refund(
        self,
        *,
        reference: str,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        order_id: int,
    ) -> GatewayResult:
        params: dict[str, Any] = {
            "payment_intent": reference,
            "amount": minor_units(amount, currency),
            "metadata": {
                "hashcart_order_id": str(order_id),
                "hashcart_idempotency_key": idempotency_key,
            },
        }
        try:
            refund = self.client.v1.refunds.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except _RETRYABLE as exc:
            raise GatewayError(f"Stripe: {exc.user_message or exc}") from exc
        except stripe.InvalidRequestError as exc:
            # Refused as asked: more than is left (``amount_too_large``), already refunded.
            return GatewayResult(
                approved=False, reference="", decline_code=exc.code or "invalid_request"
            )
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe: {type(exc).__name__}") from exc
        return _refund_result(refund)

    def refund_lookup(self, *, reference: str, idempotency_key: str) -> GatewayResult | None:
        try:
            found = self.client.v1.refunds.list(params={"payment_intent": reference, "limit": 100})
        except _RETRYABLE as exc:
            raise GatewayError(f"Stripe: {exc.user_message or exc}") from exc
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe refunds: {type(exc).__name__}") from exc
        for refund in found.data:
            if _metadata(refund).get("hashcart_idempotency_key") == idempotency_key:
                return _refund_result(refund)
        return None
