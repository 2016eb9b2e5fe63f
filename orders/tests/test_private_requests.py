"""A confirmation request the public reply budget cannot post in time goes privately (issue 13,
item 6): an e-mail with the code and a Confirm button, the window from when it is sent, and a
public reply that later says only "check your e-mail"."""

import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.core import mail, signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.messages import NOT_ME_SALT, private_confirm_url
from orders.models import Order, OrderStatus, PaymentOperation
from orders.pipeline import stage_decide, stage_expire, stage_poll, stage_send
from orders.services import order_private_confirm, orders_request_privately
from social.models import PlatformAccount, Post, Reply
from tests.shop import BRAND, buyer_ready, code_in, post, replies_to, shop_open, tick

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 15, 0, tzinfo=ZoneInfo("UTC"))
BUY = f"@{BRAND} #BuyKindleFireHD"
WAIT = timedelta(seconds=30)


def _window() -> timedelta:
    return timedelta(minutes=settings.HASHCART["CONFIRMATION_WINDOW_MINUTES"])


def _decided_at_t0(*handles: str, budget: int, budget_seconds: int = 900) -> None:
    """``handles`` post a purchase at T0, decided then; nothing is sent yet."""
    shop = shop_open(budget=budget)
    PlatformAccount.objects.filter(pk=shop.account.pk).update(reply_budget_seconds=budget_seconds)
    for handle in handles:
        buyer_ready(handle)
    with time_machine.travel(T0, tick=False):
        for handle in handles:
            post(handle, BUY)
        stage_poll(now=timezone.now())
        stage_decide(now=timezone.now())


def _order(handle: str) -> Order:
    return Order.objects.get(author_handle=handle)


def _private_email(handle: str) -> mail.EmailMessage:
    (sent,) = [m for m in mail.outbox if m.to == [f"{handle}@example.com"] and "now" in m.subject]
    return sent


def _request_reply(handle: str) -> Reply:
    return Reply.objects.get(kind="confirmation_request", in_reply_to__author_handle=handle)


def test_a_request_the_budget_cannot_post_in_30_s_goes_by_email_and_its_window_starts_then():
    _decided_at_t0("alice", "bob", budget=1)  # one reply per 15 minutes
    switched_at = T0 + WAIT + timedelta(seconds=1)
    with time_machine.travel(switched_at, tick=False):
        summary = stage_send(now=timezone.now())
    assert summary.private_requests == 1
    alice, bob = _order("alice"), _order("bob")
    # Alice's request took the only token: public, with her code, her window from its posting.
    (request,) = replies_to("alice")
    assert f"#Confirm{alice.confirmation_code}" in request
    assert alice.request_private_at is None
    assert alice.expires_at == switched_at + _window()
    # Bob's went by e-mail, with the code and the button; his window starts when it was sent.
    assert bob.request_private_at == switched_at
    assert bob.expires_at == switched_at + _window()
    email = _private_email("bob")
    assert f"#Confirm{bob.confirmation_code}" in email.body
    assert "/orders/confirm-order/" in email.body
    assert "/orders/confirm-order/" in email.alternatives[0][0]
    assert replies_to("bob") == []  # nothing public yet: the budget is spent
    # When the budget allows it, bob's public reply says only to check his e-mail.
    later = T0 + timedelta(minutes=16)
    with time_machine.travel(later, tick=False):
        tick()
    (public,) = replies_to("bob")
    assert public == (
        "@bob Thanks for your order of #BuyKindleFireHD: we've e-mailed you how to confirm it. "
        "Please check your e-mail."
    )
    assert bob.confirmation_code not in public
    bob.refresh_from_db()
    assert bob.expires_at == switched_at + _window()  # not opened again by the public reply
    assert bob.reply_posted_at == later
    assert bob.events.filter(kind="request_private").count() == 1
    # Another sweep switches nothing more and sends no second e-mail.
    with time_machine.travel(later, tick=False):
        assert orders_request_privately(now=timezone.now()) == 0
    assert len([m for m in mail.outbox if "now" in m.subject]) == 1


def test_a_queue_the_budget_cannot_drain_in_time_switches_before_the_30_s_are_up():
    _decided_at_t0("alice", "bob", budget=1)
    with time_machine.travel(T0 + timedelta(seconds=2), tick=False):
        stage_send(now=timezone.now())
    assert _order("bob").request_private_at == T0 + timedelta(seconds=2)
    assert _order("alice").request_private_at is None


def test_a_request_the_budget_posts_within_30_s_stays_public():
    # Two replies a minute: the third request gets its token 30 s after the first two.
    _decided_at_t0("alice", "bob", "carol", budget=2, budget_seconds=60)
    with time_machine.travel(T0, tick=False):
        assert stage_send(now=timezone.now()).private_requests == 0
    with time_machine.travel(T0 + WAIT + timedelta(seconds=1), tick=False):
        assert stage_send(now=timezone.now()).private_requests == 0
    carol = _order("carol")
    assert f"#Confirm{carol.confirmation_code}" in replies_to("carol")[0]
    assert carol.request_private_at is None
    assert carol.expires_at is not None


def test_a_request_held_back_by_anything_but_the_budget_stays_public():
    # An hour late (an outage, say), but the budget has room: the reply goes out publicly.
    _decided_at_t0("alice", budget=10_000)
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        assert orders_request_privately(now=timezone.now()) == 0
        tick()
    assert f"#Confirm{_order('alice').confirmation_code}" in replies_to("alice")[0]


def test_with_the_private_channel_off_requests_wait_for_the_budget(settings):
    settings.HASHCART = {**settings.HASHCART, "PUBLIC_REPLY_WAIT_SECONDS": None}
    _decided_at_t0("alice", "bob", budget=1)
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        assert stage_send(now=timezone.now()).private_requests == 0
    assert _order("bob").expires_at is None


def test_a_request_a_sender_already_claimed_is_not_switched():
    _decided_at_t0("alice", "bob", budget=1)
    PlatformAccount.objects.update(bucket_tokens=0, bucket_updated_at=T0)
    Reply.objects.filter(in_reply_to__author_handle="bob").update(
        status="sending", claimed_until=T0 + timedelta(minutes=2)
    )
    text = _request_reply("bob").text
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        orders_request_privately(now=timezone.now())  # alice's, still queued, is switched
    assert _order("alice").request_private_at is not None
    assert _order("bob").request_private_at is None
    assert _request_reply("bob").text == text  # the sender posts the code as it claimed it


# --- The Confirm button -----------------------------------------------------------------------
def _bob_private() -> Order:
    """Bob's order, its request sent privately at T0 + 31 s."""
    _decided_at_t0("alice", "bob", budget=1)
    with time_machine.travel(T0 + WAIT + timedelta(seconds=1), tick=False):
        stage_send(now=timezone.now())
    order = _order("bob")
    assert order.request_private_at is not None
    return order


def _link(order: Order) -> str:
    found = re.search(r"https?://\S+/orders/confirm-order/\S+/", str(_private_email("bob").body))
    assert found is not None
    return urlsplit(found.group(0)).path


def _press(path: str, when: datetime) -> str:
    client = Client(enforce_csrf_checks=True)
    with time_machine.travel(when, tick=False):
        page = client.get(path)
        assert page.status_code == 200
        token = page.cookies["csrftoken"].value
        return client.post(path, {"csrfmiddlewaretoken": token}).content.decode()


def _authorizations(order: Order) -> int:
    return PaymentOperation.objects.filter(order=order, operation="authorize").count()


def test_the_button_page_changes_nothing_on_get_and_needs_csrf():
    order = _bob_private()
    path = _link(order)
    page = Client().get(path).content.decode()
    assert '<form method="post">' in page
    assert "csrfmiddlewaretoken" in page
    assert Client(enforce_csrf_checks=True).post(path).status_code == 403
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING


def test_the_button_confirms_once():
    order = _bob_private()
    path = _link(order)
    assert "is\n    confirmed" in _press(path, T0 + timedelta(minutes=5))
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED
    assert _authorizations(order) == 1
    with time_machine.travel(T0 + timedelta(minutes=6), tick=False):
        again = Client().post(path).content.decode()  # the link used a second time
    assert "was already confirmed" in again
    assert order.events.filter(kind="confirmed").count() == 1
    assert _authorizations(order) == 1


def test_the_button_refuses_after_the_window():
    order = _bob_private()
    late = order.expires_at + timedelta(seconds=1)
    assert "has passed" in _press(_link(order), late)
    assert order_private_confirm(order_id=order.pk, now=late) == "late"
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert _authorizations(order) == 0
    stage_expire(now=late + timedelta(hours=1))
    assert order_private_confirm(order_id=order.pk, now=late) == "closed"


def test_the_button_confirms_only_its_own_order():
    order = _bob_private()
    alice = _order("alice")
    # A public order has no button; a link signed for another purpose is refused.
    assert order_private_confirm(order_id=alice.pk, now=T0 + timedelta(minutes=1)) == "closed"
    assert Client().get(urlsplit(private_confirm_url(alice.pk)).path).status_code == 404
    other = signing.dumps({"order": order.pk}, salt=NOT_ME_SALT, compress=True)
    forged = reverse("orders:private_confirm", args=[other])
    assert Client().post(forged).status_code == 404
    assert _press(_link(order), T0 + timedelta(minutes=1))
    alice.refresh_from_db()
    assert alice.status == OrderStatus.PENDING
    assert _authorizations(alice) == 0


def test_the_button_after_a_confirmation_by_post_confirms_nothing_more():
    order = _bob_private()
    with time_machine.travel(T0 + timedelta(minutes=2), tick=False):
        post("bob", f"@{BRAND} #Confirm{code_in(_private_email('bob').body)}")
        tick()
    order.refresh_from_db()
    assert order.status in (OrderStatus.CONFIRMED, OrderStatus.PAID)
    path = _link(order)
    with time_machine.travel(T0 + timedelta(minutes=3), tick=False):
        assert "was already confirmed" in Client().get(path).content.decode()  # no form
        assert "was already confirmed" in Client().post(path).content.decode()
    assert order.events.filter(kind="confirmed").count() == 1
    assert _authorizations(order) == 1


def test_a_post_after_the_button_confirms_nothing_more():
    order = _bob_private()
    _press(_link(order), T0 + timedelta(minutes=2))
    with time_machine.travel(T0 + timedelta(minutes=3), tick=False):
        confirmation = post("bob", f"@{BRAND} #Confirm{order.confirmation_code}")
        tick()
    assert Post.objects.get(post_id=str(confirmation.pk)).outcome != "confirmed"
    assert order.events.filter(kind="confirmed").count() == 1
    assert _authorizations(order) == 1


def test_an_order_whose_private_email_failed_for_good_expires(settings, monkeypatch):
    _decided_at_t0("alice", "bob", budget=1)

    def refuse(self, *args, **kwargs):
        raise OSError("SMTP down")

    monkeypatch.setattr(mail.EmailMultiAlternatives, "send", refuse)
    settings.HASHCART = {
        **settings.HASHCART,
        "OUTBOX": {
            **settings.HASHCART["OUTBOX"],
            "emails": {**settings.HASHCART["OUTBOX"]["emails"], "max_attempts": 1},
        },
    }
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        stage_send(now=timezone.now())
        bob = _order("bob")
        assert bob.request_private_at is not None
        assert bob.expires_at is None
        stage_expire(now=timezone.now())
    bob.refresh_from_db()
    assert bob.status == OrderStatus.EXPIRED
