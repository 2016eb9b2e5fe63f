"""End to end on the real things: PostgreSQL, a Redis broker and Celery worker processes with
beat, driving the sandbox network exactly as a buyer would (DESIGN §3)."""

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
import redis
from django.db import transaction
from django.test import Client
from django.urls import reverse

from accounts.services import staff_user_upsert
from catalog.models import Campaign
from fulfillment.business_days import add_business_days
from fulfillment.services import label_buy, shipment_track
from orders.models import Order, OrderStatus, Return, ReturnStatus
from sandbox.carrier import sandbox_signature
from sandbox.models import SandboxLabel, SandboxLedgerEntry
from social.models import Post, Reply
from tests.mfa import totp_enable
from tests.shop import BRAND, UNTAXED, buyer_ready, code_in, post, replies_to, shop_open
from tests.waiting import someone_waits_on_a_lock, wait_for
from tests.workers import celery_workers

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
BUY = f"@{BRAND} #BuyKindleFireHD"
TEST_REDIS_DB = 15


@pytest.fixture
def worker(redis_url, tmp_path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start Celery worker processes (with beat) on the test database and a private Redis db."""
    broker = redis_url.rsplit("/", 1)[0] + f"/{TEST_REDIS_DB}"
    redis.Redis.from_url(broker).flushdb()
    env = {
        "HASHCART_CONFIRMATION_WINDOW_MINUTES": "0.1",  # six seconds
        # The carriers' sweep (outbound tracking; return labels and their tracking): often.
        "HASHCART_TRACK_INTERVAL_SECONDS": "1",
    }
    with celery_workers(broker=broker, tmp_path=tmp_path, env=env) as start:
        yield start


def _reply_code(handle: str) -> str:
    texts = wait_for(lambda: replies_to(handle), f"a reply to @{handle}")
    return code_in(texts[0])


def test_a_buyer_buys_by_post_and_another_lets_the_order_lapse(worker):
    shop = shop_open(stock=5)
    buyer_ready("alice")
    buyer_ready("bob")
    worker()

    post("alice", BUY)
    post("bob", BUY)
    alice_code = _reply_code("alice")
    _reply_code("bob")
    post("alice", f"@{BRAND} #Confirm{alice_code}")

    alice_order = wait_for(
        lambda: Order.objects.filter(author_handle="alice", status=OrderStatus.PAID).first(),
        "alice's order to be paid",
    )
    shipment = alice_order.shipment
    assert shipment.promised_delivery == add_business_days(shipment.ship_by, 2)
    assert wait_for(lambda: any("Thanks!" in t for t in replies_to("alice")), "the receipt reply")

    bob_order = wait_for(
        lambda: Order.objects.filter(author_handle="bob", status=OrderStatus.EXPIRED).first(),
        "bob's order to expire",
        timeout=90,
    )
    assert bob_order.expires_at is not None
    assert Campaign.objects.get(pk=shop.campaign.pk).stock_reserved == 1  # alice's unit only


def test_a_worker_killed_in_the_middle_of_a_batch_loses_nothing_and_doubles_nothing(worker):
    shop = shop_open(stock=5)
    buyer_ready("alice")
    purchase = post("alice", BUY)
    with transaction.atomic():
        # Hold the campaign row: the worker's decision will block on it, mid-transaction.
        Campaign.objects.select_for_update().get(pk=shop.campaign.pk)
        doomed = worker()
        wait_for(lambda: Post.objects.filter(post_id=str(purchase.pk)).exists(), "the poll")
        wait_for(someone_waits_on_a_lock, "the decision to block on the campaign row")
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=20)
    worker()  # a fresh worker; the message comes back and the recovery sweep runs

    code = _reply_code("alice")
    post("alice", f"@{BRAND} #Confirm{code}")
    wait_for(lambda: Order.objects.filter(status=OrderStatus.PAID).exists(), "payment")
    time.sleep(3)  # let any duplicate delivery or sweep run its course

    assert Order.objects.count() == 1
    assert (
        Reply.objects.filter(
            in_reply_to__post_id=str(purchase.pk), kind="confirmation_request"
        ).count()
        == 1
    )
    assert len([t for t in replies_to("alice") if "#Confirm" in t]) == 1
    assert SandboxLedgerEntry.objects.filter(operation="authorize").count() == 1
    assert Campaign.objects.get(pk=shop.campaign.pk).stock_reserved == 1


def test_a_delivered_order_is_returned_and_refunded_once_with_its_unit_back(worker, settings):
    """Issue 12's first Acceptance bullet: buy, confirm, ship, deliver, ask for a return,
    approve, the return delivered back (the sandbox carrier), refunded once, the unit back; every
    step e-mailed (sent by the worker) and in the audit log. The worker decides, pays, sends the
    e-mails, buys the return label (its carriers' sweep) and runs payments; this process plays
    the buyer, the staff, and the carrier's later reports (its clock is 33 hours on)."""
    shop = shop_open(stock=5)
    alice = buyer_ready("alice", address=UNTAXED)
    worker()

    post("alice", BUY)
    post("alice", f"@{BRAND} #Confirm{_reply_code('alice')}")
    order = wait_for(
        lambda: Order.objects.filter(author_handle="alice", status=OrderStatus.PAID).first(),
        "alice's order to be paid",
    )
    assert label_buy(shipment_id=order.shipment.pk).status == "bought"  # ships, captures
    bought_at = SandboxLabel.objects.get(for_return=False).bought_at
    assert shipment_track(shipment_id=order.shipment.pk, now=bought_at + timedelta(hours=33)) == (
        "delivered"
    )
    assert Campaign.objects.get(pk=shop.campaign.pk).stock_reserved == 1

    buyer = Client()
    buyer.force_login(alice.cardholder.user)
    buyer.post(reverse("orders:cardholder_return_request"), {"order": order.pk, "reason": "Broken"})
    returned = Return.objects.get(order=order)
    staff = staff_user_upsert(
        username="staff", email="staff@example.com", password="pw", merchant_id=order.merchant_id
    )
    totp_enable(staff)
    admin = Client()
    admin.force_login(staff)
    approve = reverse("admin:orders_return_act", args=[returned.pk, "approve"])
    assert admin.post(approve, {"note": "Sorry", "restock": "on"}).status_code == 302

    # The worker's carriers' sweep buys the return label.
    returned = wait_for(
        lambda: Return.objects.filter(pk=returned.pk, status=ReturnStatus.LABEL_BOUGHT).first(),
        "the return label to be bought",
    )
    # The carrier pushes the delivery back to its webhook.
    settings.HASHCART = {**settings.HASHCART, "CARRIER_WEBHOOK_SECRET": "carrier-secret"}
    body = json.dumps(
        {
            "reference": returned.carrier_reference,
            "tracking_number": returned.tracking_number,
            "status": "delivered",
            "occurred_at": (returned.label_bought_at + timedelta(hours=32)).isoformat(),
        }
    ).encode()
    pushed = Client().post(
        reverse("fulfillment:carrier_webhook", args=["sandbox"]),
        body,
        content_type="application/json",
        headers={"X-Hashcart-Signature": sandbox_signature(body, "carrier-secret")},
    )
    assert pushed.status_code == 200
    wait_for(
        lambda: Return.objects.filter(pk=returned.pk, status=ReturnStatus.REFUNDED).exists(),
        "the return to be refunded",
    )
    order.refresh_from_db()
    assert (order.status, order.refunded_total) == (OrderStatus.REFUNDED, Decimal("149.00"))
    [refund] = SandboxLedgerEntry.objects.filter(operation="refund")
    assert (refund.amount, refund.calls, refund.approved) == (Decimal("149.00"), 1, True)
    assert Campaign.objects.get(pk=shop.campaign.pk).stock_reserved == 0  # the unit is back

    steps = ["confirmed", "paid", "shipped", "delivered", "return_requested", "return_approved",
             "return_label_bought", "return_received", "refund_requested", "refunded",
             "return_refunded"]  # fmt: skip
    kinds = list(order.events.order_by("id").values_list("kind", flat=True))
    assert [kind for kind in kinds if kind in steps] == steps
    mailed = ["paid", "shipped", "return_requested", "return_approved", "return_label_bought",
              "return_received", "refunded"]  # fmt: skip
    wait_for(
        lambda: (
            set(mailed)
            <= set(order.notifications.filter(status="done").values_list("kind", flat=True))
        ),
        "every step's e-mail to be sent",
    )
    assert order.notifications.filter(kind="refunded").count() == 1
