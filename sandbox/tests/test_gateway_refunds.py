"""The sandbox gateway's refunds: booked per key, never more than the capture (issue 12)."""

from decimal import Decimal

import pytest

from sandbox.gateway import SandboxGateway
from sandbox.models import SandboxLedgerEntry

pytestmark = pytest.mark.django_db


def _captured(gateway: SandboxGateway, amount: str = "149.00") -> str:
    held = gateway.authorize(
        token="tok_ok", amount=Decimal(amount), currency="USD", idempotency_key="o1-a", order_id=1
    )
    gateway.capture(
        reference=held.reference, amount=Decimal(amount), currency="USD", idempotency_key="o1-c"
    )
    return held.reference


def _refund(gateway: SandboxGateway, reference: str, amount: str, key: str):
    return gateway.refund(
        reference=reference,
        amount=Decimal(amount),
        currency="USD",
        idempotency_key=key,
        order_id=1,
    )


def test_a_refund_is_booked_once_per_key_and_answers_the_same_again():
    gateway = SandboxGateway()
    reference = _captured(gateway)
    first = _refund(gateway, reference, "49.00", "o1-r1")
    again = _refund(gateway, reference, "49.00", "o1-r1")
    assert first == again
    assert first.approved
    assert first.reference.startswith("sbx_re_")
    entry = SandboxLedgerEntry.objects.get(operation="refund")
    assert (entry.amount, entry.calls, entry.reference) == (Decimal("49.00"), 2, reference)
    assert gateway.refund_lookup(reference=reference, idempotency_key="o1-r1") == first
    assert gateway.refund_lookup(reference=reference, idempotency_key="o1-r9") is None


def test_refunds_beyond_the_capture_are_refused():
    gateway = SandboxGateway()
    reference = _captured(gateway)
    assert _refund(gateway, reference, "100.00", "o1-r1").approved
    refused = _refund(gateway, reference, "49.01", "o1-r2")
    assert (refused.approved, refused.decline_code) == (False, "amount_too_large")
    assert _refund(gateway, reference, "49.00", "o1-r3").approved
    assert not _refund(gateway, reference, "0.01", "o1-r4").approved


def test_a_refund_of_nothing_captured_is_refused():
    gateway = SandboxGateway()
    held = gateway.authorize(
        token="tok_ok", amount=Decimal("5"), currency="USD", idempotency_key="o2-a", order_id=2
    )
    refused = _refund(gateway, held.reference, "5.00", "o2-r1")
    assert (refused.approved, refused.decline_code) == (False, "not_captured")
