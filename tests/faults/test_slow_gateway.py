"""A payment gateway that times out for twenty minutes, then recovers: real Celery worker
processes on PostgreSQL and a private Redis (issue 10 §6)."""

import time
from datetime import timedelta
from functools import partial

import pytest
from django.utils import timezone

from fulfillment.services import label_buy
from orders.models import Order, OrderStatus, PaymentOperation
from sandbox.models import SandboxLedgerEntry
from tests.faults.harness import assert_nothing_lost_or_doubled, status_now
from tests.shop import BRAND, buyer_ready, post, shop_open
from tests.waiting import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
OUTAGE = timedelta(minutes=20)
WORKER_GATEWAY = "tests.faults.shims.FaultySandboxGateway"


def _attempted(operation: PaymentOperation) -> bool:
    return not PaymentOperation.objects.filter(
        pk=operation.pk, status="pending", attempts=operation.attempts
    ).exists()


def _fast_forward_retries(until: timedelta) -> timedelta:
    """Play the retry schedule as if time passed: each time the operation waits for its next
    attempt, bring the attempt forward, and count the time skipped. Returns the time played."""
    played = timedelta(0)
    deadline = timezone.now() + timedelta(seconds=40)
    while played < until and timezone.now() < deadline:
        waiting = PaymentOperation.objects.filter(
            status="pending", next_attempt_at__gt=timezone.now()
        ).first()
        if waiting is None:
            if not PaymentOperation.objects.filter(status__in=["pending", "processing"]).exists():
                break  # given up (or done): nothing left to retry
            time.sleep(0.1)  # an attempt is running
            continue
        now = timezone.now()
        assert waiting.next_attempt_at is not None
        played += waiting.next_attempt_at - now
        PaymentOperation.objects.filter(pk=waiting.pk, status="pending").update(
            next_attempt_at=now - timedelta(seconds=1)
        )
        # The next attempt is made by the workers' own payment sweep.
        wait_for(partial(_attempted, waiting), "the next attempt", timeout=20)
    return played


def test_a_gateway_that_times_out_for_twenty_minutes_then_recovers_holds_no_money_unpaid(fleet):
    shop_open(stock=5)
    buyer_ready("alice")
    post("alice", f"@{BRAND} #BuyKindleFireHD")
    order = wait_for(
        lambda: Order.objects.filter(expires_at__isnull=False).first(), "alice's window to open"
    )
    fleet.gateway("lost")
    post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    wait_for(
        lambda: PaymentOperation.objects.filter(attempts__gte=1).exists(),
        "the first authorization attempt to time out",
    )
    assert status_now().payments_pending == 1  # the outage shows while it lasts

    _fast_forward_retries(OUTAGE)
    fleet.gateway(None)
    _fast_forward_retries(timedelta(hours=1))
    wait_for(
        lambda: (
            not Order.objects.filter(status=OrderStatus.CONFIRMED).exists()
            and not PaymentOperation.objects.filter(status__in=["pending", "processing"]).exists()
        ),
        "the authorization to be settled",
    )
    assert_nothing_lost_or_doubled()


def test_a_gateway_down_for_twenty_minutes_when_a_label_is_bought_still_captures_once(
    fleet, settings, monkeypatch
):
    shop_open(stock=5)
    buyer_ready("alice")
    post("alice", f"@{BRAND} #BuyKindleFireHD")
    order = wait_for(
        lambda: Order.objects.filter(expires_at__isnull=False).first(), "alice's window to open"
    )
    post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    order = wait_for(
        lambda: Order.objects.filter(pk=order.pk, status=OrderStatus.PAID).first(), "payment"
    )
    fleet.gateway("down")
    # The label is bought here, and the capture tried at once: through the same shim.
    settings.HASHCART = {**settings.HASHCART, "PAYMENT_GATEWAY": WORKER_GATEWAY}
    monkeypatch.setenv("HASHCART_FAULTS_DIR", str(fleet.faults_dir))
    assert label_buy(shipment_id=order.shipment.pk).status == "bought"  # shipped: capture now
    wait_for(
        lambda: PaymentOperation.objects.filter(operation="capture", attempts__gte=1).exists(),
        "the first capture attempt to time out",
    )
    assert status_now().payments_pending == 1  # the outage shows while it lasts

    _fast_forward_retries(OUTAGE)
    fleet.gateway(None)
    _fast_forward_retries(timedelta(hours=1))
    wait_for(
        lambda: not PaymentOperation.objects.filter(status__in=["pending", "processing"]).exists(),
        "the capture to be settled",
    )
    captured = SandboxLedgerEntry.objects.filter(operation="capture", approved=True)
    assert list(captured.values_list("reference", flat=True)) == [order.payment_reference]
    assert_nothing_lost_or_doubled()
