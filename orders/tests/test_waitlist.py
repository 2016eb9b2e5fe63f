"""The waitlist of a sold-out campaign (issue 13, item 3): joining in post order, promotion when
a unit comes back (as a new purchase), leaving, closing with the campaign, and staff's counts."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from accounts.models import PurchaseControls
from accounts.services import staff_user_upsert
from catalog.models import Campaign
from catalog.services import campaign_save
from catalog.tests.factories import CampaignFactory
from orders.models import Notification, Order, OrderStatus, WaitlistEntry, WaitlistStatus
from orders.pipeline import stage_expire
from orders.selectors import waitlist_lengths, waitlist_position
from orders.services import order_cancel, order_expire, order_refund
from orders.services.waitlist import waitlist_promote, waitlists_close_due
from social.models import Post
from tests.mfa import totp_enable
from tests.shop import (
    BRAND,
    buyer_ready,
    code_in,
    order_shipped,
    post,
    replies_to,
    shop_open,
    tick,
)

pytestmark = pytest.mark.django_db
BUY = f"@{BRAND} #BuyKindleFireHD"


@pytest.fixture
def promote_now(settings):
    """Promotion requests run at once in the test's process instead of as tasks."""

    def promote(*, campaign_ids: list[int]) -> None:
        for campaign_id in campaign_ids:
            waitlist_promote(campaign_id=campaign_id, now=timezone.now())

    globals()["_promote"] = promote
    settings.HASHCART = {
        **settings.HASHCART,
        "WAITLIST_PROMOTE_HANDLER": f"{__name__}._promote",
        "CAMPAIGN_STOCK_ADDED_HANDLER": f"{__name__}._promote",
    }


def _queue(campaign: Campaign) -> list[str]:
    """The handles waiting on ``campaign``, first in first out."""
    return [
        e.post.author_handle
        for e in WaitlistEntry.objects.filter(campaign=campaign, status=WaitlistStatus.WAITING)
        .select_related("post")
        .order_by("posted_at", "post_id")
    ]


def _sell_out(stock: int, buyers: int):
    shop = shop_open(stock=stock)
    handles = [f"buyer{n:02d}" for n in range(buyers)]
    for handle in handles:
        buyer_ready(handle)
    for handle in handles:
        post(handle, BUY)
    tick()
    return shop, handles


def test_thirty_buyers_for_ten_units_make_ten_orders_and_twenty_waitlisted_in_post_order():
    shop, handles = _sell_out(stock=10, buyers=30)

    orders = Order.objects.filter(campaign=shop.campaign)
    assert sorted(orders.values_list("author_handle", flat=True)) == handles[:10]
    assert _queue(shop.campaign) == handles[10:]
    assert set(
        Post.objects.filter(author_handle__in=handles[10:]).values_list("outcome", flat=True)
    ) == {"waitlisted"}
    # Public: "waitlisted", no place; private: the place.
    [reply] = replies_to("buyer12")
    assert "waitlisted" in reply
    assert "3" not in reply.replace("@buyer12", "")
    email = Notification.objects.get(
        kind="waitlisted", cardholder__user__email="buyer12@example.com"
    )
    assert "You are number 3 on its waitlist" in email.body
    assert waitlist_lengths(campaign_ids=[shop.campaign.pk]) == {shop.campaign.pk: 20}
    entry = WaitlistEntry.objects.get(post__author_handle="buyer29")
    assert waitlist_position(entry) == 20


def test_three_lapsed_orders_promote_the_next_three_waitlisters_who_confirm():
    shop, handles = _sell_out(stock=10, buyers=30)
    lapsing = Order.objects.filter(author_handle__in=handles[:3])
    for order in lapsing:
        assert order_expire(order_id=order.pk, now=timezone.now(), reason="window closed")

    stage_expire(now=timezone.now())  # the sweep behind the promotion tasks
    tick()  # their confirmation requests are posted

    promoted = Order.objects.filter(author_handle__in=handles[10:13], status=OrderStatus.PENDING)
    assert promoted.count() == 3
    assert not Order.objects.filter(author_handle__in=handles[13:]).exists()
    assert _queue(shop.campaign) == handles[13:]
    for handle in handles[10:13]:
        request = replies_to(handle)[-1]
        post(handle, f"@{BRAND} #Confirm{code_in(request)}")
    tick()
    assert set(
        Order.objects.filter(author_handle__in=handles[10:13]).values_list("status", flat=True)
    ) == {OrderStatus.PAID}
    shop.campaign.refresh_from_db()
    assert shop.campaign.stock_reserved == 10
    # A promoted order is a new purchase: its window opened when its request was posted.
    assert all(o.expires_at is not None for o in Order.objects.filter(author_handle="buyer10"))


def test_promoting_twice_gives_nothing_more():
    shop, handles = _sell_out(stock=2, buyers=4)
    order = Order.objects.get(author_handle=handles[0])
    order_expire(order_id=order.pk, now=timezone.now(), reason="window closed")

    assert len(waitlist_promote(campaign_id=shop.campaign.pk, now=timezone.now()).promoted) == 1
    assert waitlist_promote(campaign_id=shop.campaign.pk, now=timezone.now()).promoted == []
    assert _queue(shop.campaign) == handles[3:]


def test_a_unit_owed_to_the_queue_is_not_sold_to_a_new_post():
    shop, handles = _sell_out(stock=1, buyers=2)
    buyer_ready("latecomer")
    order = Order.objects.get(author_handle=handles[0])
    order_expire(order_id=order.pk, now=timezone.now(), reason="window closed")

    post("latecomer", BUY)  # before the promotion ran
    tick()

    assert not Order.objects.filter(author_handle="latecomer").exists()
    assert _queue(shop.campaign) == [handles[1], "latecomer"]


def test_a_second_post_while_waiting_is_a_duplicate():
    shop, handles = _sell_out(stock=1, buyers=2)
    post(handles[1], BUY + " please")
    tick()
    assert list(
        Post.objects.filter(author_handle=handles[1]).values_list("outcome", flat=True)
    ) == [
        "waitlisted",
        "duplicate",
    ]
    assert _queue(shop.campaign) == [handles[1]]


def test_a_waitlister_no_longer_eligible_is_skipped_with_an_email_and_the_next_promoted():
    _, handles = _sell_out(stock=1, buyers=3)
    PurchaseControls.objects.filter(cardholder__user__email=f"{handles[1]}@example.com").update(
        paused=True
    )
    order = Order.objects.get(author_handle=handles[0])
    order_expire(order_id=order.pk, now=timezone.now(), reason="window closed")

    stage_expire(now=timezone.now())

    skipped = WaitlistEntry.objects.get(post__author_handle=handles[1])
    assert skipped.status == WaitlistStatus.SKIPPED
    assert Notification.objects.filter(kind="waitlist_skipped", cardholder=skipped.cardholder)
    assert Order.objects.get(author_handle=handles[2]).status == OrderStatus.PENDING
    assert not Order.objects.filter(author_handle=handles[1]).exists()


def test_every_release_path_promotes(promote_now, django_capture_on_commit_callbacks):
    """Cancel and staff raising the stock (expiry is above); declines and restocks go through
    the same release (``orders.services.common.unit_released``)."""
    shop, handles = _sell_out(stock=1, buyers=3)
    order = Order.objects.get(author_handle=handles[0])
    with django_capture_on_commit_callbacks(execute=True):
        order_cancel(order_id=order.pk, now=timezone.now(), actor_label="staff", reason="merchant")
    assert Order.objects.get(author_handle=handles[1]).status == OrderStatus.PENDING

    campaign = Campaign.objects.get(pk=shop.campaign.pk)
    campaign.stock_total = 2
    with django_capture_on_commit_callbacks(execute=True):
        campaign_save(campaign=campaign, now=timezone.now())
    assert Order.objects.get(author_handle=handles[2]).status == OrderStatus.PENDING
    assert _queue(shop.campaign) == []


def test_waitlists_close_with_the_campaign_and_tell_the_buyers():
    shop, _ = _sell_out(stock=1, buyers=3)
    later = shop.campaign.ends_at + timedelta(seconds=1)

    assert waitlists_close_due(now=later) == 2
    assert waitlists_close_due(now=later) == 0

    assert set(WaitlistEntry.objects.values_list("status", flat=True)) == {WaitlistStatus.CLOSED}
    assert Notification.objects.filter(kind="waitlist_closed").count() == 2
    # A unit that comes back after the end promotes no one.
    order_expire(order_id=Order.objects.get().pk, now=later, reason="window closed")
    assert waitlist_promote(campaign_id=shop.campaign.pk, now=later).promoted == []


def test_a_cardholder_leaves_the_waitlist_from_the_settings_page():
    _, handles = _sell_out(stock=1, buyers=3)
    mine = WaitlistEntry.objects.get(post__author_handle=handles[1])
    theirs = WaitlistEntry.objects.get(post__author_handle=handles[2])
    client = Client(enforce_csrf_checks=True)
    client.login(username=f"{handles[1]}@example.com", password="pw-buyer")
    page = client.get(reverse("accounts:settings"))
    assert b"Leave the waitlist" in page.content
    assert b"number 1 in line" in page.content

    url = reverse("orders:waitlist_leave", args=[mine.pk])
    assert client.post(url).status_code == 403  # no CSRF token
    token = client.cookies["csrftoken"].value
    assert (
        client.post(
            reverse("orders:waitlist_leave", args=[theirs.pk]), {"csrfmiddlewaretoken": token}
        ).status_code
        == 404
    )
    assert client.post(url, {"csrfmiddlewaretoken": token}).status_code == 302

    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == (WaitlistStatus.LEFT, WaitlistStatus.WAITING)
    assert waitlist_position(theirs) == 1


def test_staff_see_the_waitlist_length_of_their_own_campaigns_only():
    shop, _ = _sell_out(stock=1, buyers=4)
    other = CampaignFactory(hashtag="BuyOtherThing")
    staff = staff_user_upsert(
        username="a", email="a@example.com", password="pw", merchant_id=shop.campaign.merchant_id
    )
    _, token = AuthToken.objects.create(user=staff)
    api = Client(headers={"Authorization": f"Token {token}"})

    listed = api.get("/api/v1/campaigns/").json()["results"]
    assert [(c["id"], c["waitlist_length"]) for c in listed] == [(shop.campaign.pk, 3)]
    assert api.get(f"/api/v1/campaigns/{other.pk}/").status_code == 404
    changed = api.patch(
        f"/api/v1/campaigns/{shop.campaign.pk}/",
        data={"per_buyer_limit": 2},
        content_type="application/json",
    )
    assert changed.json()["waitlist_length"] == 3

    totp_enable(staff)
    admin = Client()
    admin.force_login(staff)
    page = admin.get(reverse("admin:catalog_campaign_changelist"))
    assert page.status_code == 200
    assert b'<td class="field-waitlist">3</td>' in page.content
    assert other.hashtag.encode() not in page.content


def test_a_refund_with_restock_promotes(promote_now, django_capture_on_commit_callbacks):
    shop_open(stock=1)
    order = order_shipped("alice")
    buyer_ready("bob")
    post("bob", BUY)
    tick()
    assert WaitlistEntry.objects.get().status == WaitlistStatus.WAITING

    with django_capture_on_commit_callbacks(execute=True):
        order_refund(
            order_id=order.pk,
            amount=order.total,
            reason="returned",
            restock=True,
            now=timezone.now(),
            actor_label="staff",
        )

    assert Order.objects.get(author_handle="bob").status == OrderStatus.PENDING
    assert WaitlistEntry.objects.get().status == WaitlistStatus.PROMOTED


def test_a_later_batch_is_told_the_places_after_the_queue_before_it():
    shop, handles = _sell_out(stock=2, buyers=6)  # four waiting
    late = [buyer_ready(f"late{n}").handle for n in range(3)]
    for handle in late:
        post(handle, BUY)
    tick()

    assert _queue(shop.campaign) == handles[2:] + late
    for place, handle in enumerate(late, start=5):
        email = Notification.objects.get(
            kind="waitlisted", cardholder__user__email=f"{handle}@example.com"
        )
        assert f"You are number {place} on its waitlist" in email.body
