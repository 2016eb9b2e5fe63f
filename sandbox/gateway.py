"""The sandbox gateway: approves or declines by test token, keeps books in the database.

Test tokens: a token containing ``decline`` is declined (``card_declined``); one starting with
``tok_sandbox_3ds_`` asks the cardholder to authenticate (3-D Secure: ``requires_action``); any
other token is approved. The sandbox card vault (the linking page) issues tokens of each kind for
its test card numbers. A repeated idempotency key returns the first result and only counts the
call.

An authorization waiting for the cardholder is a ledger entry, not approved, with the decline
code ``requires_action``; the sandbox's stand-in for the bank's check (``sandbox_authenticate``,
behind the authentication page's buttons) approves it or fails it (``authentication_failed``)
in place, once, unless it was voided first. The "client secret" the page gets is the reference
and a keyed hash of it, so the stand-in takes only what the page was given.

Refunds are entries of their own (``operation="refund"``, ``reference`` the authorization's, so
the books show what each charge gave back); one that would give back more than the capture less
the refunds already approved is refused (``amount_too_large``), as is one of nothing captured
(``not_captured``). A refund's own id is derived from its key.
"""

import hashlib
import hmac
import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum

from orders.payments.base import GatewayRecord, GatewayResult, PaymentGateway
from sandbox.models import SandboxLedgerEntry

# The payment outbox's keys: ``order-<id>-<operation>`` (and more after it for refunds).
_ORDER_OF_KEY = re.compile(r"^order-(\d+)-")
# The tokens (``sandbox.vault``) of the test card whose bank always asks to authenticate.
AUTHENTICATE_PREFIX = "tok_sandbox_3ds_"
# The decline code of an authorization waiting for the cardholder, and of one they failed.
WAITING = "requires_action"
FAILED = "authentication_failed"


def client_secret(reference: str) -> str:
    """The sandbox's "client secret" of an authorization waiting for the cardholder."""
    mac = hmac.new(settings.SECRET_KEY.encode(), reference.encode(), hashlib.sha256)
    return f"{reference}_secret_{mac.hexdigest()[:24]}"


def reference_of(secret: str) -> str | None:
    """The reference a client secret (``client_secret``) names, or None for a forged one."""
    reference, _, _ = secret.partition("_secret_")
    return reference if hmac.compare_digest(client_secret(reference), secret) else None


def _voided(reference: str) -> bool:
    return SandboxLedgerEntry.objects.filter(
        operation="void", reference=reference, approved=True
    ).exists()


def _result(entry: SandboxLedgerEntry) -> GatewayResult:
    if entry.operation == "authorize" and entry.decline_code == WAITING:
        return GatewayResult(
            approved=False,
            reference=entry.reference,
            decline_code=WAITING,
            requires_action=True,
            client_secret=client_secret(entry.reference),
        )
    return GatewayResult(
        approved=entry.approved, reference=entry.reference, decline_code=entry.decline_code
    )


def _record(
    *,
    key: str,
    operation: str,
    token: str,
    amount: Decimal,
    currency: str,
    approved: bool,
    reference: str,
    decline_code: str = "",
) -> GatewayResult:
    try:
        with transaction.atomic():
            entry = SandboxLedgerEntry.objects.create(
                idempotency_key=key,
                operation=operation,
                token=token,
                amount=amount,
                currency=currency,
                approved=approved,
                reference=reference,
                decline_code=decline_code,
            )
    except IntegrityError:
        SandboxLedgerEntry.objects.filter(idempotency_key=key).update(calls=F("calls") + 1)
        entry = SandboxLedgerEntry.objects.get(idempotency_key=key)
    return _result(entry)


def sandbox_authenticate(*, secret: str, passed: bool) -> str:
    """The bank's check, as the sandbox plays it (the authentication page's buttons): the
    authorization that ``secret`` names is approved (``passed``) or fails. Once: returns
    ``approved`` or ``failed`` for the call that decided it, ``decided`` when it was no longer
    waiting (decided before, or voided), ``unknown`` for a forged secret."""
    reference = reference_of(secret)
    if reference is None:
        return "unknown"
    with transaction.atomic():
        if _voided(reference):  # cancelled at the gateway: nothing left to authenticate
            return "decided"
        changed = SandboxLedgerEntry.objects.filter(
            operation="authorize", reference=reference, decline_code=WAITING
        ).update(approved=passed, decline_code="" if passed else FAILED)
    if not changed:
        return (
            "decided"
            if SandboxLedgerEntry.objects.filter(reference=reference).exists()
            else ("unknown")
        )
    return "approved" if passed else "failed"


def _refund_id(idempotency_key: str) -> str:
    return "sbx_re_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]


class SandboxGateway(PaymentGateway):
    authentication_template = "sandbox/_authenticate.html"

    def authorize(
        self, *, token: str, amount: Decimal, currency: str, idempotency_key: str, order_id: int
    ) -> GatewayResult:
        waits = token.startswith(AUTHENTICATE_PREFIX)
        approved = "decline" not in token and not waits
        reference = "sbx_auth_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]
        return _record(
            key=idempotency_key,
            operation="authorize",
            token=token,
            amount=amount,
            currency=currency,
            approved=approved,
            reference=reference,
            decline_code=WAITING if waits else "" if approved else "card_declined",
        )

    def authorization_lookup(self, *, idempotency_key: str, order_id: int) -> GatewayResult | None:
        entry = SandboxLedgerEntry.objects.filter(
            idempotency_key=idempotency_key, operation="authorize"
        ).first()
        if entry is None:
            return None
        return self._state(entry)

    def _state(self, entry: SandboxLedgerEntry) -> GatewayResult:
        """A hold, or a wait for the cardholder, ends with a void."""
        if (entry.approved or entry.decline_code == WAITING) and _voided(entry.reference):
            return GatewayResult(approved=False, reference=entry.reference, decline_code="voided")
        return _result(entry)

    def authentication_status(self, *, reference: str) -> GatewayResult:
        entry = SandboxLedgerEntry.objects.filter(
            operation="authorize", reference=reference
        ).first()
        if entry is None:
            return GatewayResult(approved=False, reference=reference, decline_code="unknown")
        return self._state(entry)

    def capture(
        self, *, reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayResult:
        return _record(
            key=idempotency_key,
            operation="capture",
            token="",
            amount=amount,
            currency=currency,
            approved=True,
            reference=reference,
        )

    def void(self, *, reference: str, idempotency_key: str) -> GatewayResult:
        return _record(
            key=idempotency_key,
            operation="void",
            token="",
            amount=Decimal("0"),
            currency="",
            approved=True,
            reference=reference,
        )

    def records(self, *, since: datetime) -> Iterator[GatewayRecord]:
        """The ledger's authorizations since ``since`` and every later entry on them. The
        sandbox keeps no order id: it is read from the idempotency key, as support would."""
        authorizations = SandboxLedgerEntry.objects.filter(
            operation="authorize", created_at__gte=since
        )
        entries = SandboxLedgerEntry.objects.filter(
            Q(pk__in=authorizations.values("pk"))
            | Q(reference__in=authorizations.filter(approved=True).values("reference"))
        ).order_by("created_at", "pk")
        for entry in entries.iterator():
            found = _ORDER_OF_KEY.match(entry.idempotency_key)
            yield GatewayRecord(
                operation=entry.operation,
                order_id=int(found.group(1)) if found else None,
                reference=entry.reference,
                amount=entry.amount,
                currency=entry.currency,
                approved=entry.approved,
                created_at=entry.created_at,
            )

    def refund(
        self,
        *,
        reference: str,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        order_id: int,
    ) -> GatewayResult:
        with transaction.atomic():
            # The capture's row, locked: two refunds of one charge are checked one at a time.
            capture = (
                SandboxLedgerEntry.objects.select_for_update()
                .filter(operation="capture", reference=reference, approved=True)
                .first()
            )
            refunded = SandboxLedgerEntry.objects.filter(
                operation="refund", reference=reference, approved=True
            ).aggregate(total=Sum("amount"))["total"] or Decimal("0")
            code = ""
            if capture is None:
                code = "not_captured"
            elif refunded + amount > capture.amount:
                code = "amount_too_large"
            result = _record(
                key=idempotency_key,
                operation="refund",
                token="",
                amount=amount,
                currency=currency,
                approved=not code,
                reference=reference,
                decline_code=code,
            )
        return GatewayResult(
            approved=result.approved,
            reference=_refund_id(idempotency_key),
            decline_code=result.decline_code,
        )

    def refund_lookup(self, *, reference: str, idempotency_key: str) -> GatewayResult | None:
        entry = SandboxLedgerEntry.objects.filter(
            idempotency_key=idempotency_key, operation="refund", reference=reference
        ).first()
        if entry is None:
            return None
        return GatewayResult(
            approved=entry.approved,
            reference=_refund_id(idempotency_key),
            decline_code=entry.decline_code,
        )
