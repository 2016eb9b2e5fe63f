"""The confirmation window, expiry behind the feed, "Not me", and payments run exactly once."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from accounts.models import PurchaseControls
from catalog.models import Campaign
from orders.messages import not_me_url
from orders.models import (
    Order,
    OrderStatus,
    PaymentOperation,
    SandboxLedgerEntry,
)
from orders.pipeline import stage_expire, stage_payments
from orders.services import expiry_horizon, order_cancel, orders_expire_due
from social.models import FeedCursor, Post
from tests.shop import BRAND, buyer_ready, code_in, post, replies_to, shop_open, tick

pytestmark = pytest.mark.django_db

BUY = f"@{BRAND} #BuyKindleFireHD"
T0 = datetime(2026, 12, 1, 15, 0, tzinfo=ZoneInfo("UTC"))


def _stock(shop) -> int:
    return Campaign.objects.get(pk=shop.campaign.pk).stock_reserved


def _outcome(sandbox_post) -> str:
    return Post.objects.get(post_id=str(sandbox_post.pk)).outcome


@pytest.mark.parametrize(
    ("after", "outcome", "status"),
    [
        (timedelta(minutes=14, seconds=59), "confirmed", OrderStatus.PAID),
        (timedelta(minutes=15), "confirmed", OrderStatus.PAID),
        (timedelta(minutes=15, seconds=1), "confirm_late", OrderStatus.EXPIRED),
    ],
    ids=["14:59", "15:00", "15:01"],
)
def test_confirmation_counts_up_to_the_end_of_the_window(after, outcome, status):
    shop = shop_open(stock=1)
    buyer_ready("alice")
    with time_machine.travel(T0, tick=False):
        post("alice", BUY)
        tick()
    order = Order.objects.get()
    assert order.expires_at == T0 + timedelta(minutes=15)
    with time_machine.travel(T0 + after, tick=False):
        confirmation = post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
        tick()
        stage_expire(now=timezone.now())
        stage_expire(now=timezone.now())

    order.refresh_from_db()
    assert (_outcome(confirmation), order.status) == (outcome, status)
    assert _stock(shop) == (1 if status == OrderStatus.PAID else 0)
    if outcome == "confirm_late":
        assert replies_to("alice")[-1] == (
            f"@alice Sorry, the time to confirm #{order.confirmation_code} has passed, "
            "so it was not ordered."
        )
        assert list(order.events.values_list("kind", flat=True)) == ["created", "expired"]


def test_the_window_waits_for_a_late_reply():
    # Rate limits delayed the reply by an hour: the buyer still has 15 minutes after it.
    shop_open()
    buyer_ready("alice")
    with time_machine.travel(T0, tick=False):
        post("alice", BUY)
        from orders.pipeline import stage_decide, stage_poll

        stage_poll(now=timezone.now())
        stage_decide(now=timezone.now())
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        tick()
    with time_machine.travel(T0 + timedelta(hours=1, minutes=10), tick=False):
        post("alice", f"@{BRAND} #Confirm{code_in(replies_to('alice')[0])}")
        tick()
    assert Order.objects.get().status == OrderStatus.PAID


def test_expiry_waits_until_the_feed_has_been_read_past_the_deadline():
    shop = shop_open()
    buyer_ready("alice")
    with time_machine.travel(T0, tick=False):
        post("alice", BUY)
        tick()
    # Sixteen minutes on, but the feed was last read at T0: a confirmation could be waiting.
    later = T0 + timedelta(minutes=16)
    assert orders_expire_due(now=later) == 0
    assert Order.objects.get().status == OrderStatus.PENDING
    with time_machine.travel(later, tick=False):
        tick()  # the feed is read up to now: nothing came
        assert orders_expire_due(now=timezone.now()) == 1
        assert orders_expire_due(now=timezone.now()) == 0
    assert Order.objects.get().status == OrderStatus.EXPIRED
    assert _stock(shop) == 0


def test_an_undecided_post_holds_expiry_back():
    shop_open()
    buyer_ready("alice")
    with time_machine.travel(T0, tick=False):
        post("alice", BUY)
        tick()
    with time_machine.travel(T0 + timedelta(minutes=14), tick=False):
        post("alice", f"@{BRAND} hello")
        from orders.pipeline import stage_poll

        stage_poll(now=timezone.now())  # read, not yet decided
    with time_machine.travel(T0 + timedelta(minutes=20), tick=False):
        FeedCursor.objects.update(high_water_mark=timezone.now())
        account_id = Post.objects.first().account_id
        assert expiry_horizon(account_id=account_id, now=timezone.now()) < T0 + timedelta(
            minutes=14
        )
        assert orders_expire_due(now=timezone.now()) == 0


def test_a_stuck_feed_expires_orders_after_the_maximum_lag(settings):
    settings.HASHCART = {**settings.HASHCART, "MAX_FEED_LAG_MINUTES": 30}
    buyer_ready("alice")
    shop_open()
    with time_machine.travel(T0, tick=False):
        post("alice", BUY)
        tick()
    assert orders_expire_due(now=T0 + timedelta(minutes=44)) == 0
    assert orders_expire_due(now=T0 + timedelta(minutes=46)) == 1


# --- "Not me" -----------------------------------------------------------------------------------
def _pending_order():
    shop = shop_open()
    buyer = buyer_ready("alice")
    post("alice", BUY)
    tick()
    return shop, buyer, Order.objects.get()


def test_not_me_link_shows_the_order_and_changes_nothing_on_get(client):
    _, buyer, order = _pending_order()
    response = client.get(not_me_url(order.pk))
    assert response.status_code == 200
    assert b"Cancel the order and pause buying" in response.content
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert not PurchaseControls.objects.get(cardholder=buyer.cardholder).paused


def test_not_me_cancels_the_order_releases_the_unit_and_pauses_purchasing():
    from django.test import Client

    shop, buyer, order = _pending_order()
    client = Client(enforce_csrf_checks=True)
    url = not_me_url(order.pk)
    page = client.get(url)
    token = page.context["csrf_token"]
    response = client.post(url, {"csrfmiddlewaretoken": str(token)})
    assert b"is\n      cancelled" in response.content or b"is cancelled" in response.content
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert _stock(shop) == 0
    controls = PurchaseControls.objects.get(cardholder=buyer.cardholder)
    assert controls.paused
    # Single use: the second click cancels nothing more and releases nothing more.
    again = client.post(url, {"csrfmiddlewaretoken": str(token)})
    assert b"can no longer be cancelled" in again.content
    assert _stock(shop) == 0
    # And the next purchase post is blocked.
    blocked = post("alice", f"{BUY} again")
    tick()
    assert _outcome(blocked) == "blocked"


def test_not_me_needs_csrf_on_post():
    from django.test import Client

    _, _, order = _pending_order()
    response = Client(enforce_csrf_checks=True).post(not_me_url(order.pk))
    assert response.status_code == 403
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


@pytest.mark.parametrize("token", ["nonsense", "eyJvcmRlciI6MX0:1xW:forged"])
def test_a_forged_not_me_link_is_refused(client, token):
    _pending_order()
    response = client.get(reverse("orders:not_me", args=[token]))
    assert response.status_code == 404
    assert Order.objects.get().status == OrderStatus.PENDING


def test_cancelling_a_paid_order_voids_its_authorization():
    shop, _, order = _pending_order()
    post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    tick()
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert order_cancel(
        order_id=order.pk, now=timezone.now(), actor_label="test", pause_purchasing=False
    )
    assert not order_cancel(
        order_id=order.pk, now=timezone.now(), actor_label="test", pause_purchasing=False
    )
    stage_payments(now=timezone.now())
    assert _stock(shop) == 0
    void = PaymentOperation.objects.get(order=order, operation="void")
    assert void.status == "done"
    assert SandboxLedgerEntry.objects.filter(operation="void").count() == 1


# --- Payments exactly once ------------------------------------------------------------------------
def test_an_authorization_retried_after_a_crash_is_charged_once():
    _, _, order = _pending_order()
    post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    tick()
    op = PaymentOperation.objects.get(order=order, operation="authorize")
    # The worker died after the gateway answered but before recording it: the claim lapses.
    PaymentOperation.objects.filter(pk=op.pk).update(
        status="processing", claimed_until=timezone.now() - timedelta(seconds=1)
    )
    stage_payments(now=timezone.now())
    ledger = SandboxLedgerEntry.objects.get(operation="authorize")
    assert ledger.calls == 2  # presented twice, booked once
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert Order.objects.get().shipment is not None
    assert list(order.events.values_list("kind", flat=True)).count("paid") == 1
