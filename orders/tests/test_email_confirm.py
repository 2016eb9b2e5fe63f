"""Orders above the buyer's threshold need the public post and a click on a private e-mail link,
both within the window (DESIGN §8, issue 4)."""

import re
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.messages import email_confirm_url
from orders.models import Notification, Order, OrderStatus, PaymentOperation
from orders.pipeline import stage_expire, stage_payments
from orders.services import order_email_confirm
from social.models import Post
from tests.shop import BRAND, buyer_ready, post, replies_to, shop_open, tick

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 15, 0, tzinfo=ZoneInfo("UTC"))
BUY = f"@{BRAND} #BuyKindleFireHD"  # $149.00


def _order_above_threshold(threshold="100") -> Order:
    shop_open()
    buyer_ready("alice", email_confirm_above=Decimal(threshold))
    with time_machine.travel(T0, tick=False):
        post("alice", BUY)
        tick()
    return Order.objects.get()


def _click(order: Order, when: datetime) -> str:
    with time_machine.travel(when, tick=False):
        return order_email_confirm(order_id=order.pk, now=timezone.now())


def _confirm_post(order: Order, when: datetime) -> Post:
    with time_machine.travel(when, tick=False):
        sent = post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
        tick()
    return Post.objects.get(post_id=str(sent.pk))


def test_below_the_threshold_the_post_alone_confirms():
    order = _order_above_threshold(threshold="200")
    assert not order.email_confirm_required
    assert _confirm_post(order, T0 + timedelta(minutes=1)).outcome == "confirmed"


def test_the_created_email_carries_the_private_link(client):
    order = _order_above_threshold()
    assert order.email_confirm_required
    body = Notification.objects.get(kind="order_created").body
    assert "AND open this private link" in body
    link = re.search(r"https?://\S+/orders/confirm/\S+/", body).group(0)
    page = client.get(urlsplit(link).path)
    assert f"Order #{order.confirmation_code}".encode() in page.content


def test_post_then_click_confirms_at_the_click():
    order = _order_above_threshold()
    posted = _confirm_post(order, T0 + timedelta(minutes=2))
    assert posted.outcome == "confirm_awaiting_email"
    assert replies_to("alice")[-1].endswith("also press Confirm in the e-mail we sent you.")
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert not PaymentOperation.objects.exists()
    assert _click(order, T0 + timedelta(minutes=5)) == "confirmed"
    assert _click(order, T0 + timedelta(minutes=6)) == "closed"  # a second click: nothing more
    stage_payments(now=T0 + timedelta(minutes=6))
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert PaymentOperation.objects.filter(operation="authorize").count() == 1


def test_click_then_post_confirms_at_the_post():
    order = _order_above_threshold()
    assert _click(order, T0 + timedelta(minutes=1)) == "awaiting_post"
    assert _click(order, T0 + timedelta(minutes=2)) == "awaiting_post"
    assert _confirm_post(order, T0 + timedelta(minutes=3)).outcome == "confirmed"


def test_a_click_after_the_window_does_not_confirm_and_the_order_expires():
    order = _order_above_threshold()
    _confirm_post(order, T0 + timedelta(minutes=2))
    assert _click(order, T0 + timedelta(minutes=15, seconds=1)) == "late"
    with time_machine.travel(T0 + timedelta(minutes=20), tick=False):
        tick()
        stage_expire(now=timezone.now())
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED


def test_the_post_alone_never_confirms_an_order_above_the_threshold():
    order = _order_above_threshold()
    _confirm_post(order, T0 + timedelta(minutes=2))
    _confirm_post(order, T0 + timedelta(minutes=3))
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


def test_the_link_page_confirms_on_post_only_with_csrf():
    order = _order_above_threshold()
    _confirm_post(order, T0 + timedelta(minutes=1))
    path = urlsplit(email_confirm_url(order.pk)).path
    client = Client(enforce_csrf_checks=True)
    with time_machine.travel(T0 + timedelta(minutes=2), tick=False):
        page = client.get(path)
        assert page.status_code == 200
        assert Order.objects.get().status == OrderStatus.PENDING  # GET changes nothing
        assert client.post(path).status_code == 403
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1)
        done = client.post(path, {"csrfmiddlewaretoken": token.decode()})
    assert b"is\n    confirmed" in done.content or b"is confirmed" in done.content
    assert Order.objects.get().status == OrderStatus.CONFIRMED


def test_a_forged_or_foreign_link_is_refused(client):
    order = _order_above_threshold()
    assert client.get(reverse("orders:email_confirm", args=["forged"])).status_code == 404
    not_me_path = reverse("orders:not_me", args=["x"])
    assert client.get(not_me_path.replace("not-me", "confirm")).status_code == 404
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
