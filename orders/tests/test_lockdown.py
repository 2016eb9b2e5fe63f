"""Locking down an account stops its open orders (issue 10, item 13), and the cancellation
e-mail says who cancelled and whether buying is paused (item 14).

Locking down is pausing, unlinking an identity, removing a card, withdrawing consent, or the
"Not me" link: each cancels the affected pending and confirmed (not yet authorized) orders in
its own transaction, and a confirmation or an authorization that comes afterwards finds
nothing to buy with.
"""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Card, Consent, PurchaseControls, SocialIdentity
from catalog.models import Campaign
from orders.messages import not_me_url
from orders.models import CancelReason, Order, OrderStatus, PaymentOperation
from orders.pipeline import stage_decide, stage_payments, stage_poll
from orders.services import order_cancel
from sandbox.models import SandboxLedgerEntry
from social.models import Post
from tests.shop import BRAND, Buyer, buyer_ready, post, shop_open, tick

pytestmark = pytest.mark.django_db

BUY = f"@{BRAND} #BuyKindleFireHD"


def _reserved(campaign: Campaign) -> int:
    return Campaign.objects.get(pk=campaign.pk).stock_reserved


def _outcome(sandbox_post) -> str:
    return Post.objects.get(post_id=str(sandbox_post.pk)).outcome


def _decide() -> None:
    """Read and decide the feed, without running payments."""
    now = timezone.now()
    stage_poll(now=now)
    stage_decide(now=now)


def _pending(buyer: Buyer, buy: str = BUY) -> Order:
    post(buyer.handle, buy)
    tick()  # decided, confirmation request posted, window open
    order = Order.objects.filter(cardholder=buyer.cardholder).latest("id")
    assert order.status == OrderStatus.PENDING
    return order


def _confirmed(buyer: Buyer) -> Order:
    order = _pending(buyer)
    post(buyer.handle, f"@{BRAND} #Confirm{order.confirmation_code}")
    _decide()  # confirmed; its authorization waits in the payment outbox
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED
    return order


def _cancel_email(order: Order):
    return order.notifications.get(kind="cancelled")


def _pause(buyer: Buyer) -> None:
    account_services.purchasing_set_paused(
        cardholder=buyer.cardholder, paused=True, now=timezone.now()
    )


def _unlink(buyer: Buyer) -> None:
    account_services.identity_unlink(
        cardholder=buyer.cardholder, identity_id=buyer.identity.pk, now=timezone.now()
    )


def _remove_card(buyer: Buyer) -> None:
    account_services.card_remove(
        cardholder=buyer.cardholder, card_id=buyer.card.pk, now=timezone.now()
    )


def _withdraw_consent(buyer: Buyer) -> None:
    account_services.consent_withdraw(cardholder=buyer.cardholder, now=timezone.now())


LOCKDOWNS = {
    "pause": (_pause, "because buying by post was paused."),
    "unlink": (_unlink, "because the social account that placed it (@alice on Sandbox)"),
    "remove-card": (_remove_card, "because the card it was to be paid with (Visa ending 4242)"),
    "withdraw-consent": (_withdraw_consent, "because you withdrew your consent"),
}


# --- The hijacker's confirmation --------------------------------------------------------------
def test_a_hijackers_confirmation_after_pause_unlink_and_card_removal_buys_nothing():
    # Someone who took over @alice posts the purchase hashtag; alice gets the order e-mail,
    # pauses buying, unlinks @alice and removes her card; then the hijacker confirms.
    shop = shop_open()
    alice = buyer_ready("alice")
    order = _pending(alice)
    _pause(alice)
    _unlink(alice)
    _remove_card(alice)

    confirmation = post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    tick()
    tick()

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    # The code names no open order any more, so the hashtag is no confirmation at all.
    assert _outcome(confirmation) == "no_campaign"
    assert not SandboxLedgerEntry.objects.exists()  # the gateway was never asked to charge
    assert not PaymentOperation.objects.filter(order=order).exists()
    assert _reserved(shop.campaign) == 0
    assert list(order.events.values_list("kind", flat=True)) == ["created", "cancelled"]


# --- Each lockdown cancels the open orders it concerns ------------------------------------------
@pytest.mark.parametrize("lockdown", LOCKDOWNS, ids=list(LOCKDOWNS))
def test_a_lockdown_cancels_pending_and_confirmed_orders_and_releases_each_unit_once(lockdown):
    lock_down, because = LOCKDOWNS[lockdown]
    shop = shop_open(stock=5)
    other_shop = shop_open(stock=5, hashtag="BuyActionCamPack")
    alice = buyer_ready("alice")
    pending = _pending(alice)
    confirmed = _confirmed_other(alice, other_shop)
    assert (_reserved(shop.campaign), _reserved(other_shop.campaign)) == (1, 1)

    lock_down(alice)
    if lockdown in ("pause", "withdraw-consent"):
        lock_down(alice)  # twice: nothing more is cancelled or released

    for order in (pending, confirmed):
        order.refresh_from_db()
        assert order.status == OrderStatus.CANCELLED
        assert order.events.filter(kind="cancelled").count() == 1
        assert because in _cancel_email(order).body
    assert (_reserved(shop.campaign), _reserved(other_shop.campaign)) == (0, 0)
    stage_payments(now=timezone.now())
    assert PaymentOperation.objects.get(order=confirmed, operation="authorize").result == "skipped"
    assert not SandboxLedgerEntry.objects.exists()


def _confirmed_other(buyer: Buyer, shop) -> Order:
    order = _pending(buyer, f"@{BRAND} #{shop.campaign.hashtag}")
    post(buyer.handle, f"@{BRAND} #Confirm{order.confirmation_code}")
    _decide()
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED
    return order


def test_a_lockdown_leaves_paid_orders_and_other_cardholders_alone():
    shop_open(stock=5)
    alice, bob = buyer_ready("alice"), buyer_ready("bob")
    paid = _confirmed(alice)
    stage_payments(now=timezone.now())
    paid.refresh_from_db()
    assert paid.status == OrderStatus.PAID
    bobs = _pending(bob)
    _pause(alice)
    paid.refresh_from_db()
    bobs.refresh_from_db()
    assert (paid.status, bobs.status) == (OrderStatus.PAID, OrderStatus.PENDING)


def test_unlinking_one_identity_cancels_only_the_orders_it_placed():
    shop_open(stock=5)
    alice = buyer_ready("alice")
    order_from_alice = _pending(alice)
    # The same cardholder also posts as @alice2 (another linked identity).
    second = buyer_ready("alice2")
    SocialIdentity.objects.filter(pk=second.identity.pk).update(cardholder=alice.cardholder)
    other_shop = shop_open(stock=5, hashtag="BuyActionCamPack")
    post("alice2", f"@{BRAND} #{other_shop.campaign.hashtag}")
    tick()
    order_from_alice2 = Order.objects.get(author_handle="alice2")
    assert order_from_alice2.cardholder_id == alice.cardholder.pk

    _unlink(alice)

    order_from_alice.refresh_from_db()
    order_from_alice2.refresh_from_db()
    assert order_from_alice.status == OrderStatus.CANCELLED
    assert order_from_alice2.status == OrderStatus.PENDING


def test_withdrawing_consent_is_recorded_and_blocks_the_next_purchase():
    shop_open()
    alice = buyer_ready("alice")
    _withdraw_consent(alice)
    assert not Consent.objects.filter(cardholder=alice.cardholder, withdrawn_at=None).exists()
    assert alice.cardholder.events.filter(kind="consent_withdrawn").count() == 1
    _withdraw_consent(alice)
    assert alice.cardholder.events.filter(kind="consent_withdrawn").count() == 1
    blocked = post("alice", BUY)
    tick()
    assert _outcome(blocked) == "blocked"


def test_the_settings_page_withdraws_consent_and_cancels_open_orders():
    shop_open()
    alice = buyer_ready("alice")
    order = _pending(alice)
    client = Client()
    client.force_login(alice.cardholder.user)
    page = client.get(reverse("accounts:settings"))
    assert b"Withdraw consent" in page.content
    client.post(reverse("accounts:settings_action", args=["withdraw-consent"]))
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert not Consent.objects.filter(cardholder=alice.cardholder, withdrawn_at=None).exists()


# --- "Not me" ---------------------------------------------------------------------------------
def test_not_me_cancels_the_order_and_every_other_open_order_and_pauses():
    shop = shop_open(stock=5)
    other_shop = shop_open(stock=5, hashtag="BuyActionCamPack")
    alice = buyer_ready("alice")
    clicked = _pending(alice)
    other = _confirmed_other(alice, other_shop)

    client = Client()
    client.post(not_me_url(clicked.pk))

    clicked.refresh_from_db()
    other.refresh_from_db()
    assert (clicked.status, other.status) == (OrderStatus.CANCELLED, OrderStatus.CANCELLED)
    assert (_reserved(shop.campaign), _reserved(other_shop.campaign)) == (0, 0)
    controls = PurchaseControls.objects.get(cardholder=alice.cardholder)
    assert controls.paused
    assert controls.paused_reason == f"'Not me' on order #{clicked.confirmation_code}"
    assert alice.cardholder.events.filter(kind="purchasing_paused").count() == 1
    assert 'with the "Not me" link' in _cancel_email(clicked).body
    assert "change that account's password" in _cancel_email(clicked).body
    assert f"('Not me' on order #{clicked.confirmation_code})" in _cancel_email(other).body


def test_not_me_on_an_order_past_cancelling_still_pauses_and_cancels_the_others():
    shop_open(stock=5)
    other_shop = shop_open(stock=5, hashtag="BuyActionCamPack")
    alice = buyer_ready("alice")
    shipped = _confirmed(alice)
    stage_payments(now=timezone.now())
    Order.objects.filter(pk=shipped.pk).update(status=OrderStatus.SHIPPED)
    other = _pending(alice, f"@{BRAND} #{other_shop.campaign.hashtag}")

    assert not order_cancel(
        order_id=shipped.pk,
        now=timezone.now(),
        actor_label="not-me link",
        reason=CancelReason.NOT_ME,
        pause_purchasing=True,
    )
    other.refresh_from_db()
    assert other.status == OrderStatus.CANCELLED
    assert PurchaseControls.objects.get(cardholder=alice.cardholder).paused


# --- A confirmation needs the buyer still able to buy ---------------------------------------------
def _lose_identity(buyer: Buyer) -> None:
    SocialIdentity.objects.filter(pk=buyer.identity.pk).delete()


def _lose_card(buyer: Buyer) -> None:
    Card.objects.filter(pk=buyer.card.pk).update(removed_at=timezone.now(), is_default=False)


def _lose_controls(buyer: Buyer) -> None:
    PurchaseControls.objects.filter(cardholder=buyer.cardholder).update(paused=True)


@pytest.mark.parametrize(
    "change",
    [_lose_identity, _lose_card, _lose_controls],
    ids=["identity-gone", "card-removed", "paused"],
)
def test_a_confirmation_needs_the_identity_an_unpaused_account_and_the_card(change):
    # The change is written behind the services' backs (as a race or an operator could): the
    # confirmation itself must check, whatever cancelled or did not cancel the order.
    shop_open()
    alice = buyer_ready("alice")
    order = _pending(alice)
    change(alice)
    confirmation = post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    tick()
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert _outcome(confirmation) == "confirm_unknown"
    assert not SandboxLedgerEntry.objects.exists()


def test_an_identity_relinked_to_another_cardholder_cannot_confirm_the_old_order():
    shop_open()
    alice = buyer_ready("alice")
    order = _pending(alice)
    mallory = buyer_ready("mallory")
    SocialIdentity.objects.filter(pk=alice.identity.pk).update(cardholder=mallory.cardholder)
    confirmation = post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    tick()
    assert _outcome(confirmation) == "confirm_unknown"


def test_an_email_click_after_the_card_was_removed_confirms_nothing():
    from decimal import Decimal

    from orders.services import order_email_confirm

    shop_open()
    alice = buyer_ready("alice", email_confirm_above=Decimal("100"))
    order = _pending(alice)
    confirmation = post("alice", f"@{BRAND} #Confirm{order.confirmation_code}")
    tick()
    assert _outcome(confirmation) == "confirm_awaiting_email"
    _lose_card(alice)
    assert order_email_confirm(order_id=order.pk, now=timezone.now()) == "closed"
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert not PaymentOperation.objects.filter(order=order).exists()


def test_every_lockdown_has_a_cancel_reason():
    assert {str(reason) for reason in account_services.Lockdown} <= set(CancelReason.values)


# --- The gateway never charges a removed card -----------------------------------------------------
def test_an_authorization_for_a_card_removed_meanwhile_is_not_sent_and_the_order_cancelled():
    shop = shop_open()
    alice = buyer_ready("alice")
    order = _confirmed(alice)
    # Removed behind the lockdown's back (an operator, or a race): the payment worker re-checks.
    _lose_card(alice)
    stage_payments(now=timezone.now())
    stage_payments(now=timezone.now())
    assert not SandboxLedgerEntry.objects.exists()
    op = PaymentOperation.objects.get(order=order, operation="authorize")
    assert (op.status, op.result) == ("done", "skipped")
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert _reserved(shop.campaign) == 0
    assert "because the card it was to be paid with" in _cancel_email(order).body


def test_an_approval_that_returns_after_a_lockdown_is_voided(settings):
    shop = shop_open()
    alice = buyer_ready("alice")
    order = _confirmed(alice)
    settings.HASHCART = {**settings.HASHCART, "PAYMENT_GATEWAY": f"{__name__}.PausedDuringTheCall"}
    stage_payments(now=timezone.now())  # approved while the buyer paused: the void is queued
    stage_payments(now=timezone.now())
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    ledger = dict(SandboxLedgerEntry.objects.values_list("operation", "reference"))
    assert set(ledger) == {"authorize", "void"}
    assert _reserved(shop.campaign) == 0


class PausedDuringTheCall:
    """The sandbox gateway, while the cardholder pauses buying during the authorization."""

    def authorize(self, *, token, amount, currency, idempotency_key, order_id):
        from sandbox.gateway import SandboxGateway

        result = SandboxGateway().authorize(
            token=token,
            amount=amount,
            currency=currency,
            idempotency_key=idempotency_key,
            order_id=order_id,
        )
        order = Order.objects.select_related("cardholder").get(pk=order_id)
        account_services.purchasing_set_paused(
            cardholder=order.cardholder, paused=True, now=timezone.now()
        )
        return result

    def void(self, *, reference, idempotency_key):
        from sandbox.gateway import SandboxGateway

        return SandboxGateway().void(reference=reference, idempotency_key=idempotency_key)


# --- Honest cancellation e-mails (item 14) --------------------------------------------------------
def test_a_merchants_cancel_says_who_and_does_not_claim_buying_is_paused():
    shop_open()
    alice = buyer_ready("alice")
    order = _pending(alice)
    order_cancel(
        order_id=order.pk, now=timezone.now(), actor_label="api", reason=CancelReason.MERCHANT
    )
    body = _cancel_email(order).body
    assert f"The seller, {order.merchant.name}, cancelled it." in body
    assert "paused" not in body
    assert "password" not in body


def test_an_operators_cancel_says_so():
    shop_open()
    order = _pending(buyer_ready("alice"))
    order_cancel(
        order_id=order.pk, now=timezone.now(), actor_label="api", reason=CancelReason.OPERATOR
    )
    body = _cancel_email(order).body
    assert "Hashcart's operations team cancelled it" in body
    assert "paused" not in body


def test_a_buyers_cancel_from_settings_says_so_and_mentions_a_pause_only_when_there_is_one():
    shop_open()
    alice = buyer_ready("alice")
    order = _pending(alice)
    client = Client()
    client.force_login(alice.cardholder.user)
    client.post(reverse("orders:cardholder_order_cancel"), {"order": order.pk})
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    body = _cancel_email(order).body
    assert "You cancelled it on your settings page" in body
    assert "paused" not in body
    assert "password" not in body


def test_a_cancel_while_buying_is_paused_says_it_is_paused_without_blaming_a_hijacker():
    shop_open()
    alice = buyer_ready("alice")
    order = _pending(alice)
    # Paused by the buyer in the same instant the merchant cancels: the e-mail tells the truth.
    PurchaseControls.objects.filter(cardholder=alice.cardholder).update(
        paused=True, paused_reason="paused by you"
    )
    order_cancel(
        order_id=order.pk, now=timezone.now(), actor_label="api", reason=CancelReason.MERCHANT
    )
    body = _cancel_email(order).body
    assert "Buying by post is paused for your account (paused by you)" in body
    assert "password" not in body


def test_the_api_cancel_names_the_merchant_or_an_operator():
    from rest_framework.test import APIClient

    from accounts.tests.factories import UserFactory

    shop = shop_open(stock=5)
    alice = buyer_ready("alice")
    first = _pending(alice)
    bob = buyer_ready("bob")
    second = _pending(bob)
    staff = UserFactory(is_staff=True, merchant=shop.campaign.merchant)
    account_services.merchant_staff_group_ensure().user_set.add(staff)
    operator = UserFactory(is_staff=True, is_superuser=True)
    for user, order in ((staff, first), (operator, second)):
        client = APIClient()
        client.force_authenticate(user)
        response = client.post(f"/api/v1/orders/{order.pk}/cancel/")
        assert response.status_code == 200, response.content
    assert f"The seller, {shop.campaign.merchant.name}, cancelled it." in _cancel_email(first).body
    assert "Hashcart's operations team cancelled it" in _cancel_email(second).body


def test_a_lockdown_leaves_expired_orders_alone():
    # Nothing to cancel, and the unit was released once, by the expiry.
    shop = shop_open()
    alice = buyer_ready("alice")
    order = _pending(alice)
    from orders.services import order_expire

    assert order_expire(order_id=order.pk, now=timezone.now() + timedelta(hours=1), reason="t")
    _pause(alice)
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    assert _reserved(shop.campaign) == 0
