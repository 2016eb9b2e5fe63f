"""The contract of a payment gateway (DESIGN §5.5, §6).

Every call carries an idempotency key derived from the order and the operation; presenting the
same key again must return the first call's result without moving money again. Calls are made
outside any database transaction. Amounts are ``Decimal`` in the currency's major unit.

An answer can be lost (a timeout after the gateway acted): the caller then asks
``authorization_lookup`` what the gateway recorded under the authorization's key before it decides
anything else (DESIGN §5.5), so that a hold is never left on a card whose order was declined.
A refund whose answer was lost is looked up the same way (``refund_lookup``), so that money is
never given back twice.
"""

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class GatewayResult:
    """``approved``: the operation succeeded; ``reference``: the gateway's id of the
    authorization (the same for its capture and void), or of the refund for a refund;
    ``decline_code``: why not, when not."""

    approved: bool
    reference: str
    decline_code: str = ""


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
