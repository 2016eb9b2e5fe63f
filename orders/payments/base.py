"""The contract of a payment gateway (DESIGN §5.5, §6).

Every call carries an idempotency key derived from the order and the operation; presenting the
same key again must return the first call's result without moving money again. Calls are made
outside any database transaction. Amounts are ``Decimal`` in the currency's major unit.

An answer can be lost (a timeout after the gateway acted): the caller then asks
``authorization_lookup`` what the gateway recorded under the authorization's key before it decides
anything else (DESIGN §5.5), so that a hold is never left on a card whose order was declined.
A refund whose answer was lost is looked up the same way (``refund_lookup``), so that money is
never given back twice.

The card's bank may ask the cardholder to authenticate an authorization (3-D Secure; Stripe's
``requires_action`` status, or its ``authentication_required`` decline of an off-session
payment). ``authorize`` then answers ``requires_action``, with what the cardholder's page needs
to run the bank's check (``authentication_template``); after it, ``authentication_status`` reads
the outcome from the gateway, never from the browser.
"""

import abc
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class GatewayResult:
    """``approved``: the operation succeeded; ``reference``: the gateway's id of the
    authorization (the same for its capture and void), or of the refund for a refund;
    ``decline_code``: why not, when not.

    ``requires_action``: not approved yet, because the card's bank asks the cardholder to
    authenticate first (``decline_code`` says how it asked). ``client_secret`` (Stripe: the
    PaymentIntent's) and ``payment_method`` (the card to confirm it with again, when the bank
    declined the off-session attempt rather than leave it waiting) are what the cardholder's
    page needs for that. The secret is shown to the cardholder only: never logged or stored,
    and left out of ``repr``."""

    approved: bool
    reference: str
    decline_code: str = ""
    requires_action: bool = False
    client_secret: str = field(default="", repr=False)
    payment_method: str = ""


@dataclass(frozen=True, slots=True)
class GatewayRecord:
    """One operation as the gateway's own books have it, for reconciliation: ``operation`` is
    ``authorize``, ``capture``, ``void`` or ``refund``; ``order_id`` is the order the gateway
    keeps it under (None when it names none); ``approved`` whether it took effect; ``reference``
    the gateway's id of the authorization it belongs to."""

    operation: str
    order_id: int | None
    reference: str
    amount: Decimal
    currency: str
    approved: bool
    created_at: datetime


class GatewayError(Exception):
    """The gateway could not be reached or failed: the call may be retried with the same key."""


class PaymentGateway(abc.ABC):
    # The template the authentication page includes to run the bank's check (3-D Secure), with
    # ``order``, ``result`` (``authentication_status``'s, ``requires_action``) and ``form_id``
    # (the form to submit once the check is done, whatever its outcome) in its context.
    authentication_template: str = ""

    @abc.abstractmethod
    def authorize(
        self, *, token: str, amount: Decimal, currency: str, idempotency_key: str, order_id: int
    ) -> GatewayResult:
        """Place a hold of ``amount`` on the card behind ``token`` (merchant-initiated). The
        gateway keeps ``order_id`` and ``idempotency_key`` with the authorization (Stripe: in the
        PaymentIntent's metadata), so that support and ``authorization_lookup`` can find it."""

    @abc.abstractmethod
    def authorization_lookup(self, *, idempotency_key: str, order_id: int) -> GatewayResult | None:
        """What the gateway recorded for the authorization made with ``idempotency_key`` (for
        order ``order_id``), without creating anything: ``approved`` while it holds money on the
        card (the hold not voided), otherwise not approved with the reason; None when the gateway
        has no such authorization (the call never reached it). Raises ``GatewayError`` when the
        gateway cannot say now."""

    @abc.abstractmethod
    def authentication_status(self, *, reference: str) -> GatewayResult:
        """Where the authorization ``reference``, once waiting for the cardholder to
        authenticate, stands now, without changing it: ``approved`` when it holds money on the
        card (the cardholder authenticated and the bank authorized); ``requires_action`` (with
        the page's data) while it still waits for them; otherwise not approved with the reason
        (the authentication failed, or the authorization was cancelled). Raises
        ``GatewayError`` when the gateway cannot say now."""

    @abc.abstractmethod
    def capture(
        self, *, reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayResult:
        """Capture an authorization (when the label is bought)."""

    @abc.abstractmethod
    def void(self, *, reference: str, idempotency_key: str) -> GatewayResult:
        """Release an authorization (when a paid order is cancelled)."""

    @abc.abstractmethod
    def records(self, *, since: datetime) -> Iterator[GatewayRecord]:
        """Every operation the gateway recorded for authorizations made since ``since``, as its
        own books have them (``reconcile_payments`` compares them with the orders). Raises
        ``GatewayError`` when the gateway cannot be read now."""

    @abc.abstractmethod
    def refund(
        self,
        *,
        reference: str,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        order_id: int,
    ) -> GatewayResult:
        """Give ``amount`` back of the captured payment ``reference`` (the authorization's id),
        one refund per ``idempotency_key``: the same key answers the first call's result and
        gives nothing back again. The gateway keeps ``order_id`` and ``idempotency_key`` with
        the refund (Stripe: in its metadata), so that ``refund_lookup`` can find it. A refund
        the gateway refuses (more than is left of the capture, say) is ``approved=False`` with
        the reason; the result's ``reference`` is the refund's id at the gateway."""

    @abc.abstractmethod
    def refund_lookup(self, *, reference: str, idempotency_key: str) -> GatewayResult | None:
        """What the gateway recorded for the refund of payment ``reference`` made with
        ``idempotency_key``, without creating anything: as ``refund`` answered; None when the
        gateway has no such refund (the call never reached it). Raises ``GatewayError`` when
        the gateway cannot say now."""
