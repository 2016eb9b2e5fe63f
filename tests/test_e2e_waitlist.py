"""The waitlist end to end (issue 13's acceptance), on PostgreSQL with Celery worker processes
and beat (``tests.test_e2e_pipeline``'s worker, on this run's own Redis database): 10 units, 30
buyers; 10 orders and 20 waitlisted in post order; 3 orders lapse, and the promotion tasks give
their units to the next 3 waitlisters, who confirm and pay."""

import pytest

from orders.models import Order, OrderStatus, WaitlistEntry, WaitlistStatus
from tests import test_e2e_pipeline as e2e
from tests.shop import BRAND, buyer_ready, code_in, post, replies_to, shop_open
from tests.waiting import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
BUY = f"@{BRAND} #BuyKindleFireHD"
worker = e2e.worker  # the e2e tests' worker fixture, used here too


@pytest.fixture
def own_broker(monkeypatch, redis_url):
    """The worker's broker on this run's Redis database, not the shared e2e one."""
    monkeypatch.setattr(e2e, "TEST_REDIS_DB", int(redis_url.rsplit("/", 1)[1] or 0))


def _confirm(handle: str) -> None:
    """Post the confirmation of the latest request to ``handle``."""
    requests = wait_for(
        lambda: [t for t in replies_to(handle) if "#Confirm" in t], f"a request to @{handle}"
    )
    post(handle, f"@{BRAND} #Confirm{code_in(requests[-1])}")


def _paid(handles: list[str]) -> bool:
    return Order.objects.filter(author_handle__in=handles, status=OrderStatus.PAID).count() == len(
        handles
    )


def test_three_lapsed_orders_go_to_the_next_three_waitlisters_who_confirm(own_broker, worker):
    shop = shop_open(stock=10)
    handles = [f"buyer{n:02d}" for n in range(30)]
    for handle in handles:
        buyer_ready(handle)
    worker()

    for handle in handles:
        post(handle, BUY)
    wait_for(
        lambda: WaitlistEntry.objects.filter(campaign=shop.campaign).count() == 20,
        "20 waitlisted",
    )
    first = sorted(Order.objects.values_list("author_handle", flat=True))
    assert first == handles[:10]
    queue = (
        WaitlistEntry.objects.filter(status=WaitlistStatus.WAITING)
        .order_by("posted_at", "post_id")
        .values_list("post__author_handle", flat=True)
    )
    assert list(queue) == handles[10:]

    for handle in handles[3:10]:  # the first three let theirs lapse
        _confirm(handle)
    wait_for(lambda: _paid(handles[3:10]), "seven orders paid")
    wait_for(
        lambda: (
            Order.objects.filter(author_handle__in=handles[:3], status=OrderStatus.EXPIRED).count()
            == 3
        ),
        "three orders to lapse",
        timeout=90,
    )
    for handle in handles[10:13]:
        _confirm(handle)
    wait_for(lambda: _paid(handles[10:13]), "the three promoted orders paid", timeout=90)

    assert list(queue.all()) == handles[13:]  # read again (the first read is cached)
    assert not Order.objects.filter(author_handle__in=handles[13:]).exists()
    shop.campaign.refresh_from_db()
    assert shop.campaign.stock_reserved == 10
    promoted = WaitlistEntry.objects.filter(status=WaitlistStatus.PROMOTED)
    assert sorted(promoted.values_list("post__author_handle", flat=True)) == handles[10:13]
