"""A sender killed while posting a reply strands nothing (issue 10, item 15): its lapsed claim
is taken back by a sweep over every account, and an order whose confirmation request is stuck
expires after the give-up time like one whose request is queued."""

import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from catalog.models import Campaign
from orders.models import Order, OrderStatus
from orders.pipeline import stage_decide, stage_expire, stage_poll
from social.models import Reply, ReplyStatus
from social.services import replies_recover
from tests.shop import BRAND, buyer_ready, post, replies_to, shop_open

pytestmark = pytest.mark.django_db
BUY = f"@{BRAND} #BuyKindleFireHD"
T0 = datetime(2026, 12, 1, 15, 0, tzinfo=ZoneInfo("UTC"))
CLAIM = timedelta(minutes=2)


def _order_with_request_left_sending(**shop):
    """A pending order whose confirmation request a sender claimed at T0 and died sending."""
    opened = shop_open(**shop)
    buyer_ready("alice")
    with time_machine.travel(T0, tick=False):
        post("alice", BUY)
        stage_poll(now=timezone.now())
        stage_decide(now=timezone.now())
    Reply.objects.filter(kind="confirmation_request").update(
        status=ReplyStatus.SENDING, claimed_until=T0 + CLAIM
    )
    return opened, Order.objects.get()


def _reserved(shop) -> int:
    return Campaign.objects.get(pk=shop.campaign.pk).stock_reserved


def test_a_request_left_sending_is_sent_though_its_account_queues_nothing_else():
    _, order = _order_with_request_left_sending()
    assert not Reply.objects.filter(status=ReplyStatus.QUEUED).exists()
    with time_machine.travel(T0 + CLAIM + timedelta(seconds=1), tick=False):
        waiting = replies_recover(now=timezone.now())  # the recovery beat's sweep
        assert waiting  # so it kicks the senders
        assert Reply.objects.get(kind="confirmation_request").status == ReplyStatus.QUEUED
        call_command("pipeline_tick", stdout=io.StringIO())
    (request,) = replies_to("alice")
    assert f"#Confirm{order.confirmation_code}" in request
    order.refresh_from_db()
    assert order.expires_at is not None  # the buyer's window is open


def test_a_sender_still_at_work_keeps_its_reply():
    _order_with_request_left_sending()
    with time_machine.travel(T0 + CLAIM - timedelta(seconds=1), tick=False):
        replies_recover(now=timezone.now())
    assert Reply.objects.get(kind="confirmation_request").status == ReplyStatus.SENDING


def test_an_order_whose_request_is_stuck_expires_after_the_give_up_time(settings):
    # A budget of zero: the request put back by the sweep can never go out either.
    shop, order = _order_with_request_left_sending(budget=0)
    hours = settings.HASHCART["CONFIRMATION_REQUEST_GIVE_UP_HOURS"]
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        replies_recover(now=timezone.now())
        call_command("pipeline_tick", stdout=io.StringIO())
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING  # still in time
    with time_machine.travel(T0 + timedelta(hours=hours, minutes=1), tick=False):
        replies_recover(now=timezone.now())
        call_command("pipeline_tick", stdout=io.StringIO())
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    assert _reserved(shop) == 0
    assert Reply.objects.get(kind="confirmation_request").status == ReplyStatus.SKIPPED


def test_a_request_stuck_with_a_lapsed_claim_is_withdrawn_like_a_queued_one(settings):
    shop, order = _order_with_request_left_sending()
    hours = settings.HASHCART["CONFIRMATION_REQUEST_GIVE_UP_HOURS"]
    # No sweep ran (the recovery beat was down too): expiry alone must not wait forever.
    assert stage_expire(now=T0 + timedelta(hours=hours, minutes=1)) == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.EXPIRED
    assert _reserved(shop) == 0
    assert Reply.objects.get(kind="confirmation_request").status == ReplyStatus.SKIPPED


def test_a_request_being_sent_right_now_is_let_through(settings):
    _, order = _order_with_request_left_sending()
    hours = settings.HASHCART["CONFIRMATION_REQUEST_GIVE_UP_HOURS"]
    late = T0 + timedelta(hours=hours, minutes=1)
    Reply.objects.update(claimed_until=late + CLAIM)  # a live claim: its window is about to open
    assert stage_expire(now=late) == 0
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING
