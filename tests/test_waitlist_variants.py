"""The waitlist of a campaign sold by variant (issue 13, items 1 to 3): a waiter waits for units
of the variant their post asks for, and does not keep other variants from sale."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from accounts.services import staff_user_upsert
from orders.models import Order, OrderStatus, WaitlistEntry, WaitlistStatus
from orders.services import order_expire
from orders.services.waitlist import waitlist_promote
from social.models import Post
from tests.mfa import totp_enable
from tests.shop import BRAND, UNTAXED, buyer_ready, post, tick
from tests.variants import TEE, tee_shop

pytestmark = pytest.mark.django_db


def _outcome(handle: str) -> str:
    return Post.objects.filter(author_handle=handle).latest("id").outcome


def test_a_waiter_for_one_size_gets_that_size_and_others_sell_meanwhile():
    tees = tee_shop({"M": 1, "L": 2}, per_buyer_limit=2)
    for handle in ("alice", "bob", "carol", "dave"):
        buyer_ready(handle, address=UNTAXED)

    post("alice", f"@{BRAND} #{TEE} M")
    tick()
    post("bob", f"@{BRAND} #{TEE} m")  # M is gone: bob waits for an M
    tick()
    post("carol", f"@{BRAND} #{TEE} 2 L")  # L is still for sale, bob's wait holds none of it
    tick()

    assert [_outcome(h) for h in ("alice", "bob", "carol")] == [
        "order_created",
        "waitlisted",
        "order_created",
    ]
    assert Order.objects.get(author_handle="carol").quantity == 2

    # Alice's M comes back: bob is promoted to an order of one M, as his post asked.
    alices = Order.objects.get(author_handle="alice")
    assert order_expire(order_id=alices.pk, now=timezone.now(), reason="window closed")
    waitlist_promote(campaign_id=tees.shop.campaign.pk, now=timezone.now())

    bobs = Order.objects.get(author_handle="bob")
    assert (bobs.status, bobs.variant, bobs.quantity) == (
        OrderStatus.PENDING,
        tees.variants["M"],
        1,
    )
    assert (tees.stock("M").stock_reserved, tees.stock("L").stock_reserved) == (1, 2)
    assert not WaitlistEntry.objects.filter(status=WaitlistStatus.WAITING).exists()


def test_a_unit_of_another_size_does_not_promote_a_waiter_for_this_one():
    tees = tee_shop({"M": 1, "L": 1})
    for handle in ("alice", "bob", "carol"):
        buyer_ready(handle, address=UNTAXED)
    post("alice", f"@{BRAND} #{TEE} M")
    post("carol", f"@{BRAND} #{TEE} L")
    tick()
    post("bob", f"@{BRAND} #{TEE} M")
    tick()
    assert _outcome("bob") == "waitlisted"

    carols = Order.objects.get(author_handle="carol")
    assert order_expire(order_id=carols.pk, now=timezone.now(), reason="window closed")
    result = waitlist_promote(campaign_id=tees.shop.campaign.pk, now=timezone.now())

    assert result.promoted == []
    assert not Order.objects.filter(author_handle="bob").exists()
    assert WaitlistEntry.objects.get().status == WaitlistStatus.WAITING
    # The L that came back is for sale again.
    buyer_ready("dave", address=UNTAXED)
    post("dave", f"@{BRAND} #{TEE} L")
    tick()
    assert _outcome("dave") == "order_created"


def test_staff_see_how_many_wait_for_each_variant_in_the_back_office_and_the_api(client):
    tees = tee_shop({"M": 1, "L": 1})
    campaign = tees.shop.campaign
    for handle in ("alice", "bob", "carol", "dave", "erin"):
        buyer_ready(handle, address=UNTAXED)
    post("alice", f"@{BRAND} #{TEE} M")
    tick()
    post("bob", f"@{BRAND} #{TEE} M")  # read as it joins: M is gone, L is not
    tick()
    post("carol", f"@{BRAND} #{TEE} L")
    tick()
    # The campaign is sold out now: these posts join unread, and are read for their variant.
    post("dave", f"@{BRAND} #{TEE} L")
    post("erin", f"@{BRAND} #{TEE} l")
    tick()
    assert [_outcome(h) for h in ("bob", "dave", "erin")] == ["waitlisted"] * 3

    staff = staff_user_upsert(
        username="tee-staff",
        email="staff@example.com",
        password="pw-staff",
        merchant_id=campaign.merchant_id,
    )
    totp_enable(staff)
    _, token = AuthToken.objects.create(user=staff)
    api = Client(headers={"Authorization": f"Token {token}"})
    rows = api.get("/api/v1/campaign-variant-stocks/").json()
    rows = rows.get("results", rows) if isinstance(rows, dict) else rows
    waiting = {r["variant"]: r["waitlist_length"] for r in rows}
    assert waiting == {tees.variants["M"].pk: 1, tees.variants["L"].pk: 2}

    client.force_login(staff)
    page = client.get(reverse("admin:catalog_campaign_change", args=[campaign.pk]))
    inline = page.context["inline_admin_formsets"][0]
    shown = {f.original.variant_id: f.original.waitlist_length for f in inline if f.original}
    assert shown == waiting


@pytest.mark.django_db(transaction=True)
def test_a_waiter_for_two_is_promoted_with_stripe_tax_asked_ahead_for_two(settings):
    """A remote tax service is asked before promotion takes its locks: for the quantity the
    waiting post asks, or the question misses and the queue stalls for good."""
    from urllib.parse import parse_qs

    import responses

    from orders.tests.test_stripe_tax import API, _calculation

    tees = tee_shop({"M": 2}, per_buyer_limit=2)
    buyer_ready("alice", address=UNTAXED)
    buyer_ready("bob", address={"state": "NY", "postal_code": "10001"})
    post("alice", f"@{BRAND} #{TEE} 2 M")
    tick()
    post("bob", f"@{BRAND} #{TEE} 2 M")
    tick()
    assert _outcome("bob") == "waitlisted"

    settings.HASHCART = {**settings.HASHCART, "TAX": "orders.tax.stripe.StripeTax"}
    settings.STRIPE_SECRET_KEY = "sk_test_hashcart"
    alices = Order.objects.get(author_handle="alice")
    with responses.RequestsMock() as mocked:
        mocked.post(API, json=_calculation("exclusive", (596, 671, 56)))
        assert order_expire(order_id=alices.pk, now=timezone.now(), reason="window closed")
        result = waitlist_promote(campaign_id=tees.shop.campaign.pk, now=timezone.now())
        asked = [call.request.body for call in mocked.calls]

    assert len(result.promoted) == 1
    assert Order.objects.get(author_handle="bob").quantity == 2
    bodies = [b.decode() if isinstance(b, bytes) else b for b in asked]
    assert {parse_qs(b)["line_items[0][quantity]"][0] for b in bodies} == {"2"}


def test_a_waiter_for_one_size_is_not_kept_from_a_unit_of_theirs_by_many_ahead_for_another():
    tees = tee_shop({"M": 1, "L": 1})
    buyers = ["alice", "carol", *(f"m{n}" for n in range(7)), "erin"]
    for handle in buyers:
        buyer_ready(handle, address=UNTAXED)
    post("alice", f"@{BRAND} #{TEE} M")
    post("carol", f"@{BRAND} #{TEE} L")
    tick()
    for n in range(7):  # seven wait for an M, more than promotion reads ahead
        post(f"m{n}", f"@{BRAND} #{TEE} M")
    tick()
    post("erin", f"@{BRAND} #{TEE} L")
    tick()

    carols = Order.objects.get(author_handle="carol")
    assert order_expire(order_id=carols.pk, now=timezone.now(), reason="window closed")
    waitlist_promote(campaign_id=tees.shop.campaign.pk, now=timezone.now())

    erins = Order.objects.get(author_handle="erin")
    assert (erins.variant, erins.status) == (tees.variants["L"], OrderStatus.PENDING)
    assert WaitlistEntry.objects.filter(status=WaitlistStatus.WAITING).count() == 7


def test_a_waiter_who_asks_for_a_size_in_stock_buys_it():
    tees = tee_shop({"M": 1, "L": 1}, per_buyer_limit=2)
    for handle in ("alice", "bob"):
        buyer_ready(handle, address=UNTAXED)
    post("alice", f"@{BRAND} #{TEE} M")
    tick()
    post("bob", f"@{BRAND} #{TEE} M")
    tick()
    post("bob", f"@{BRAND} #{TEE} L")
    tick()

    assert _outcome("bob") == "order_created"
    assert Order.objects.get(author_handle="bob").variant == tees.variants["L"]
    assert WaitlistEntry.objects.get().status == WaitlistStatus.WAITING  # still waits for an M
