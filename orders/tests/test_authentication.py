"""Card authentication (3-D Secure, issue 12 item 7): with the sandbox's test card whose bank
always asks, the order waits for its buyer, who approves or fails the payment on a private
page within the window; or it lapses. The outcome is read from the gateway's ledger."""

import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail, signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog.models import Campaign
from fulfillment.models import Shipment
from orders.messages import AUTHENTICATE_SALT, NOT_ME_SALT, authenticate_url
from orders.models import (
    CancelReason,
    Notification,
    Order,
    OrderEvent,
    OrderStatus,
    PaymentOperation,
)
from orders.pipeline import stage_expire, stage_payments
from orders.services import cardholder_orders_cancel, order_cancel
from orders.tests.test_payment_retries import FlakyGateway
from orders.views import LINK_DAYS
from sandbox.gateway import client_secret
from sandbox.models import SandboxLedgerEntry
from sandbox.vault import card_tokenize
from tests.shop import BRAND, buyer_ready, post, replies_to, shop_open, tick

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 15, 0, tzinfo=ZoneInfo("UTC"))
ASKED = T0 + timedelta(minutes=1)  # when the gateway asked for the buyer
DEADLINE = ASKED + timedelta(minutes=15)  # HASHCART_CONFIRMATION_WINDOW_MINUTES after it


def _waiting_order() -> Order:
    """Alice buys with the test card whose bank always asks (4000 0027 6000 3184) and
    confirms; the authorization comes back asking for her."""
    shop_open(stock=3)
    card = card_tokenize(number="4000 0027 6000 3184", exp_month=12, exp_year=2030)
    buyer_ready("alice", token=card.token)
    with time_machine.travel(T0, tick=False):
        post("alice", f"@{BRAND} #BuyKindleFireHD")
        tick()
    order = Order.objects.get()
    with time_machine.travel(ASKED, tick=False):
        post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
        tick()  # decided, then the authorization is sent: the bank asks for the buyer
    order.refresh_from_db()
    return order


def _path(order: Order) -> str:
    return urlsplit(authenticate_url(order.pk)).path


def _bank(client: Client, order: Order, outcome: str) -> str:
    """The sandbox bank's buttons (what ``sandbox/bank.js`` posts)."""
    response = client.post(
        reverse("sandbox:bank_authenticate"),
        {"secret": client_secret(order.payment_reference), "outcome": outcome},
    )
    return response.json()["result"]


def _return(client: Client, order: Order, when: datetime) -> str:
    """The page's form, submitted after the bank's check: the page's text."""
    with time_machine.travel(when, tick=False):
        response = client.post(_path(order))
    assert response.status_code == 200
    return response.content.decode()


def _reserved() -> int:
    return Campaign.objects.get().stock_reserved


def _authorizations() -> list[SandboxLedgerEntry]:
    return list(SandboxLedgerEntry.objects.filter(operation="authorize"))


def test_the_card_that_asks_makes_the_order_wait_for_its_buyer_with_its_unit_held():
    order = _waiting_order()
    assert order.status == OrderStatus.AUTHENTICATION_REQUIRED
    assert order.authentication_expires_at == DEADLINE
    assert _reserved() == 1
    (authorization,) = _authorizations()
    assert (authorization.approved, authorization.decline_code) == (False, "requires_action")
    assert order.payment_reference == authorization.reference
    assert OrderEvent.objects.filter(
        order=order, kind="authentication_required", to_status="authentication_required"
    ).exists()
    # Privately: an e-mail with the link; publicly nothing about it (no decline either).
    (asked,) = [m for m in mail.outbox if m.subject.startswith("Approve your payment")]
    token = re.search(r"https?://\S+/orders/authenticate/(\S+)/", asked.body).group(1)
    assert signing.loads(token, salt=AUTHENTICATE_SALT) == {"order": order.pk}
    assert f"${order.total} (sales tax ${order.tax_total} included)" in asked.body
    assert "by 15:16 UTC on" in asked.body
    assert not any("couldn't complete" in reply for reply in replies_to("alice"))
    assert not Notification.objects.filter(kind="declined").exists()


def test_authenticating_in_time_pays_the_order_and_schedules_its_shipment(client):
    order = _waiting_order()
    with time_machine.travel(ASKED + timedelta(minutes=5), tick=False):
        page = client.get(_path(order)).content.decode()
    assert "Kindle Fire HD" in page
    assert f"${order.total} (sales tax ${order.tax_total} included)" in page
    assert "Authenticate" in page
    assert "Sandbox:" in page
    assert "Main Street" not in page
    assert "alice@example.com" not in page
    assert _bank(client, order, "pass") == "approved"
    assert "Your bank approved the payment" in _return(client, order, DEADLINE)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert Shipment.objects.filter(order=order).count() == 1
    (authorization,) = _authorizations()  # one authorization: the one that waited
    assert authorization.approved
    assert authorization.calls == 1
    assert OrderEvent.objects.filter(
        order=order, kind="paid", from_status="authentication_required"
    ).exists()
    assert Notification.objects.filter(kind="paid", order=order).count() == 1
    assert _reserved() == 1

    # A second click: nothing changes, and the page says so.
    again = _return(client, order, DEADLINE)
    assert "is paid: there is nothing more to do here" in again
    assert Shipment.objects.count() == 1
    assert _bank(client, order, "fail") == "decided"


def test_failing_the_check_declines_the_order_and_releases_its_unit_once(client):
    order = _waiting_order()
    assert _bank(client, order, "fail") == "failed"
    assert "did not approve the payment" in _return(client, order, ASKED + timedelta(minutes=2))
    order.refresh_from_db()
    assert order.status == OrderStatus.DECLINED
    assert _reserved() == 0
    (declined,) = Notification.objects.filter(kind="declined", order=order)
    assert "Your bank's check of the payment did not succeed" in declined.body
    assert not Shipment.objects.exists()

    assert "is declined: there is nothing more to do here" in _return(
        client, order, ASKED + timedelta(minutes=3)
    )
    assert _reserved() == 0  # released once
    assert OrderEvent.objects.filter(order=order, kind="declined").count() == 1


def test_the_page_says_when_the_bank_has_not_answered_and_changes_nothing(client):
    order = _waiting_order()
    assert "has not answered yet" in _return(client, order, ASKED + timedelta(minutes=2))
    order.refresh_from_db()
    assert order.status == OrderStatus.AUTHENTICATION_REQUIRED


def test_an_authentication_left_to_lapse_is_declined_and_its_unit_released(client):
    order = _waiting_order()
    assert stage_expire(now=DEADLINE) == 0  # still in time, to the second
    after = DEADLINE + timedelta(seconds=1)
    assert stage_expire(now=after) == 1
    assert stage_expire(now=after) == 0  # the sweep twice: once
    order.refresh_from_db()
    assert order.status == OrderStatus.DECLINED
    assert _reserved() == 0
    (declined,) = Notification.objects.filter(kind="declined", order=order)
    assert "not completed in time" in declined.body
    # Its authorization is cancelled at the gateway, so it can never be completed now.
    void = PaymentOperation.objects.get(order=order, operation="void")
    stage_payments(now=after)
    void.refresh_from_db()
    assert void.status == "done"
    assert SandboxLedgerEntry.objects.filter(operation="void", reference=order.payment_reference)
    assert _bank(client, order, "pass") == "decided"

    # A late click changes nothing, and says so.
    with time_machine.travel(after + timedelta(minutes=1), tick=False):
        page = client.get(_path(order)).content.decode()
    assert "is declined" in page
    assert "Authenticate" not in page
    assert "has passed" in _return(client, order, after + timedelta(minutes=1))
    order.refresh_from_db()
    assert order.status == OrderStatus.DECLINED
    assert _reserved() == 0
    assert not Shipment.objects.exists()


def test_a_check_passed_after_the_window_pays_nothing_and_its_hold_is_released(client):
    order = _waiting_order()
    late = DEADLINE + timedelta(minutes=1)
    with time_machine.travel(late, tick=False):
        assert "has passed" in client.get(_path(order)).content.decode()
    assert _bank(client, order, "pass") == "approved"  # the bank says yes, too late
    assert "has passed" in _return(client, order, late)
    order.refresh_from_db()
    assert order.status == OrderStatus.AUTHENTICATION_REQUIRED  # the click changed nothing
    stage_expire(now=late)
    stage_payments(now=late)
    order.refresh_from_db()
    assert order.status == OrderStatus.DECLINED
    assert not Shipment.objects.exists()
    assert SandboxLedgerEntry.objects.filter(
        operation="void", reference=order.payment_reference, approved=True
    ).exists()


def test_a_forged_or_stale_link_is_a_404_and_changes_nothing(client):
    order = _waiting_order()
    forged = signing.dumps({"order": order.pk}, salt=AUTHENTICATE_SALT)[:-3] + "xyz"
    not_me = signing.dumps({"order": order.pk}, salt=NOT_ME_SALT)  # another link's token
    for token in (forged, not_me, "nonsense"):
        path = reverse("orders:authenticate", args=[token])
        for response in (client.get(path), client.post(path)):
            assert response.status_code == 404
            assert "This link is not valid or has expired" in response.content.decode()
    path = _path(order)
    with time_machine.travel(timezone.now() + timedelta(days=LINK_DAYS + 1)):
        response = client.post(path)
    assert response.status_code == 404
    order.refresh_from_db()
    assert order.status == OrderStatus.AUTHENTICATION_REQUIRED
    assert _reserved() == 1


def test_the_return_needs_the_csrf_token():
    order = _waiting_order()
    assert Client(enforce_csrf_checks=True).post(_path(order)).status_code == 403


def test_a_forged_client_secret_moves_nothing_at_the_sandbox_bank(client):
    order = _waiting_order()
    response = client.post(
        reverse("sandbox:bank_authenticate"),
        {"secret": f"{order.payment_reference}_secret_0000", "outcome": "pass"},
    )
    assert response.status_code == 404
    (authorization,) = _authorizations()
    assert not authorization.approved


def test_not_me_on_a_waiting_order_cancels_it_and_its_authorization():
    order = _waiting_order()
    assert order_cancel(
        order_id=order.pk,
        now=DEADLINE,
        actor_label="not-me link",
        reason=CancelReason.NOT_ME,
        pause_purchasing=True,
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert _reserved() == 0
    stage_payments(now=DEADLINE)
    assert SandboxLedgerEntry.objects.filter(
        operation="void", reference=order.payment_reference
    ).exists()
    assert stage_expire(now=DEADLINE + timedelta(minutes=1)) == 0


def test_the_email_link_opens_the_page_with_the_bank_buttons(client):
    order = _waiting_order()
    (asked,) = Notification.objects.filter(kind="authentication_required")
    link = re.search(r"https?://\S+/orders/authenticate/\S+/", asked.body).group(0)
    with time_machine.travel(ASKED + timedelta(minutes=1), tick=False):
        page = client.get(urlsplit(link).path)
    assert page.status_code == 200
    assert page["Cache-Control"].startswith("max-age=0")
    assert f"Order #{order.confirmation_code}" in page.content.decode()
    assert client_secret(order.payment_reference) in page.content.decode()


def test_a_lockdown_cancels_a_waiting_order_and_its_authorization():
    order = _waiting_order()
    cancelled = cardholder_orders_cancel(
        cardholder_id=order.cardholder_id, reason=CancelReason.PAUSED, now=DEADLINE
    )
    assert cancelled == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert _reserved() == 0
    assert PaymentOperation.objects.filter(order=order, operation="void").exists()


def test_a_lost_answer_that_asked_for_the_buyer_is_looked_up_and_the_order_waits(settings):
    settings.HASHCART = {
        **settings.HASHCART,
        "PAYMENT_GATEWAY": "orders.tests.test_payment_retries.FlakyGateway",
    }
    FlakyGateway.reset()
    FlakyGateway.lose_authorize_answers = 1  # the gateway asks for the buyer; the answer is lost
    try:
        order = _waiting_order()
        assert order.status == OrderStatus.CONFIRMED
        later = ASKED + timedelta(minutes=1)
        stage_payments(now=later)
    finally:
        FlakyGateway.reset()
    order.refresh_from_db()
    assert order.status == OrderStatus.AUTHENTICATION_REQUIRED
    assert order.authentication_expires_at == later + timedelta(minutes=15)
    (authorization,) = _authorizations()
    assert authorization.calls == 1  # looked up, not sent again
