"""Purchases of a sold-out campaign are decided without its lock (issue 11, item 3).

A flash sale sells out in its first batches; every later batch only answers "sold out" (now
"waitlisted": the waitlist is joined by one bulk insert, issue 13). Those batches read the
stock as committed and lock neither the campaign nor the buyers' controls, so two deciders
run side by side instead of queueing on one row. A campaign with stock left is
still sold from under its lock: the second test shows that the lock held here is one the
decider would wait for.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from accounts.models import PurchaseControls
from catalog.models import Campaign
from orders.models import Order
from orders.pipeline import stage_poll
from orders.services import posts_decide
from social.models import Post
from tests.shop import BRAND, buyer_ready, post, shop_open, tick

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@contextmanager
def _rows_locked_elsewhere(campaign: Campaign, cardholder_ids: list[int]) -> Iterator[None]:
    """Hold the campaign's row and these buyers' controls ``FOR UPDATE`` on another connection
    for the duration of the block."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Campaign.objects.select_for_update().get(pk=campaign.pk)
                list(
                    PurchaseControls.objects.select_for_update().filter(
                        cardholder_id__in=cardholder_ids
                    )
                )
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(timeout=10), "the other connection could not take the locks"
        yield
    finally:
        release.set()
        holder.join(timeout=30)


def _decide_waiting_at_most_a_second() -> dict[str, int]:
    undecided = list(Post.objects.filter(outcome="").values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '1s'")  # any lock waited for fails the decision
    try:
        return dict(posts_decide(post_ids=undecided, now=timezone.now()))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")


@pytest.fixture
def one_second_lock_timeout(settings):
    settings.HASHCART = {**settings.HASHCART, "LOCK_TIMEOUT_SECONDS": 1}


def test_a_sold_out_campaigns_purchases_are_decided_while_its_row_is_locked(
    one_second_lock_timeout,
):
    shop = shop_open(stock=1)
    first, *late = (buyer_ready(f"buyer{n}") for n in range(3))
    post(first.handle, f"@{BRAND} #BuyKindleFireHD")
    tick()
    assert Order.objects.filter(cardholder=first.cardholder).exists()
    for buyer in late:
        post(buyer.handle, f"@{BRAND} #BuyKindleFireHD")
    stage_poll(now=timezone.now())

    with _rows_locked_elsewhere(shop.campaign, [b.cardholder.pk for b in late]):
        outcomes = _decide_waiting_at_most_a_second()

    assert outcomes == {"waitlisted": 2}
    shop.campaign.refresh_from_db()
    assert shop.campaign.stock_reserved == 1


def test_a_campaign_with_stock_left_is_sold_only_under_its_lock(one_second_lock_timeout):
    shop = shop_open(stock=2)
    buyer = buyer_ready("buyer")
    post(buyer.handle, f"@{BRAND} #BuyKindleFireHD")
    stage_poll(now=timezone.now())

    with _rows_locked_elsewhere(shop.campaign, []), pytest.raises(OperationalError):
        _decide_waiting_at_most_a_second()

    assert not Order.objects.exists()
    assert _decide_waiting_at_most_a_second() == {"order_created": 1}
