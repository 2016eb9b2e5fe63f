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
from orders.models import Order, OrderStatus, PaymentOperation
from orders.pipeline import stage_expire, stage_payments
from orders.services import expiry_horizon, order_cancel, orders_expire_due
from sandbox.models import SandboxLedgerEntry
from social.models import FeedCursor, Post, Reply
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
        order_id=order.pk, now=timezone.now(), actor_label="test", reason="operator"
    )
    assert not order_cancel(
        order_id=order.pk, now=timezone.now(), actor_label="test", reason="operator"
    )
    stage_payments(now=timezone.now())
    assert _stock(shop) == 0
    void = PaymentOperation.objects.get(order=order, operation="void")
    assert void.status == "done"
    assert SandboxLedgerEntry.objects.filter(operation="void").count() == 1


# --- Payments exactly once ------------------------------------------------------------------------
def test_an_authorization_retried_after_a_crash_is_charged_once():
    from sandbox.gateway import SandboxGateway

    _, order = _confirmed_order()
    op = PaymentOperation.objects.get(order=order, operation="authorize")
    # The worker called the gateway and died before recording the answer: the claim lapses
    # and the order is still confirmed.
    SandboxGateway().authorize(
        token=order.card.token,
        amount=order.total,
        currency=order.currency,
        idempotency_key=op.idempotency_key,
        order_id=order.pk,
    )
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


# --- Orders that leave "confirmed" while their authorization is on the way ---------------------
def _confirmed_order():
    shop, _, order = _pending_order()
    post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    from orders.pipeline import stage_decide, stage_poll

    stage_poll(now=timezone.now())
    stage_decide(now=timezone.now())  # confirmed; the authorization waits in the outbox
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED
    return shop, order


def test_an_order_cancelled_before_its_authorization_is_never_charged():
    shop, order = _confirmed_order()
    assert order_cancel(
        order_id=order.pk, now=timezone.now(), actor_label="test", reason="operator"
    )
    stage_payments(now=timezone.now())
    assert PaymentOperation.objects.get(order=order, operation="authorize").result == "skipped"
    assert not SandboxLedgerEntry.objects.exists()
    assert _stock(shop) == 0


class CancelledDuringTheCall:
    """A gateway that approves, while "Not me" is clicked during the call."""

    def authorize(self, *, token, amount, currency, idempotency_key, order_id):
        from sandbox.gateway import SandboxGateway

        result = SandboxGateway().authorize(
            token=token,
            amount=amount,
            currency=currency,
            idempotency_key=idempotency_key,
            order_id=order_id,
        )
        order_cancel(
            order_id=order_id,
            now=timezone.now(),
            actor_label="t",
            reason="not_me",
            pause_purchasing=True,
        )
        return result

    def void(self, *, reference, idempotency_key):
        from sandbox.gateway import SandboxGateway

        return SandboxGateway().void(reference=reference, idempotency_key=idempotency_key)


def test_an_authorization_approved_for_an_order_cancelled_meanwhile_is_voided(settings):
    shop, order = _confirmed_order()
    settings.HASHCART = {
        **settings.HASHCART,
        "PAYMENT_GATEWAY": f"{__name__}.CancelledDuringTheCall",
    }
    stage_payments(now=timezone.now())  # authorizes; the void it queues runs on the next pass
    assert PaymentOperation.objects.get(order=order, operation="void").status == "pending"
    stage_payments(now=timezone.now())
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert not hasattr(order, "shipment")
    ledger = dict(SandboxLedgerEntry.objects.values_list("operation", "reference"))
    assert set(ledger) == {"authorize", "void"}
    assert ledger["void"] == ledger["authorize"] == order.payment_reference
    assert _stock(shop) == 0


class Unreachable:
    def authorize(self, **kwargs):
        from orders.payments.base import GatewayError

        raise GatewayError("connection timed out")

    authorization_lookup = authorize


def test_an_authorization_that_never_gets_an_answer_declines_the_order(settings, mailoutbox):
    shop, order = _confirmed_order()
    settings.HASHCART = {**settings.HASHCART, "PAYMENT_GATEWAY": f"{__name__}.Unreachable"}
    later = timezone.now()
    for _ in range(3):
        later += timedelta(minutes=25)  # past every backoff; the last try past the retry time
        stage_payments(now=later)
    op = PaymentOperation.objects.get(order=order, operation="authorize")
    assert (op.status, op.attempts) == ("failed", 3)
    order.refresh_from_db()
    assert order.status == OrderStatus.DECLINED
    assert _stock(shop) == 0
    declined = order.notifications.get(kind="declined")
    assert declined.subject.startswith("We couldn't authorize your card")


def test_a_payment_claim_is_stamped_with_the_clock_at_claim_time(monkeypatch):
    import orders.services.payments as payments
    from sandbox.gateway import SandboxGateway

    _, order = _confirmed_order()
    op = PaymentOperation.objects.get(order=order, operation="authorize")
    leases = []

    class Watch(SandboxGateway):
        def authorize(self, **kwargs):
            leases.append(PaymentOperation.objects.get(pk=op.pk).claimed_until)
            return super().authorize(**kwargs)

    monkeypatch.setattr(payments, "gateway", Watch)
    # A stage that began an hour ago must not hand out a lease that has already lapsed.
    stale_now = timezone.now() - timedelta(hours=1)
    assert payments.payment_operation_run(operation_id=op.pk, now=stale_now) == "done"
    assert leases[0] > timezone.now()


def test_cancelling_a_paid_order_cancels_its_shipment():
    _, order = _confirmed_order()
    stage_payments(now=timezone.now())
    assert Order.objects.get(pk=order.pk).shipment.status == "awaiting_label"
    order_cancel(order_id=order.pk, now=timezone.now(), actor_label="test", reason="operator")
    assert Order.objects.get(pk=order.pk).shipment.status == "cancelled"


# --- A confirmation request that cannot be posted -------------------------------------------------
class Refusing:
    """The sandbox adapter, except that the platform refuses every reply for good."""

    platform = "sandbox"

    def fetch_mentions(self, **kwargs):
        from sandbox.adapter import SandboxAdapter

        return SandboxAdapter().fetch_mentions(**kwargs)

    def send_reply(self, **kwargs):
        from social.platforms.base import RejectedError

        raise RejectedError("403 You are not allowed to create a post with duplicate content.")


def test_an_order_whose_confirmation_request_failed_for_good_expires(settings):
    shop = shop_open()
    buyer_ready("alice")
    settings.HASHCART = {
        **settings.HASHCART,
        "PLATFORM_ADAPTERS": {"sandbox": f"{__name__}.Refusing"},
    }
    post("alice", BUY)
    tick()
    order = Order.objects.get()
    assert order.expires_at is None  # no window ever opened
    assert stage_expire(now=timezone.now()) == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    assert _stock(shop) == 0
    assert "could not post the reply" in order.notifications.get(kind="expired").body
    assert stage_expire(now=timezone.now()) == 0


def test_an_order_whose_request_waited_too_long_expires_and_the_request_is_withdrawn(settings):
    # The private channel off: otherwise the request goes by e-mail (test_private_requests).
    settings.HASHCART = {**settings.HASHCART, "PUBLIC_REPLY_WAIT_SECONDS": None}
    shop = shop_open(budget=0)  # the budget never lets the request out
    buyer_ready("alice")
    with time_machine.travel(T0, tick=False):
        post("alice", BUY)
        tick()
    order = Order.objects.get()
    hours = settings.HASHCART["CONFIRMATION_REQUEST_GIVE_UP_HOURS"]
    assert stage_expire(now=T0 + timedelta(hours=hours) - timedelta(minutes=1)) == 0
    assert stage_expire(now=T0 + timedelta(hours=hours, minutes=1)) == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    request = Reply.objects.get(kind="confirmation_request")
    assert request.status == "skipped"
    assert _stock(shop) == 0


def test_a_stuck_feed_still_waits_for_an_undecided_post(settings):
    settings.HASHCART = {**settings.HASHCART, "MAX_FEED_LAG_MINUTES": 30}
    shop_open()
    buyer_ready("alice")
    with time_machine.travel(T0, tick=False):
        post("alice", BUY)
        tick()
    with time_machine.travel(T0 + timedelta(minutes=14), tick=False):
        from orders.pipeline import stage_poll

        post("alice", f"@{BRAND} #Confirm{Order.objects.get().confirmation_code}")
        stage_poll(now=timezone.now())  # read, not yet decided
    # An hour on the lag floor is past the window, but the confirmation is in the inbox.
    assert orders_expire_due(now=T0 + timedelta(hours=1)) == 0
    assert Order.objects.get().status == OrderStatus.PENDING


def test_a_confirmation_that_lost_the_race_to_another_worker_gets_no_late_reply(monkeypatch):
    from orders.services.decide import confirmations

    shop, _, order = _pending_order()
    original = confirmations.orders_for_confirmation

    def and_meanwhile(confirmations):
        orders = original(confirmations)
        # Another worker confirms this order after it was read and before it is transitioned.
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.CONFIRMED)
        return orders

    monkeypatch.setattr(confirmations, "orders_for_confirmation", and_meanwhile)
    confirmation = post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    tick()
    assert _outcome(confirmation) == "confirm_unknown"
    assert not Reply.objects.filter(kind="confirm_late").exists()
    assert _stock(shop) == 1


class Broken:
    """A gateway with a bug: an exception the contract does not name."""

    def authorize(self, **kwargs):
        raise KeyError("surprise")


def test_an_unexpected_gateway_error_is_retried_not_left_holding_the_unit(settings):
    _, order = _confirmed_order()
    settings.HASHCART = {**settings.HASHCART, "PAYMENT_GATEWAY": f"{__name__}.Broken"}
    assert stage_payments(now=timezone.now())["pending"] == 1
    op = PaymentOperation.objects.get(order=order, operation="authorize")
    assert (op.status, op.attempts, op.last_error) == ("pending", 1, "unexpected KeyError")


def test_the_same_approval_applied_twice_pays_once_and_voids_nothing():
    from orders.payments.base import GatewayResult
    from orders.services.payments import _apply_authorization

    _, order = _confirmed_order()
    approved = GatewayResult(approved=True, reference="sbx_auth_same")
    # A worker whose claim lapsed applies the answer after the one that took over.
    _apply_authorization(order_id=order.pk, result=approved, now=timezone.now())
    _apply_authorization(order_id=order.pk, result=approved, now=timezone.now())
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert not PaymentOperation.objects.filter(order=order, operation="void").exists()
