"""The private Confirm button and the ``#Confirm<CODE>`` post at the same moment, on PostgreSQL:
whichever order they run in, the order is confirmed once and authorized once (issue 13, 6)."""

import threading
from collections.abc import Callable

import pytest
from django.utils import timezone

from orders.models import Order, OrderStatus, PaymentOperation
from orders.pipeline import stage_decide, stage_poll
from orders.services import order_private_confirm
from orders.services import private as private_module
from orders.services.decide import confirmations
from social.models import Post
from tests.shop import BRAND, buyer_ready, post, shop_open, tick
from tests.waiting import OtherConnection, someone_waits_on_a_lock, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _private_order() -> Order:
    """Bob's pending order, whose request went privately: alice's took the only token."""
    shop_open(budget=1)
    buyer_ready("alice")
    buyer_ready("bob")
    post("alice", f"@{BRAND} #BuyKindleFireHD")
    post("bob", f"@{BRAND} #BuyKindleFireHD")
    tick()
    order = Order.objects.get(author_handle="bob")
    assert order.request_private_at is not None
    assert order.status == OrderStatus.PENDING
    return order


def _press(order: Order) -> Callable[[], str]:
    return lambda: order_private_confirm(order_id=order.pk, now=timezone.now())


def _confirmed_once(order: Order) -> None:
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED
    assert order.events.filter(kind="confirmed").count() == 1
    assert PaymentOperation.objects.filter(order=order, operation="authorize").count() == 1


def test_a_button_that_waits_for_the_post_finds_the_order_confirmed(monkeypatch):
    order = _private_order()
    confirmation = post("bob", f"@{BRAND} #Confirm{order.confirmation_code}")
    stage_poll(now=timezone.now())
    original = confirmations.decide_confirmations
    buttons: list[OtherConnection] = []

    def press_while_confirming(batch, found, orders):
        # The decider holds the campaign's lock: the button waits for it.
        buttons.append(OtherConnection(_press(order)))
        buttons[0].start()
        wait_for(someone_waits_on_a_lock, "the other connection to wait for the lock", timeout=20)
        original(batch, found, orders)

    monkeypatch.setattr(confirmations, "decide_confirmations", press_while_confirming)
    stage_decide(now=timezone.now())
    [button] = buttons
    button.join(timeout=30)
    assert button.errors == []
    assert button.result == "already"
    assert Post.objects.get(post_id=str(confirmation.pk)).outcome == "confirmed"
    _confirmed_once(order)


def test_a_post_that_waits_for_the_button_confirms_nothing(monkeypatch):
    order = _private_order()
    confirmation = post("bob", f"@{BRAND} #Confirm{order.confirmation_code}")
    stage_poll(now=timezone.now())
    original = private_module.orders_still_buyable
    deciders: list[OtherConnection] = []

    def decide_while_pressing(*, orders):
        # The button holds the campaign's lock: the decider waits for it.
        deciders.append(OtherConnection(lambda: stage_decide(now=timezone.now())))
        deciders[0].start()
        wait_for(someone_waits_on_a_lock, "the other connection to wait for the lock", timeout=20)
        return original(orders=orders)

    monkeypatch.setattr(private_module, "orders_still_buyable", decide_while_pressing)
    assert order_private_confirm(order_id=order.pk, now=timezone.now()) == "confirmed"
    [decider] = deciders
    decider.join(timeout=30)
    assert decider.errors == []
    assert Post.objects.get(post_id=str(confirmation.pk)).outcome == "confirm_unknown"
    _confirmed_once(order)


@pytest.mark.parametrize("round_", range(3))
def test_a_post_and_the_button_racing_confirm_once(round_):
    order = _private_order()
    post("bob", f"@{BRAND} #Confirm{order.confirmation_code}")
    stage_poll(now=timezone.now())
    start = threading.Barrier(2)

    def after(work: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            start.wait(timeout=10)
            return work()

        return run

    racers = [
        OtherConnection(after(_press(order))),
        OtherConnection(after(lambda: stage_decide(now=timezone.now()))),
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=60)
        assert racer.errors == []
    assert racers[0].result in ("confirmed", "already")
    _confirmed_once(order)
