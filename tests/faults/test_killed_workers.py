"""SIGKILL a worker in the middle of its work: deciding a batch, sending a reply, authorizing a
card, giving money back (asked for by staff, or resolving a hijacked buyer's dispute). Real
Celery worker processes on PostgreSQL and a private Redis (issue 10 §6)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from catalog.models import Campaign
from fulfillment.services import label_buy
from orders.models import Dispute, DisputeStatus, Order, OrderStatus, PaymentOperation, Refund
from orders.services import order_refund
from orders.services.disputes import dispute_open, dispute_refund
from orders.tasks import payments_run_task
from sandbox.models import SandboxLedgerEntry
from social.models import Post, Reply, ReplyStatus
from tests.faults.harness import (
    assert_nothing_lost_or_doubled,
    campaign_row_held,
    confirm_every_pending_order,
    everything_decided,
    process_of_backend,
    status_now,
)
from tests.shop import BRAND, UNTAXED, buyer_ready, post, replies_to, shop_open
from tests.waiting import someone_waits_on_a_lock, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
BUY = f"@{BRAND} #BuyKindleFireHD"


def test_a_decide_worker_killed_mid_batch_loses_nothing_and_doubles_nothing(fleet):
    shop = shop_open(stock=3)
    buyers = [buyer_ready(f"buyer{n}") for n in range(5)]
    # The batch takes its posts' locks, then waits for the campaign's, in the middle of its work.
    with campaign_row_held(shop.campaign.pk):
        with transaction.atomic():  # one poll reads them all: one batch, one node
            for buyer in buyers:
                post(buyer.handle, BUY)
            post("stranger", BUY)
            post("buyer0", f"@{BRAND} love it #Kindle")
        wait_for(lambda: Post.objects.count() == 7, "the poll")
        waiting = wait_for(someone_waits_on_a_lock, "the decision to wait on the campaign row")
        # The stall shows while it lasts: the buyers' posts wait in the batch. (The stranger's
        # and the hashtag-less post need no campaign; a run once saw them decided apart.)
        purchases = Post.objects.filter(
            author_handle__in=[b.handle for b in buyers], text=BUY, outcome=""
        )
        assert purchases.count() == 5
        assert status_now().undecided_posts >= 5
        # The whole node dies: its message comes back (acks late), the recovery sweep runs.
        fleet.kill_node_of(process_of_backend(waiting[0]))

    wait_for(everything_decided, "every post to be decided")
    # One outcome per post (buyer0 posted twice: a dict by handle would keep one of the two).
    outcomes = list(Post.objects.values_list("outcome", flat=True))
    assert sorted(outcomes).count("order_created") == 3
    confirm_every_pending_order(paid=3)
    assert_nothing_lost_or_doubled()
    assert Campaign.objects.get(pk=shop.campaign.pk).stock_reserved == 3


def _hold_alices_request_and_kill_its_sender(fleet) -> None:
    fleet.arm("send")
    post("alice", BUY)
    holder = wait_for(lambda: fleet.holder("send"), "a sender to hold alice's request")
    # The platform has the reply, Hashcart has not recorded it: the status shows it unsent.
    assert len(replies_to("alice")) == 1
    status = status_now()
    assert status.replies_queued == {"confirmation_request": 1}
    assert status.orders_awaiting_reply == 1
    claimed_until = Reply.objects.get(status=ReplyStatus.SENDING).claimed_until
    assert claimed_until is not None
    fleet.kill_process(holder)  # its node gives the message back at once: nothing to reclaim yet
    # Waited for by the clock: the recovery sweep may take the lapsed claim back at once, so the
    # row itself shows "sending with a lapsed claim" only for a moment.
    wait_for(lambda: timezone.now() > claimed_until, "the dead sender's claim to lapse")


def test_a_sender_killed_mid_send_while_the_sale_goes_on_posts_each_reply_once(fleet):
    shop_open(stock=5)
    buyer_ready("alice")
    buyer_ready("bob")
    _hold_alices_request_and_kill_its_sender(fleet)

    post("bob", BUY)  # the account queues more, and its sender takes the lapsed claim back
    confirm_every_pending_order(paid=2)

    assert len([text for text in replies_to("alice") if "#Confirm" in text]) == 1
    assert_nothing_lost_or_doubled()


def test_a_sender_killed_mid_send_strands_no_order_when_nothing_else_is_queued(fleet):
    shop = shop_open(stock=5)
    buyer_ready("alice")
    _hold_alices_request_and_kill_its_sender(fleet)

    # Taken back and posted once (its window opens), or given up and its unit released.
    wait_for(
        lambda: (
            not Order.objects.filter(status=OrderStatus.PENDING, expires_at__isnull=True).exists()
        ),
        "alice's order to leave the stuck state",
        timeout=20,
    )
    assert len(replies_to("alice")) == 1
    assert_nothing_lost_or_doubled()  # none held past the give-up time, among the rest
    assert Campaign.objects.get(pk=shop.campaign.pk).stock_reserved in (0, 1)


def test_a_payment_worker_killed_mid_authorization_charges_once(fleet):
    shop_open(stock=5)
    buyer_ready("alice")
    post("alice", BUY)
    order = wait_for(
        lambda: Order.objects.filter(expires_at__isnull=False).first(), "alice's window to open"
    )
    fleet.arm("authorize")
    post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    holder = wait_for(lambda: fleet.holder("authorize"), "the authorization to be in flight")
    # The gateway holds the money; Hashcart does not know yet, and says so.
    assert SandboxLedgerEntry.objects.filter(operation="authorize").count() == 1
    assert status_now().payments_pending == 1
    fleet.kill_process(holder)

    # The dead worker's claim lapses after HASHCART["OUTBOX"]["payments"]["lease_seconds"] (two
    # minutes): fast-forwarded here, the rest is the sweep's own doing.
    PaymentOperation.objects.filter(status="processing").update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    wait_for(
        lambda: Order.objects.filter(pk=order.pk, status=OrderStatus.PAID).exists(),
        "the order to be paid",
    )
    entry = SandboxLedgerEntry.objects.get(operation="authorize")
    assert entry.calls == 1  # looked up by its key after the crash (item 17), never re-sent
    assert Reply.objects.filter(kind="paid").count() == 1
    assert_nothing_lost_or_doubled()


def test_a_payment_worker_killed_mid_refund_gives_the_money_back_once(fleet):
    shop_open(stock=5)
    buyer_ready("alice")
    post("alice", BUY)
    order = wait_for(
        lambda: Order.objects.filter(expires_at__isnull=False).first(), "alice's window to open"
    )
    post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    wait_for(
        lambda: Order.objects.filter(pk=order.pk, status=OrderStatus.PAID).exists(),
        "the order to be paid",
    )
    assert label_buy(shipment_id=order.shipment.pk).status == "bought"  # ships and captures
    fleet.arm("refund")
    order_refund(
        order_id=order.pk,
        amount=Decimal("49.00"),
        reason="scratched",
        restock=False,
        now=timezone.now(),
        actor_label="staff",
    )
    payments_run_task.delay()
    payments_run_task.delay()  # the task twice: one of them claims it, the other finds it held
    holder = wait_for(lambda: fleet.holder("refund"), "the refund to be in flight")
    # The money went back; Hashcart does not know yet, and says so.
    assert SandboxLedgerEntry.objects.filter(operation="refund").count() == 1
    assert status_now().payments_pending == 1
    fleet.kill_process(holder)

    # The dead worker's claim lapses after two minutes: fast-forwarded, the rest is the sweep's.
    PaymentOperation.objects.filter(status="processing").update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    wait_for(
        lambda: Order.objects.filter(pk=order.pk, status=OrderStatus.PARTIALLY_REFUNDED).exists(),
        "the order to be partially refunded",
    )
    entry = SandboxLedgerEntry.objects.get(operation="refund")
    assert (entry.amount, entry.calls) == (Decimal("49.00"), 1)  # looked up, never re-sent
    assert Refund.objects.get().status == "succeeded"
    assert Order.objects.get(pk=order.pk).refunded_total == Decimal("49.00")
    assert_nothing_lost_or_doubled()


def test_a_payment_worker_killed_mid_dispute_refund_gives_the_money_back_once(fleet):
    """The hijack scenario's refund (issue 12): "Not me" after shipping opens a case, staff
    refund without return; the refund task runs twice and its worker dies mid-call."""
    shop_open(stock=5)
    buyer_ready("alice", address=UNTAXED)
    post("alice", BUY)
    order = wait_for(
        lambda: Order.objects.filter(expires_at__isnull=False).first(), "alice's window to open"
    )
    post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    wait_for(
        lambda: Order.objects.filter(pk=order.pk, status=OrderStatus.PAID).exists(),
        "the order to be paid",
    )
    assert label_buy(shipment_id=order.shipment.pk).status == "bought"  # ships and captures
    dispute = dispute_open(order_id=order.pk, now=timezone.now())  # the victim's "Not me"
    assert dispute is not None
    fleet.arm("refund")
    resolved = dispute_refund(
        dispute_id=dispute.pk, note="", now=timezone.now(), actor_label="staff"
    )
    assert resolved.refund is not None
    payments_run_task.delay()
    payments_run_task.delay()  # the task twice: one of them claims it, the other finds it held
    holder = wait_for(lambda: fleet.holder("refund"), "the refund to be in flight")
    assert SandboxLedgerEntry.objects.filter(operation="refund").count() == 1
    fleet.kill_process(holder)

    PaymentOperation.objects.filter(status="processing").update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    wait_for(
        lambda: Order.objects.filter(pk=order.pk, status=OrderStatus.REFUNDED).exists(),
        "the order to be refunded",
    )
    entry = SandboxLedgerEntry.objects.get(operation="refund")
    assert (entry.amount, entry.calls) == (Decimal("149.00"), 1)  # looked up, never re-sent
    assert Refund.objects.get().status == "succeeded"
    assert Dispute.objects.get(pk=dispute.pk).status == DisputeStatus.RESOLVED_REFUND
    assert Order.objects.get(pk=order.pk).refunded_total == Decimal("149.00")
    assert_nothing_lost_or_doubled()
