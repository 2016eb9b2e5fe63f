"""A confirmation and a lockdown at the same moment, on PostgreSQL: one wins cleanly.

Either the confirmation is decided first and the pause then cancels the confirmed order before
its authorization is sent, or the pause commits first and the confirmation finds nothing to
confirm. In every case the unit is released once and the gateway is never asked to charge.
"""

import threading
from collections.abc import Callable

import pytest
from django.utils import timezone

from accounts import services as account_services
from catalog.models import Campaign
from orders.models import Order, OrderStatus, PaymentOperation
from orders.pipeline import stage_decide, stage_payments, stage_poll
from orders.services import posts_decide
from orders.services.decide import confirmations
from sandbox.models import SandboxLedgerEntry
from social.models import Post
from tests.shop import BRAND, Buyer, buyer_ready, post, shop_open, tick
from tests.waiting import OtherConnection, in_another_connection, someone_waits_on_a_lock, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _pending(buyer: Buyer, hashtag: str = "BuyKindleFireHD") -> Order:
    post(buyer.handle, f"@{BRAND} #{hashtag}")
    tick()
    order = Order.objects.filter(cardholder=buyer.cardholder).latest("id")
    assert order.status == OrderStatus.PENDING
    return order


def _pause(buyer: Buyer) -> Callable[[], None]:
    return lambda: account_services.purchasing_set_paused(
        cardholder=buyer.cardholder, paused=True, now=timezone.now()
    )


def _settled(order: Order, campaign: Campaign) -> None:
    stage_payments(now=timezone.now())
    stage_payments(now=timezone.now())
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.events.filter(kind="cancelled").count() == 1
    assert Campaign.objects.get(pk=campaign.pk).stock_reserved == 0
    assert not SandboxLedgerEntry.objects.filter(operation="authorize").exists()


def test_a_pause_that_waits_for_a_confirmation_cancels_the_confirmed_order(monkeypatch):
    shop = shop_open()
    alice = buyer_ready("alice")
    order = _pending(alice)
    confirmation = post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    stage_poll(now=timezone.now())
    original = confirmations.decide_confirmations
    pauses: list[OtherConnection] = []

    def pause_while_confirming(batch, confirmations, orders):
        # The decider holds the campaign's lock: the pause takes the controls and waits for it.
        pauses.append(in_another_connection(_pause(alice)))
        wait_for(someone_waits_on_a_lock, "the other connection to wait for the lock", timeout=20)
        original(batch, confirmations, orders)

    monkeypatch.setattr(confirmations, "decide_confirmations", pause_while_confirming)
    stage_decide(now=timezone.now())
    [pause] = pauses
    pause.join(timeout=30)
    assert pause.errors == []

    assert Post.objects.get(post_id=str(confirmation.pk)).outcome == "confirmed"
    _settled(order, shop.campaign)
    assert PaymentOperation.objects.get(order=order, operation="authorize").result == "skipped"


def test_a_pause_that_commits_while_the_confirmation_is_read_wins(monkeypatch):
    shop = shop_open()
    alice = buyer_ready("alice")
    order = _pending(alice)
    confirmation = post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    stage_poll(now=timezone.now())
    original = confirmations.orders_for_confirmation

    def read_then_pause(confirmations):
        orders = original(confirmations)  # still pending, as this decider read it
        pause = in_another_connection(_pause(alice))
        pause.join(timeout=30)
        assert pause.errors == []
        return orders

    monkeypatch.setattr(confirmations, "orders_for_confirmation", read_then_pause)
    stage_decide(now=timezone.now())

    assert Post.objects.get(post_id=str(confirmation.pk)).outcome == "confirm_unknown"
    _settled(order, shop.campaign)
    assert not PaymentOperation.objects.filter(order=order).exists()


@pytest.mark.parametrize("round_", range(3))
def test_a_confirmation_and_a_pause_racing_end_cancelled_and_uncharged(round_):
    shop = shop_open()
    alice = buyer_ready("alice")
    order = _pending(alice)
    confirmation = post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    stage_poll(now=timezone.now())
    post_id = Post.objects.get(post_id=str(confirmation.pk)).pk
    barrier = threading.Barrier(2)

    def confirm() -> None:
        barrier.wait(timeout=30)
        posts_decide(post_ids=[post_id], now=timezone.now())

    def pause() -> None:
        barrier.wait(timeout=30)
        _pause(alice)()

    threads = [in_another_connection(confirm), in_another_connection(pause)]
    for thread in threads:
        thread.join(timeout=60)
        assert thread.errors == []

    assert Post.objects.get(pk=post_id).outcome in {"confirmed", "confirm_unknown"}
    _settled(order, shop.campaign)
