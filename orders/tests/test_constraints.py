"""The database and the state machine reject bad orders, whoever writes them."""

from decimal import Decimal

import pytest
from django.db import DataError, IntegrityError, transaction
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from orders.models import Order, OrderStatus
from orders.tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def test_one_pending_order_per_cardholder_and_campaign():
    order = OrderFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderFactory(campaign=order.campaign, cardholder=order.cardholder, card=order.card)


def test_a_finished_order_makes_room_for_a_new_pending_one():
    order = OrderFactory()
    order.expire()
    order.save()
    OrderFactory(campaign=order.campaign, cardholder=order.cardholder, card=order.card)
    assert Order.objects.filter(cardholder=order.cardholder).count() == 2


def test_confirmation_codes_are_unique_among_pending_orders():
    order = OrderFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderFactory(confirmation_code=order.confirmation_code)


def test_a_code_may_be_reused_once_its_order_is_no_longer_pending():
    order = OrderFactory()
    order.expire()
    order.save()
    OrderFactory(confirmation_code=order.confirmation_code)


@pytest.mark.parametrize(
    "code", ["K7Q2", "K7Q2MM", "K7Q0M", "K7QOM", "K7Q1M", "K7QIM", "K7QLM", "k7q2m"]
)
def test_confirmation_codes_use_the_unambiguous_alphabet(code):
    # A code too long is a DataError on PostgreSQL (varchar(5)), a check failure on SQLite.
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        OrderFactory(confirmation_code=code)


def test_total_is_unit_price_times_quantity():
    order = OrderFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(total=order.total + Decimal("1.00"))


def test_status_must_be_a_known_state():
    order = OrderFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(status="lost_in_the_mail")


def test_status_cannot_be_assigned_directly():
    order = OrderFactory()
    with pytest.raises(AttributeError):
        order.status = OrderStatus.PAID


def test_only_declared_transitions_are_allowed():
    order = OrderFactory()
    with pytest.raises(TransitionNotAllowed):
        order.pay()  # pending orders must be confirmed first


def test_a_stale_copy_cannot_overwrite_a_transition():
    # Two workers read the same pending order; the first expires it, the second tries to confirm.
    first = Order.objects.get(pk=OrderFactory().pk)
    second = Order.objects.get(pk=first.pk)
    first.expire()
    first.save()
    second.confirm()
    with pytest.raises(ConcurrentTransition), transaction.atomic():
        second.save()
    assert Order.objects.get(pk=first.pk).status == OrderStatus.EXPIRED
