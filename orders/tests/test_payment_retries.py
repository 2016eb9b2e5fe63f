"""Payments never give up silently (issue 10, item 17): a lost answer is looked up before anything
is decided, captures and voids outlast a gateway incident, and what fails for good is loud."""

import json
import logging
from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from fulfillment.services.labels import order_mark_shipped
from orders.models import Order, OrderStatus, PaymentOperation
from orders.payments.base import GatewayError
from orders.pipeline import stage_decide, stage_payments, stage_poll
from orders.services import order_cancel
from sandbox.gateway import SandboxGateway
from sandbox.models import SandboxLedgerEntry
from social.models import FeedCursor, FeedKind
from tests.shop import BRAND, buyer_ready, post, shop_open, tick

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 1, 15, 0, tzinfo=ZoneInfo("UTC"))
GATEWAY = f"{__name__}.FlakyGateway"


class FlakyGateway(SandboxGateway):
    """The sandbox gateway, with faults set by the test: answers lost after the gateway acted,
    an outage until a (travelled) time, refused captures."""

    lose_authorize_answers = 0
    down_until: datetime | None = None
    refuse_captures = False

    @classmethod
    def reset(cls) -> None:
        cls.lose_authorize_answers, cls.down_until, cls.refuse_captures = 0, None, False

    def _up(self) -> None:
        if self.down_until is not None and timezone.now() < self.down_until:
            raise GatewayError("connection timed out")

    def authorize(self, **kwargs):
        self._up()
        result = super().authorize(**kwargs)
        if FlakyGateway.lose_authorize_answers:
            FlakyGateway.lose_authorize_answers -= 1
            raise GatewayError("read timed out")  # the hold is placed; the answer never arrives
        return result

    def authorization_lookup(self, **kwargs):
        self._up()
        return super().authorization_lookup(**kwargs)

    def capture(self, **kwargs):
        self._up()
        if FlakyGateway.refuse_captures:
            from orders.payments.base import GatewayResult

            return GatewayResult(
                approved=False, reference=kwargs["reference"], decline_code="expired"
            )
        return super().capture(**kwargs)

    def void(self, **kwargs):
        self._up()
        return super().void(**kwargs)


@pytest.fixture(autouse=True)
def flaky(settings):
    FlakyGateway.reset()
    settings.HASHCART = {**settings.HASHCART, "PAYMENT_GATEWAY": GATEWAY}
    yield FlakyGateway
    FlakyGateway.reset()


def _confirmed_order() -> Order:
    shop_open()
    buyer_ready("alice")
    post("alice", f"@{BRAND} #BuyKindleFireHD")
    tick()
    order = Order.objects.get()
    post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    stage_poll(now=timezone.now())
    stage_decide(now=timezone.now())  # confirmed; the authorization waits in the outbox
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED
    return order


def _op(order: Order, operation: str) -> PaymentOperation:
    return PaymentOperation.objects.get(order=order, operation=operation)


def _holds() -> set[str]:
    """References of authorizations that still hold money on a card in the sandbox ledger."""
    approved = set(
        SandboxLedgerEntry.objects.filter(operation="authorize", approved=True).values_list(
            "reference", flat=True
        )
    )
    released = set(
        SandboxLedgerEntry.objects.filter(operation__in=["void", "capture"]).values_list(
            "reference", flat=True
        )
    )
    return approved - released


# --- An authorization whose answer was lost ---------------------------------------------------
def test_a_lost_authorization_answer_is_looked_up_and_the_order_paid_without_a_second_call(
    flaky,
):
    with time_machine.travel(T0, tick=False):
        order = _confirmed_order()
        flaky.lose_authorize_answers = 1
        assert stage_payments(now=T0)["pending"] == 1
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        stage_payments(now=timezone.now())
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    ledger = SandboxLedgerEntry.objects.get(operation="authorize")
    assert ledger.calls == 1  # found by its key, not sent again
    assert order.payment_reference == ledger.reference
    assert _op(order, "authorize").result == "approved"


def test_an_order_cancelled_while_its_authorization_answer_was_lost_leaves_no_hold(flaky):
    with time_machine.travel(T0, tick=False):
        order = _confirmed_order()
        flaky.lose_authorize_answers = 1
        stage_payments(now=T0)  # the hold is placed, the answer lost
        assert order_cancel(
            order_id=order.pk, now=T0, actor_label="test", reason="buyer", pause_purchasing=False
        )
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        stage_payments(now=timezone.now())  # finds the hold and queues its void
        stage_payments(now=timezone.now())  # voids it
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert _op(order, "void").status == "done"
    assert _holds() == set()


def test_an_authorization_lost_in_an_outage_declines_the_order_and_its_hold_is_voided_later(
    flaky, settings, mailoutbox
):
    retry_minutes = (
        settings.HASHCART["OUTBOX"]["payments"]["give_up_after_seconds"]["authorize"] / 60
    )
    with time_machine.travel(T0, tick=False):
        order = _confirmed_order()
        flaky.lose_authorize_answers = 1  # the hold is placed, then the gateway goes down
        stage_payments(now=T0)
    flaky.down_until = T0 + timedelta(minutes=retry_minutes + 30)
    moment = T0
    while moment < T0 + timedelta(minutes=retry_minutes + 60):
        moment += timedelta(minutes=1)
        with time_machine.travel(moment, tick=False):
            stage_payments(now=moment)
            order.refresh_from_db()
            if moment < T0 + timedelta(minutes=retry_minutes):
                assert order.status == OrderStatus.CONFIRMED  # the buyer waits, retries go on
    assert order.status == OrderStatus.DECLINED
    assert _op(order, "authorize").status == "failed"
    declined = order.notifications.get(kind="declined")
    # A hold may exist (the answer was lost): the buyer is not told "nothing was charged".
    assert "nothing was charged" not in declined.body
    assert "releasing" in declined.body
    void = _op(order, "void")
    assert (void.status, void.result) == ("done", "approved")
    assert _holds() == set()  # the hold found by its key after the outage, and released


# --- Captures outlast an incident ---------------------------------------------------------------
def _shipped_order(flaky) -> Order:
    order = _confirmed_order()
    stage_payments(now=timezone.now())
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    return order


def test_a_capture_succeeds_after_a_twenty_minute_gateway_outage(flaky):
    with time_machine.travel(T0, tick=False):
        order = _shipped_order(flaky)
        flaky.down_until = T0 + timedelta(minutes=20)
        order_mark_shipped(order=order, carrier="sandbox", tracking_number="1Z999", actor="test")
    assert _op(order, "capture").status == "pending"
    moment = T0
    while moment < T0 + timedelta(hours=3):
        # The beat sweeps every few seconds: every retry runs as soon as it is due.
        moment += (
            timedelta(seconds=5) if moment < T0 + timedelta(minutes=40) else timedelta(minutes=1)
        )
        with time_machine.travel(moment, tick=False):
            stage_payments(now=moment)
    capture = _op(order, "capture")
    assert (capture.status, capture.result) == ("done", "approved")
    assert SandboxLedgerEntry.objects.filter(operation="capture").count() == 1


def test_a_capture_keeps_retrying_for_hours_within_the_hold_and_then_fails_loudly(
    flaky, settings, caplog
):
    hold = settings.HASHCART["OUTBOX"]["payments"]["give_up_after_seconds"]["capture"] / 3600
    with time_machine.travel(T0, tick=False):
        order = _shipped_order(flaky)
        flaky.down_until = T0 + timedelta(days=30)
        order_mark_shipped(order=order, carrier="sandbox", tracking_number="1Z999", actor="test")
    for hours in (1, 6, 24, hold - 1):
        with time_machine.travel(T0 + timedelta(hours=hours), tick=False):
            stage_payments(now=timezone.now())
        assert _op(order, "capture").status == "pending"
    with caplog.at_level(logging.ERROR), time_machine.travel(T0 + timedelta(hours=hold)):
        stage_payments(now=timezone.now())
    capture = _op(order, "capture")
    assert capture.status == "failed"
    assert f"payment operation {capture.pk} (capture of order {order.pk}" in caplog.text


# --- What fails is visible and retried by ops ---------------------------------------------------
def _failed_capture(flaky) -> tuple[Order, PaymentOperation]:
    order = _shipped_order(flaky)
    flaky.refuse_captures = True
    order_mark_shipped(order=order, carrier="sandbox", tracking_number="1Z999", actor="test")
    capture = _op(order, "capture")
    assert capture.status == "failed"
    return order, capture


def test_a_failed_capture_is_logged_counted_in_pipeline_status_and_makes_healthz_unhealthy(
    flaky, caplog
):
    with caplog.at_level(logging.ERROR):
        order, capture = _failed_capture(flaky)
    assert f"payment operation {capture.pk} (capture of order {order.pk}" in caplog.text
    assert order.events.filter(kind="capture_failed").exists()

    out = StringIO()
    call_command("pipeline_status", stdout=out)
    assert "payment operations failed: 1" in out.getvalue()
    assert f"#{capture.pk} capture of order {order.pk}" in out.getvalue()

    shop_account = Order.objects.get().purchase_post.account
    FeedCursor.objects.update_or_create(
        account=shop_account, feed=FeedKind.MENTIONS, defaults={"polled_at": timezone.now()}
    )
    response = Client().get("/healthz", {"format": "json"})
    assert response.status_code == 500
    assert f"#{capture.pk} capture of order {order.pk}" in json.dumps(response.json())


def test_retry_payments_dry_run_changes_nothing(flaky):
    _, capture = _failed_capture(flaky)
    flaky.refuse_captures = False
    out = StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("retry_payments", "--dry-run", stdout=out)
    assert exit_.value.code == 1
    assert f"would retry: #{capture.pk} capture" in out.getvalue()
    after = PaymentOperation.objects.get(pk=capture.pk)
    assert (after.status, after.attempts) == ("failed", capture.attempts)
    assert not SandboxLedgerEntry.objects.filter(operation="capture").exists()


def test_retry_payments_captures_once_the_gateway_takes_it_and_exits_zero(flaky):
    order, _ = _failed_capture(flaky)
    flaky.refuse_captures = False
    out = StringIO()
    call_command("retry_payments", stdout=out)  # no SystemExit: nothing is left failed
    assert "1 done" in out.getvalue()
    assert _op(order, "capture").status == "done"
    assert SandboxLedgerEntry.objects.filter(operation="capture").count() == 1
    flaky.refuse_captures = True
    call_command("retry_payments", stdout=StringIO())  # nothing failed: nothing sent
    assert SandboxLedgerEntry.objects.filter(operation="capture").count() == 1


def test_retry_payments_exits_one_while_an_operation_still_fails(flaky):
    _failed_capture(flaky)
    with pytest.raises(SystemExit) as exit_:
        call_command("retry_payments", stdout=StringIO(), stderr=StringIO())
    assert exit_.value.code == 1


def test_a_failed_operation_settled_by_hand_is_abandoned_with_a_reason_and_health_recovers(flaky):
    order, capture = _failed_capture(flaky)
    with pytest.raises(CommandError):
        call_command("retry_payments", f"--abandon={capture.pk}", stdout=StringIO())
    call_command(
        "retry_payments", f"--abandon={capture.pk}", "--reason=charged by phone", stdout=StringIO()
    )
    assert (_op(order, "capture").status, _op(order, "capture").result) == ("done", "abandoned")
    assert order.events.get(kind="payment_abandoned").data["reason"] == "charged by phone"
    out = StringIO()
    call_command("pipeline_status", stdout=out)
    assert "payment operations failed: 0" in out.getvalue()
