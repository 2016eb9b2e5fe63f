"""End to end on the real things: PostgreSQL, a Redis broker and Celery worker processes with
beat, driving the sandbox network exactly as a buyer would (DESIGN §3)."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.db import connection, transaction

from catalog.models import Campaign
from fulfillment.business_days import add_business_days
from orders.models import Order, OrderStatus
from sandbox.models import SandboxLedgerEntry
from social.models import Post, Reply
from tests.shop import BRAND, buyer_ready, code_in, post, replies_to, shop_open
from tests.waiting import someone_waits_on_a_lock, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent
BUY = f"@{BRAND} #BuyKindleFireHD"
TEST_REDIS_DB = 15


@pytest.fixture
def worker(redis_url, tmp_path) -> Iterator[Callable[[], subprocess.Popen]]:
    """Start Celery worker processes (with beat) on the test database and a private Redis db."""
    broker = redis_url.rsplit("/", 1)[0] + f"/{TEST_REDIS_DB}"
    redis.Redis.from_url(broker).flushdb()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": broker,
        "HASHCART_POLL_INTERVAL_SECONDS": "0.3",
        "HASHCART_SWEEP_INTERVAL_SECONDS": "0.5",
        "HASHCART_RECOVER_INTERVAL_SECONDS": "2",
        "HASHCART_CONFIRMATION_WINDOW_MINUTES": "0.1",  # six seconds
        "CELERY_VISIBILITY_TIMEOUT": "5",
    }
    started: list[subprocess.Popen] = []
    logs = []

    def start() -> subprocess.Popen:
        logs.append((tmp_path / f"worker-{len(started)}.log").open("w"))
        process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-B",
                "-c",
                "2",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=WARNING",
                "-s",
                str(tmp_path / f"beat-{len(started)}"),
            ],
            cwd=ROOT,
            env=env,
            stdout=logs[-1],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)
    for log in logs:
        log.close()
    connection.close()


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
