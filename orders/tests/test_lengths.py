"""Every length fits (issue 10, item 3): maximal values through the real decide path and every
message builder, on the database's own column limits (PostgreSQL enforces them)."""

from datetime import date
from typing import cast

import pytest
from django.utils import timezone

from catalog.models import Campaign, Product
from catalog.tests.factories import CampaignFactory, ProductFactory
from core.lengths import EMAIL_SUBJECT_MAX_LENGTH
from orders import messages
from orders.models import Notification, Order, OrderStatus
from orders.services import order_expire
from orders.services.common import notification
from orders.tests.factories import OrderFactory
from social.models import HANDLE_MAX_LENGTH, Post
from tests.shop import BRAND, buyer_ready, post, shop_open, tick

pytestmark = pytest.mark.django_db

PRODUCT_NAME_MAX = Product._meta.get_field("name").max_length or 0
LONGEST_NAME = "Kindle Fire HD " + "x" * (PRODUCT_NAME_MAX - len("Kindle Fire HD "))


def test_a_longest_product_name_is_ordered_and_another_merchants_post_in_the_batch_too():
    shop = shop_open()
    Product.objects.filter(pk=shop.campaign.product_id).update(name=LONGEST_NAME)
    other = CampaignFactory(hashtag="BuyOtherThing", product__name="Other thing")
    assert other.merchant_id != shop.campaign.merchant_id
    buyer_ready("alice")
    buyer_ready("bob")
    longest = post("alice", f"@{BRAND} #BuyKindleFireHD")
    others = post("bob", f"@{BRAND} #BuyOtherThing")
    tick()  # one batch decides both posts

    outcomes = dict(Post.objects.values_list("post_id", "outcome"))
    assert outcomes[str(longest.pk)] == "order_created"
    assert outcomes[str(others.pk)] == "order_created"
    order = Order.objects.get(campaign=shop.campaign)
    assert order.product_name == LONGEST_NAME
    subject = Notification.objects.get(order=order, kind="order_created").subject
    assert len(subject) == EMAIL_SUBJECT_MAX_LENGTH
    assert subject.startswith("Confirm your order: Kindle Fire HD")
    assert subject.endswith("…")


def test_expiry_of_an_order_of_a_longest_product_name_releases_its_unit():
    shop = shop_open()
    Product.objects.filter(pk=shop.campaign.product_id).update(name=LONGEST_NAME)
    Campaign.objects.filter(pk=shop.campaign.pk).update(stock_reserved=1)
    order = OrderFactory(campaign=shop.campaign, product_name=LONGEST_NAME)

    assert order_expire(order_id=order.pk, now=timezone.now(), reason="test") == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    assert Campaign.objects.get(pk=shop.campaign.pk).stock_reserved == 0
    assert Notification.objects.get(order=order, kind="expired").subject.endswith("…")


def _maximal_order() -> Order:
    product = ProductFactory(name="\uff37" * PRODUCT_NAME_MAX)  # full-width W: weighs 2 on X
    campaign = CampaignFactory(product=product, hashtag="B" + "x" * 99)
    order = cast(
        Order,
        OrderFactory(
            campaign=campaign,
            author_id="https://example.social/users/" + "u" * 2000,
            author_handle="u" * (HANDLE_MAX_LENGTH - len("@example.social")) + "@example.social",
            confirmation_code="ZZZZZ",
        ),
    )
    return order


def test_every_email_builder_queues_with_maximal_values():
    order = _maximal_order()
    cardholder = order.cardholder
    cardholder.user.first_name = "F" * 150
    campaign = order.campaign
    built = {
        "order_created": messages.email_order_created(
            order=order, cardholder=cardholder, prefix="C" * 30, window_minutes=15
        ),
        "blocked": messages.email_blocked(
            cardholder=cardholder, campaign=campaign, reason="r" * 500
        ),
        "paid": messages.email_paid(order=order, cardholder=cardholder, promised=date(2026, 12, 1)),
        "declined": messages.email_declined(order=order, cardholder=cardholder, code="x" * 64),
        "unavailable": messages.email_declined(
            order=order, cardholder=cardholder, code=messages.GATEWAY_UNAVAILABLE
        ),
        "expired": messages.email_expired(order=order, cardholder=cardholder, request_failed=True),
        "cancelled": messages.email_cancelled(
            order=order, cardholder=cardholder, reason="merchant", paused_because="not me"
        ),
        "shipped": messages.email_shipped(
            order=order, cardholder=cardholder, carrier="c" * 32, tracking="9" * 255
        ),
    }
    rows = [
        notification(key=f"{kind}:{order.pk}", cardholder=cardholder, kind=kind, message=message)
        for kind, message in built.items()
    ]
    Notification.objects.bulk_create(rows)  # PostgreSQL refuses any value over its column

    for row in Notification.objects.filter(order__isnull=True):
        assert len(row.subject) <= EMAIL_SUBJECT_MAX_LENGTH
        assert row.subject.endswith("…") or len(built[row.kind][0]) <= EMAIL_SUBJECT_MAX_LENGTH
        assert built[row.kind][0].startswith(row.subject.removesuffix("…"))


def test_an_order_keeps_a_longest_handle_and_author_uri():
    order = _maximal_order()
    order.refresh_from_db()
    assert len(order.author_handle) == HANDLE_MAX_LENGTH
    assert order.author_id.startswith("https://example.social/users/uuu")
