"""Variant and quantity in the post, end to end: PostgreSQL, Redis and a Celery worker process
with beat, the buyers posting on the sandbox network (issue 13, acceptance)."""

import subprocess
from collections.abc import Callable, Iterator

import pytest
import redis

from accounts.services.preferences import option_preferences_set
from catalog.models import Campaign
from orders.models import Order, OrderStatus
from social.models import Post
from tests.shop import BRAND, UNTAXED, buyer_ready, code_in, post, replies_to
from tests.variants import TEE, tee_shop
from tests.waiting import wait_for
from tests.workers import celery_workers

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(redis_url, tmp_path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start a Celery worker (with beat) on the test database and the test's own Redis db
    (``REDIS_URL``'s, flushed first), with the default confirmation window."""
    redis.Redis.from_url(redis_url).flushdb()
    with celery_workers(broker=redis_url, tmp_path=tmp_path, env={}) as start:
        yield start


def _outcome(handle: str) -> str:
    return Post.objects.filter(author_handle=handle).latest("id").outcome


def test_size_and_quantity_by_post_a_saved_size_and_an_ambiguous_post(worker):
    tees = tee_shop({"S": 5, "M": 5, "L": 5}, per_buyer_limit=3)
    buyer_ready("alice", address=UNTAXED)
    bob = buyer_ready("bob")
    buyer_ready("carol")
    option_preferences_set(cardholder=bob.cardholder, preferences={"Size": "L"})
    worker()

    post("alice", f"@{BRAND} #{TEE} 2 M")
    post("bob", f"@{BRAND} #{TEE} please")
    post("carol", f"@{BRAND} #{TEE}")
    for handle in ("alice", "bob", "carol"):
        wait_for(lambda h=handle: replies_to(h), f"a reply to @{handle}")

    # `#BuyTeeShirt 2 M` reserves two units of M.
    alice_order = Order.objects.get(cardholder__user__email="alice@example.com")
    assert (alice_order.quantity, alice_order.variant) == (2, tees.variants["M"])
    assert tees.stock("M").stock_reserved == 2
    # A missing size uses the saved preference.
    bob_order = Order.objects.get(cardholder=bob.cardholder)
    assert (bob_order.quantity, bob_order.variant) == (1, tees.variants["L"])
    assert tees.stock("L").stock_reserved == 1
    # An ambiguous post gets the choices and reserves nothing.
    assert _outcome("carol") == "variant_needed"
    assert not Order.objects.filter(cardholder__user__email="carol@example.com").exists()
    assert "Size: S, M, L" in replies_to("carol")[0]
    assert tees.stock("S").stock_reserved == 0
    assert Campaign.objects.get().stock_reserved == 3

    # Alice confirms and pays for two.
    post("alice", f"@{BRAND} #Confirm{code_in(replies_to('alice')[0])}")
    paid = wait_for(
        lambda: Order.objects.filter(pk=alice_order.pk, status=OrderStatus.PAID).first(),
        "alice's order paid",
    )
    assert paid.total == 2 * paid.unit_price
