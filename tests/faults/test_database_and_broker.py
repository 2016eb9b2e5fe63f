"""The database connection killed under a decision batch, and Redis restarted in the middle of
a sale: real Celery worker processes on PostgreSQL and a private Redis (issue 10 §6)."""

import pytest
from django.db import connection, transaction

from orders.models import Order, OrderStatus
from tests.faults.harness import (
    assert_nothing_lost_or_doubled,
    campaign_row_held,
    confirm_every_pending_order,
    everything_decided,
    status_now,
)
from tests.shop import BRAND, buyer_ready, post, shop_open
from tests.waiting import someone_waits_on_a_lock, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
BUY = f"@{BRAND} #BuyKindleFireHD"


def _terminate(backend_pids: list[int]) -> None:
    with connection.cursor() as cursor:
        for pid in backend_pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_a_decide_batch_whose_database_connection_is_killed_is_retried_and_decided_once(fleet):
    shop = shop_open(stock=3)
    for n in range(4):
        buyer_ready(f"buyer{n}")
    with campaign_row_held(shop.campaign.pk):
        with transaction.atomic():  # one poll reads them all: one batch
            for n in range(4):
                post(f"buyer{n}", BUY)
        wait_for(lambda: status_now().undecided_posts == 4, "the poll")
        first = wait_for(someone_waits_on_a_lock, "the decision to wait on the campaign row")
        _terminate(first)
        # The task fails with the connection, is retried on a new one, and waits again.
        wait_for(
            lambda: set(someone_waits_on_a_lock()) - set(first),
            "the retried decision on a new connection",
        )
        assert status_now().undecided_posts == 4  # the stall shows while it lasts

    wait_for(everything_decided, "every post to be decided")
    assert Order.objects.count() == 3
    confirm_every_pending_order(paid=3)
    assert_nothing_lost_or_doubled()


def test_redis_restarted_in_the_middle_of_a_sale_loses_no_post_and_doubles_nothing(
    fleet, private_redis
):
    shop_open(stock=4)
    handles = [f"buyer{n}" for n in range(6)]
    for handle in handles:
        buyer_ready(handle)
    for handle in handles[:3]:
        post(handle, BUY)
    wait_for(
        lambda: Order.objects.filter(expires_at__isnull=False).count() == 3,
        "the first three windows to open",
    )

    with fleet.supervised():
        private_redis.kill()  # every queued message is gone with it
        for order in Order.objects.filter(status=OrderStatus.PENDING):
            post(order.author_handle, f"@{BRAND} #Confirm{order.confirmation_code}")
        for handle in handles[3:]:
            post(handle, BUY)
        # Nothing reads the feed while the broker is down: its lag grows in the status.
        wait_for(
            lambda: (status_now().feeds[0].lag_seconds or 0) > 3,
            "the feed's lag to show",
            timeout=20,
        )
        private_redis.start()

        wait_for(
            lambda: Order.objects.filter(status=OrderStatus.PAID).count() == 3,
            "the confirmations posted during the outage to be paid",
        )
        confirm_every_pending_order(paid=4)
    assert Order.objects.count() == 4
    assert_nothing_lost_or_doubled()
