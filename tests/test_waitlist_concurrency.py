"""Waitlist promotion under concurrent releases on PostgreSQL (issue 13's acceptance): 50 units
come back from four worker processes at once, each promoting after its commit as the task
does; 50 distinct waitlisters, the first 50 in post order, get an order each, never one twice."""

import multiprocessing
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections
from django.db.models import Count
from django.utils import timezone

from catalog.models import Campaign
from devtools.bench_data import buyers_bulk_create, inbox_post
from orders.models import Order, OrderStatus, WaitlistEntry, WaitlistStatus
from orders.services import order_expire, posts_decide
from orders.services.waitlist import waitlist_promote
from social.models import Post
from tests.shop import BRAND, shop_open

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
WORKERS = 4
UNITS = 50
WAITING = 70


def promote_after_commit(*, campaign_ids: list[int]) -> None:
    """The promotion task's work, run in the releasing process right after its commit."""
    for campaign_id in campaign_ids:
        while waitlist_promote(campaign_id=campaign_id, now=timezone.now()).again:
            pass


def _release(mine: list[int], barrier: Any, failures: Any) -> None:
    """In a worker process: wait for the others, then expire this share of the orders (each
    release asks for a promotion after its commit)."""
    try:
        barrier.wait(timeout=60)
        for order_id in mine:
            if not order_expire(order_id=order_id, now=timezone.now(), reason="window closed"):
                failures.put(f"order {order_id} did not expire")
    except BaseException as exc:  # reported to the test below
        failures.put(repr(exc))
    finally:
        connections.close_all()


def _release_concurrently(order_ids: list[int]) -> list[str]:
    context = multiprocessing.get_context("fork")
    barrier, failures = context.Barrier(WORKERS), context.Queue()
    connections.close_all()  # a forked child must not share the parent's connection
    workers = [
        context.Process(target=_release, args=(order_ids[n::WORKERS], barrier, failures))
        for n in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    found = []
    while not failures.empty():
        found.append(failures.get())
    found += [f"exit {w.exitcode}" for w in workers if w.exitcode != 0]
    return found


def test_50_units_released_by_4_processes_at_once_promote_50_distinct_waitlisters(settings):
    settings.HASHCART = {
        **settings.HASHCART,
        "WAITLIST_PROMOTE_HANDLER": f"{__name__}.promote_after_commit",
    }
    shop = shop_open(stock=UNITS)
    now = timezone.now()
    buyers = buyers_bulk_create(prefix="w", count=UNITS + WAITING, now=now)
    Post.objects.bulk_create(
        [
            inbox_post(
                account=shop.account,
                post_id=str(8_000_000 + n),
                author_id=b.platform_user_id,
                handle=b.handle,
                text=f"@{BRAND} #BuyKindleFireHD",
                posted_at=now - timedelta(minutes=5) + timedelta(milliseconds=n),
            )
            for n, b in enumerate(buyers)
        ]
    )
    ids = list(Post.objects.order_by("posted_at").values_list("pk", flat=True))
    for start in range(0, len(ids), 40):
        posts_decide(post_ids=ids[start : start + 40], now=timezone.now())
    queue = list(
        WaitlistEntry.objects.filter(status=WaitlistStatus.WAITING)
        .order_by("posted_at", "post_id")
        .values_list("cardholder_id", flat=True)
    )
    assert len(queue) == WAITING
    first_orders = list(Order.objects.values_list("pk", flat=True))
    assert len(first_orders) == UNITS

    assert _release_concurrently(first_orders) == []

    promoted = WaitlistEntry.objects.filter(status=WaitlistStatus.PROMOTED)
    assert promoted.count() == UNITS
    assert promoted.values("cardholder").distinct().count() == UNITS
    assert set(promoted.values_list("cardholder_id", flat=True)) == set(queue[:UNITS])
    new_orders = Order.objects.exclude(pk__in=first_orders)
    assert new_orders.count() == UNITS
    assert set(new_orders.values_list("status", flat=True)) == {OrderStatus.PENDING}
    assert not new_orders.values("cardholder").annotate(n=Count("pk")).filter(n__gt=1).exists()
    assert set(new_orders.values_list("pk", flat=True)) == set(
        promoted.values_list("order_id", flat=True)
    )
    assert Campaign.objects.get(pk=shop.campaign.pk).stock_reserved == UNITS
    assert WaitlistEntry.objects.filter(status=WaitlistStatus.WAITING).count() == WAITING - UNITS
