"""One private reminder before a confirmation window closes (issue 13, item 4): sent once, at
``REMINDER_MINUTES`` before the end, with the code and the time left; never for an order that
was confirmed (or cancelled) meanwhile; never twice, even with two sweepers at once."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, transaction
from django.utils import timezone

from orders.models import CancelReason, Notification, Order, OrderStatus
from orders.pipeline import stage_remind
from orders.services import order_cancel, orders_remind_due
from orders.services.notifications import notifications_send_due
from tests.shop import BRAND, buyer_ready, code_in, post, replies_to, shop_open, tick
from tests.waiting import someone_waits_on_a_lock, wait_for

BUY = f"@{BRAND} #BuyKindleFireHD"


def _reminders() -> list[str]:
    return [str(m.body) for m in mail.outbox if "left to confirm" in m.subject]


def _pending_order(time_machine) -> Order:
    """Alice's pending order, its request posted (its window opened) at the frozen time."""
    shop_open()
    buyer_ready("alice")
    time_machine.move_to(timezone.now(), tick=False)
    post("alice", BUY)
    tick()
    order = Order.objects.get()
    assert order.status == OrderStatus.PENDING
    assert order.expires_at is not None
    return order


@pytest.mark.django_db
def test_one_reminder_goes_five_minutes_before_the_window_closes_with_code_and_time_left(
    time_machine,
):
    order = _pending_order(time_machine)
    closes = order.expires_at
    time_machine.move_to(closes - timedelta(minutes=5, seconds=1), tick=False)
    assert stage_remind(now=timezone.now()) == 0
    assert _reminders() == []

    time_machine.move_to(closes - timedelta(minutes=4, seconds=50), tick=False)
    assert stage_remind(now=timezone.now()) == 1
    [body] = _reminders()
    assert f"#Confirm{order.confirmation_code}" in body
    assert "About 5 minutes left" in body
    assert f"{closes:%H:%M} UTC" in body
    # Private: nothing public was added to the confirmation request.
    assert len(replies_to("alice")) == 1

    # The sweep again, and again closer to the end: nothing more.
    assert stage_remind(now=timezone.now()) == 0
    time_machine.move_to(closes - timedelta(minutes=1), tick=False)
    stage_remind(now=timezone.now())
    assert len(_reminders()) == 1


@pytest.mark.django_db
def test_the_reminder_time_is_a_setting(time_machine, settings):
    settings.HASHCART = {**settings.HASHCART, "REMINDER_MINUTES": 10}
    order = _pending_order(time_machine)
    time_machine.move_to(order.expires_at - timedelta(minutes=9, seconds=59), tick=False)
    stage_remind(now=timezone.now())
    [body] = _reminders()
    assert "About 10 minutes left" in body


@pytest.mark.django_db
def test_a_confirmed_order_gets_no_reminder(time_machine):
    order = _pending_order(time_machine)
    post("alice", f"@{BRAND} #Confirm{code_in(replies_to('alice')[0])}")
    tick()
    assert Order.objects.get().status != OrderStatus.PENDING
    time_machine.move_to(order.expires_at - timedelta(minutes=4), tick=False)
    assert stage_remind(now=timezone.now()) == 0
    assert _reminders() == []
    assert not Notification.objects.filter(kind="reminder").exists()


@pytest.mark.django_db
def test_an_order_cancelled_after_its_reminder_was_queued_gets_none(time_machine):
    order = _pending_order(time_machine)
    time_machine.move_to(order.expires_at - timedelta(minutes=4), tick=False)
    assert orders_remind_due(now=timezone.now()) == 1  # queued, not sent yet
    order_cancel(
        order_id=order.pk, now=timezone.now(), actor_label="cardholder", reason=CancelReason.BUYER
    )
    notifications_send_due(now=timezone.now())
    assert _reminders() == []
    assert Notification.objects.get(kind="reminder").sent_at is None


@pytest.mark.django_db
def test_a_closed_window_gets_no_reminder(time_machine):
    order = _pending_order(time_machine)
    time_machine.move_to(order.expires_at + timedelta(seconds=1), tick=False)
    assert stage_remind(now=timezone.now()) == 0
    assert _reminders() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweepers_at_once_send_one_reminder(time_machine):
    """The first sweeper's reminder row is inserted and not yet committed when the second one
    reads and inserts: the second waits on the unique key, then inserts nothing."""
    order = _pending_order(time_machine)
    now = order.expires_at - timedelta(minutes=4)
    inserted, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with transaction.atomic():
                orders_remind_due(now=now)
                inserted.set()
                release.wait(20)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    def second() -> None:
        try:
            inserted.wait(20)
            orders_remind_due(now=now)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    inserted.wait(20)
    wait_for(
        someone_waits_on_a_lock,
        "the second sweeper to wait for the first one's row",
        timeout=20,
    )
    release.set()
    for thread in threads:
        thread.join(30)
    assert errors == []
    notifications_send_due(now=now)
    notifications_send_due(now=now)
    assert Notification.objects.filter(kind="reminder").count() == 1
    assert len(_reminders()) == 1


@pytest.mark.django_db
def test_no_reminder_when_the_window_is_no_longer_than_the_reminders_lead(time_machine, settings):
    settings.HASHCART = {**settings.HASHCART, "CONFIRMATION_WINDOW_MINUTES": 5}
    order = _pending_order(time_machine)
    time_machine.move_to(order.expires_at - timedelta(minutes=4), tick=False)
    assert stage_remind(now=timezone.now()) == 0
    assert _reminders() == []
