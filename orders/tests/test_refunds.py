"""Refunds (issue 12, items 1 and 4): money back on a captured order through the payment outbox,
in full or in part, never twice and never more than was captured (DESIGN §3.4, §5.5)."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import Campaign
from core.exceptions import ApplicationError
from fulfillment.services import label_buy, shipment_track
from orders.health import payment_failures
from orders.models import Order, OrderEvent, OrderStatus, PaymentOperation, Refund, RefundStatus
from orders.payments.base import GatewayError, GatewayResult
from orders.pipeline import stage_payments, stage_send
from orders.selectors import pipeline_status
from orders.services import order_cancel, order_refund, payment_operation_run
from sandbox.gateway import SandboxGateway
from sandbox.models import SandboxLabel, SandboxLedgerEntry
from tests.shop import UNTAXED, order_paid, order_shipped, shop_open

pytestmark = pytest.mark.django_db

GATEWAY = f"{__name__}.LosingGateway"


class LosingGateway(SandboxGateway):
    """The sandbox gateway, losing the answers of the next ``lose`` refunds after giving the
    money back (a timeout, a worker killed mid-call), or refusing every refund (``refuse``)."""

    lose = 0
    refuse = False

    def refund(self, **kwargs):
        if LosingGateway.refuse:
            return GatewayResult(approved=False, reference="", decline_code="charge_disputed")
        result = super().refund(**kwargs)
        if LosingGateway.lose:
            LosingGateway.lose -= 1
            raise GatewayError("read timed out")  # the money went back; the answer did not
        return result


@pytest.fixture
def losing(settings):
    LosingGateway.lose, LosingGateway.refuse = 0, False
    settings.HASHCART = {**settings.HASHCART, "PAYMENT_GATEWAY": GATEWAY}
    yield LosingGateway
    LosingGateway.lose, LosingGateway.refuse = 0, False


def _refund(order: Order, amount: str, *, restock: bool = False, reason: str = "damaged"):
    return order_refund(
        order_id=order.pk,
        amount=Decimal(amount),
        reason=reason,
        restock=restock,
        now=timezone.now(),
        actor_label="staff",
    )


def _ledger_refunds() -> list[tuple[Decimal, int, bool]]:
    return [
        (e.amount, e.calls, e.approved)
        for e in SandboxLedgerEntry.objects.filter(operation="refund").order_by("id")
    ]


def _refund_emails() -> list:
    return [m for m in mail.outbox if m.subject.startswith("Refund")]


def _reserved(campaign: Campaign) -> int:
    campaign.refresh_from_db()
    return campaign.stock_reserved


def test_a_partial_then_the_rest_refunds_the_order_with_ledger_audit_and_emails():
    shop = shop_open()
    order = order_shipped(address=UNTAXED)
    first = _refund(order, "49.00")
    assert (first.status, first.idempotency_key) == (
        RefundStatus.REQUESTED,
        f"order-{order.pk}-refund-1",
    )
    stage_send(now=timezone.now())  # payments, then e-mails
    order.refresh_from_db()
    first.refresh_from_db()
    assert order.status == OrderStatus.PARTIALLY_REFUNDED
    assert (order.refunded_total, order.refund_requested_total) == (Decimal("49.00"),) * 2
    assert first.status == RefundStatus.SUCCEEDED
    assert first.reference.startswith("sbx_re_")
    assert _ledger_refunds() == [(Decimal("49.00"), 1, True)]
    (email,) = _refund_emails()
    assert "$49.00" in email.subject
    assert "$49.00" in email.body
    assert "ending in 4242" in email.body
    assert "In all $49.00 of $149.00 is refunded" in email.body

    rest = _refund(order, "100.00")
    stage_send(now=timezone.now())
    order.refresh_from_db()
    rest.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert order.refunded_total == order.total == Decimal("149.00")
    assert rest.idempotency_key == f"order-{order.pk}-refund-2"
    assert _ledger_refunds() == [(Decimal("49.00"), 1, True), (Decimal("100.00"), 1, True)]
    assert "$100.00" in _refund_emails()[1].body
    assert "refunded in full" in _refund_emails()[1].body
    kinds = list(
        OrderEvent.objects.filter(order=order, kind__contains="refund")
        .order_by("id")
        .values_list("kind", "from_status", "to_status", "actor_label")
    )
    assert kinds == [
        ("refund_requested", "", "", "staff"),
        ("partially_refunded", "shipped", "partially_refunded", "pipeline"),
        ("refund_requested", "", "", "staff"),
        ("refunded", "partially_refunded", "refunded", "pipeline"),
    ]
    requested = OrderEvent.objects.filter(order=order, kind="refund_requested").first()
    assert requested.data["reason"] == "damaged"
    assert requested.data["amount"] == "49.00"
    # The unit stays sold: nobody said the goods came back.
    assert _reserved(shop.campaign) == 1


def test_a_refund_above_what_is_left_is_refused_and_reserves_nothing():
    shop_open()
    order = order_shipped(address=UNTAXED)
    _refund(order, "100.00")
    with pytest.raises(ApplicationError, match=r"at most \$49.00"):
        _refund(order, "49.01")
    order.refresh_from_db()
    assert order.refund_requested_total == Decimal("100.00")
    assert Refund.objects.count() == 1
    assert PaymentOperation.objects.filter(operation="refund").count() == 1


@pytest.mark.parametrize("amount", ["0", "-1", "0.001", "NaN"])
def test_a_refund_of_no_money_or_fractions_of_a_cent_is_refused(amount):
    shop_open()
    order = order_shipped(address=UNTAXED)
    with pytest.raises(ApplicationError):
        _refund(order, amount)
    assert not Refund.objects.exists()


def test_only_captured_orders_are_refunded_and_cancelling_a_paid_one_still_voids():
    shop_open()
    order = order_paid(address=UNTAXED)
    with pytest.raises(ApplicationError, match="only a shipped, delivered"):
        _refund(order, "10.00")
    assert order_cancel(
        order_id=order.pk, now=timezone.now(), actor_label="staff", reason="merchant"
    )
    stage_payments(now=timezone.now())
    assert PaymentOperation.objects.get(order=order, operation="void").status == "done"
    assert SandboxLedgerEntry.objects.filter(operation="void").count() == 1
    with pytest.raises(ApplicationError):
        _refund(order, "10.00")


def test_the_database_refuses_refunds_above_the_total_whatever_the_writer():
    shop_open()
    order = order_shipped(address=UNTAXED)
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(refund_requested_total=Decimal("149.01"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(refunded_total=Decimal("1.00"))  # > requested


def test_restock_gives_the_unit_back_once_however_many_refunds_say_so():
    shop = shop_open()
    order = order_shipped(address=UNTAXED)
    assert _reserved(shop.campaign) == 1
    _refund(order, "10.00", restock=True)
    assert _reserved(shop.campaign) == 0
    _refund(order, "10.00", restock=True)
    assert _reserved(shop.campaign) == 0
    order.refresh_from_db()
    assert order.restocked_at is not None
    stage_payments(now=timezone.now())
    assert _reserved(shop.campaign) == 0
    restocked = OrderEvent.objects.filter(kind="refund_requested").values_list(
        "data__restocked", flat=True
    )
    assert sorted(restocked) == [False, True]


def test_the_refund_task_run_twice_gives_the_money_back_once():
    shop_open()
    order = order_shipped(address=UNTAXED)
    refund = _refund(order, "149.00")
    op = refund.operation
    assert payment_operation_run(operation_id=op.pk, now=timezone.now()) == "done"
    assert payment_operation_run(operation_id=op.pk, now=timezone.now()) == "busy"
    stage_payments(now=timezone.now())
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert order.refunded_total == Decimal("149.00")
    assert _ledger_refunds() == [(Decimal("149.00"), 1, True)]
    assert order.notifications.filter(kind="refunded").count() == 1


def test_a_lost_refund_answer_is_looked_up_and_the_money_given_back_once(losing):
    shop_open()
    order = order_shipped(address=UNTAXED)
    refund = _refund(order, "30.00")
    losing.lose = 1
    now = timezone.now()
    assert stage_payments(now=now)["pending"] == 1  # the money went back, the answer was lost
    refund.refresh_from_db()
    assert refund.status == RefundStatus.PROCESSING
    with time_machine.travel(now + timedelta(minutes=1), tick=False):
        assert stage_payments(now=timezone.now())["done"] == 1
    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert _ledger_refunds() == [(Decimal("30.00"), 1, True)]  # found by its key, not sent again
    assert order.refunded_total == Decimal("30.00")


def test_a_worker_killed_mid_call_leaves_a_claim_that_lapses_and_is_looked_up(losing):
    """The worker called the gateway and died before recording anything: its claim lapses, and
    the next worker looks the refund up by its key instead of giving the money back again."""
    shop_open()
    order = order_shipped(address=UNTAXED)
    refund = _refund(order, "30.00")
    op = refund.operation
    now = timezone.now()
    # What the dead worker did: claimed the operation (an attempt counted), and the gateway
    # gave the money back under the refund's key.
    PaymentOperation.objects.filter(pk=op.pk).update(
        status="processing", attempts=1, claimed_until=now + timedelta(seconds=120)
    )
    SandboxGateway().refund(
        reference=order.payment_reference,
        amount=Decimal("30.00"),
        currency="USD",
        idempotency_key=op.idempotency_key,
        order_id=order.pk,
    )
    assert stage_payments(now=now) == {}  # still claimed
    with time_machine.travel(now + timedelta(minutes=3), tick=False):
        assert stage_payments(now=timezone.now())["done"] == 1
    order.refresh_from_db()
    assert order.refunded_total == Decimal("30.00")
    assert _ledger_refunds() == [(Decimal("30.00"), 1, True)]


def test_a_refused_refund_fails_loudly_and_retry_payments_runs_it_again(losing, caplog):
    shop_open()
    order = order_shipped(address=UNTAXED)
    refund = _refund(order, "149.00")
    losing.refuse = True
    assert stage_payments(now=timezone.now())["failed"] == 1
    refund.refresh_from_db()
    assert refund.status == RefundStatus.FAILED
    assert OrderEvent.objects.filter(order=order, kind="refund_failed").exists()
    assert any(
        "refund of order" in r.getMessage() for r in caplog.records if r.levelname == "ERROR"
    )
    status = pipeline_status(now=timezone.now())
    assert [(f.operation, f.order_id) for f in status.payments_failed] == [("refund", order.pk)]
    health = payment_failures()
    assert not health.ok
    assert "refund of order" in health.detail
    # Its amount stays reserved while it may still be retried.
    with pytest.raises(ApplicationError):
        _refund(order, "1.00")
    losing.refuse = False
    call_command("retry_payments", stdout=StringIO())  # exit status 0: nothing failed is left
    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert order.status == OrderStatus.REFUNDED
    assert payment_failures().ok


def test_a_refund_waits_for_the_capture():
    shop_open()
    order = order_paid(address=UNTAXED)
    assert label_buy(shipment_id=order.shipment.pk).status == "bought"
    capture = PaymentOperation.objects.get(order=order, operation="capture")
    # The label's own capture call has not run (as if the gateway was down).
    PaymentOperation.objects.filter(pk=capture.pk).update(status="pending")
    SandboxLedgerEntry.objects.filter(operation="capture").delete()
    refund = _refund(order, "10.00")
    op = refund.operation
    assert payment_operation_run(operation_id=op.pk, now=timezone.now()) == "pending"
    assert not SandboxLedgerEntry.objects.filter(operation="refund").exists()
    later = timezone.now() + timedelta(minutes=5)
    with time_machine.travel(later, tick=False):
        stage_payments(now=timezone.now())  # the capture, then the refund
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert _ledger_refunds() == [(Decimal("10.00"), 1, True)]


def test_an_order_refunded_in_part_on_its_way_keeps_its_status_when_delivered():
    shop_open()
    order = order_shipped(address=UNTAXED)
    _refund(order, "20.00")
    stage_payments(now=timezone.now())
    bought_at = SandboxLabel.objects.get().bought_at
    assert shipment_track(shipment_id=order.shipment.pk, now=bought_at + timedelta(hours=33)) == (
        "delivered"
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.PARTIALLY_REFUNDED
    delivered = OrderEvent.objects.get(order=order, kind="delivered")
    assert (delivered.from_status, delivered.to_status) == ("partially_refunded",) * 2
    # Still refundable after delivery: the rest.
    _refund(order, "129.00")
    stage_payments(now=timezone.now())
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED


def test_a_delivered_order_is_refunded_in_full_at_once():
    shop_open()
    order = order_shipped(address=UNTAXED)
    bought_at = SandboxLabel.objects.get().bought_at
    shipment_track(shipment_id=order.shipment.pk, now=bought_at + timedelta(hours=33))
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    _refund(order, "149.00")
    stage_payments(now=timezone.now())
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    event = OrderEvent.objects.get(order=order, kind="refunded")
    assert (event.from_status, event.to_status) == ("delivered", "refunded")
