"""The sandbox gateway: approves or declines by test token, keeps books in the database.

Test tokens: a token containing ``decline`` is declined (``card_declined``); any other token is
approved. The sandbox card vault (the linking page) issues tokens of both kinds for its test card
numbers. A repeated idempotency key returns the first result and only counts the call.

Refunds are entries of their own (``operation="refund"``, ``reference`` the authorization's, so
the books show what each charge gave back); one that would give back more than the capture less
the refunds already approved is refused (``amount_too_large``), as is one of nothing captured
(``not_captured``). A refund's own id is derived from its key.
"""

import hashlib
import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum

from orders.payments.base import GatewayRecord, GatewayResult, PaymentGateway
from sandbox.models import SandboxLedgerEntry

# The payment outbox's keys: ``order-<id>-<operation>`` (and more after it for refunds).
_ORDER_OF_KEY = re.compile(r"^order-(\d+)-")


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
    return GatewayResult(
        approved=entry.approved, reference=entry.reference, decline_code=entry.decline_code
    )


def _refund_id(idempotency_key: str) -> str:
    return "sbx_re_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]


class SandboxGateway(PaymentGateway):
    def authorize(
        self, *, token: str, amount: Decimal, currency: str, idempotency_key: str, order_id: int
    ) -> GatewayResult:
        approved = "decline" not in token
        reference = "sbx_auth_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]
        return _record(
            key=idempotency_key,
            operation="authorize",
            token=token,
            amount=amount,
            currency=currency,
            approved=approved,
            reference=reference,
            decline_code="" if approved else "card_declined",
        )

    def authorization_lookup(self, *, idempotency_key: str, order_id: int) -> GatewayResult | None:
        entry = SandboxLedgerEntry.objects.filter(
            idempotency_key=idempotency_key, operation="authorize"
        ).first()
        if entry is None:
            return None
        if (
            entry.approved
            and SandboxLedgerEntry.objects.filter(
                operation="void", reference=entry.reference, approved=True
            ).exists()
        ):
            return GatewayResult(approved=False, reference=entry.reference, decline_code="voided")
        return GatewayResult(
            approved=entry.approved, reference=entry.reference, decline_code=entry.decline_code
        )

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
