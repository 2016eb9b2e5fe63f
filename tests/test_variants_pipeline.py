"""Variant and quantity in the purchase post, through the pipeline (issue 13, items 1 and 2)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.services.preferences import option_preferences_set
from catalog.models import Campaign
from orders.models import Order, OrderStatus
from social.models import Post
from tests.shop import BRAND, UNTAXED, buyer_ready, code_in, post, replies_to, shop_open, tick
from tests.variants import TEE, tee_shop

pytestmark = pytest.mark.django_db


def _outcome(handle: str) -> str:
    return Post.objects.filter(author_handle=handle).latest("id").outcome


def test_two_units_of_a_size_are_reserved_and_priced_together():
    tees = tee_shop()
    buyer_ready("alice", address=UNTAXED)

    post("alice", f"@{BRAND} #{TEE} 2 M")
    tick()

    order = Order.objects.get()
    assert (order.quantity, order.variant, order.variant_label) == (2, tees.variants["M"], "M")
    assert order.product_sku == "TEE-1"
    assert order.subtotal == order.total == 2 * tees.shop.campaign.price
    assert (tees.stock("M").stock_reserved, tees.stock("S").stock_reserved) == (2, 0)
    tees.shop.campaign.refresh_from_db()
    assert (tees.shop.campaign.stock_total, tees.shop.campaign.stock_reserved) == (15, 2)
    assert "2 x Kindle Fire HD (M)" in replies_to("alice")[-1]
    assert "each" in replies_to("alice")[-1]
    from django.core import mail

    [email] = [m for m in mail.outbox if m.subject.startswith("Confirm your order")]
    assert "2 x Kindle Fire HD (M), free two-day shipping" in email.body
    assert "Price (2 units)" in email.body


def test_a_missing_size_is_filled_from_the_saved_preference():
    tees = tee_shop()
    alice = buyer_ready("alice")
    option_preferences_set(cardholder=alice.cardholder, preferences={"size": "l"})

    post("alice", f"@{BRAND} #{TEE}")
    tick()

    assert Order.objects.get().variant == tees.variants["L"]
    assert tees.stock("L").stock_reserved == 1


def test_an_ambiguous_post_gets_the_choices_and_reserves_nothing():
    tees = tee_shop({"S / Blue": 1, "M / Blue": 1, "M / Red": 1})
    buyer_ready("alice")

    post("alice", f"@{BRAND} #{TEE} M please")
    tick()

    assert _outcome("alice") == "variant_needed"
    assert not Order.objects.exists()
    assert Campaign.objects.get().stock_reserved == 0
    assert tees.stock("M / Blue").stock_reserved == 0
    (reply,) = replies_to("alice")
    assert "Size: S, M" in reply
    assert "Colour: Blue, Red" in reply


def test_a_quantity_above_the_limit_reserves_nothing_and_says_the_range():
    tee_shop(per_buyer_limit=2)
    buyer_ready("alice")

    post("alice", f"@{BRAND} #{TEE} M 3")
    tick()

    assert _outcome("alice") == "quantity_invalid"
    assert not Order.objects.exists()
    assert "a quantity from 1 to 2" in replies_to("alice")[-1]


def test_a_variant_with_too_few_units_left_waitlists_and_the_others_still_sell():
    tees = tee_shop({"S": 1, "M": 5})
    buyer_ready("alice")
    buyer_ready("bob")

    post("alice", f"@{BRAND} #{TEE} 2 S")
    post("bob", f"@{BRAND} #{TEE} 2 M")
    tick()

    assert _outcome("alice") == "waitlisted"
    assert _outcome("bob") == "order_created"
    assert (tees.stock("S").stock_reserved, tees.stock("M").stock_reserved) == (0, 2)


def test_the_per_buyer_limit_counts_units():
    tees = tee_shop(per_buyer_limit=3)
    alice = buyer_ready("alice")

    post("alice", f"@{BRAND} #{TEE} 2 M")
    tick()
    Order.objects.filter(cardholder=alice.cardholder).update(status=OrderStatus.PAID)
    post("alice", f"@{BRAND} #{TEE} 2 S")
    tick()

    assert _outcome("alice") == "blocked"
    assert tees.stock("S").stock_reserved == 0


def test_an_expired_order_gives_its_units_back_to_its_variant():
    tees = tee_shop()
    buyer_ready("alice")
    post("alice", f"@{BRAND} #{TEE} 3 S")
    tick()
    assert tees.stock("S").stock_reserved == 3

    from orders.services.lifecycle import orders_expire_due

    orders_expire_due(now=timezone.now() + timedelta(hours=1))

    assert Order.objects.get().status == OrderStatus.EXPIRED
    assert tees.stock("S").stock_reserved == 0
    assert Campaign.objects.get().stock_reserved == 0


def test_a_confirmed_order_of_two_charges_for_two():
    tee_shop()
    buyer_ready("alice", address=UNTAXED)
    post("alice", f"@{BRAND} #{TEE} M 2")
    tick()
    post("alice", f"@{BRAND} #Confirm{code_in(replies_to('alice')[-1])}")
    tick()
    tick()

    order = Order.objects.get()
    assert order.status == OrderStatus.PAID
    assert order.total == 2 * order.unit_price


def test_a_product_without_options_sells_one_unit_and_reads_only_the_quantity():
    shop = shop_open(stock=5, per_buyer_limit=2)
    buyer_ready("alice")

    post("alice", f"@{BRAND} #{shop.campaign.hashtag} 2 large")
    tick()

    order = Order.objects.get()
    assert (order.quantity, order.variant) == (2, None)
    shop.campaign.refresh_from_db()
    assert shop.campaign.stock_reserved == 2


def _paid_two_of_m() -> tuple[Order, "object"]:
    tees = tee_shop()
    buyer_ready("alice", address=UNTAXED)
    post("alice", f"@{BRAND} #{TEE} 2 M")
    tick()
    post("alice", f"@{BRAND} #Confirm{code_in(replies_to('alice')[-1])}")
    tick()
    tick()
    order = Order.objects.get()
    assert order.status == OrderStatus.PAID
    assert tees.stock("M").stock_reserved == 2
    return order, tees


def test_cancelling_a_paid_order_gives_both_units_back_to_its_variant():
    from orders.services.lifecycle import order_cancel

    order, tees = _paid_two_of_m()

    assert order_cancel(order_id=order.pk, now=timezone.now(), actor_label="test", reason="buyer")

    assert tees.stock("M").stock_reserved == 0
    assert Campaign.objects.get().stock_reserved == 0


def test_a_refund_with_restock_gives_both_units_back_to_its_variant():
    from decimal import Decimal

    from fulfillment.services import label_buy
    from orders.pipeline import stage_payments
    from orders.services.refunds import order_refund

    order, tees = _paid_two_of_m()
    label_buy(shipment_id=order.shipment.pk)
    stage_payments(now=timezone.now())
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED

    order_refund(
        order_id=order.pk,
        amount=Decimal("1.00"),
        reason="came back",
        restock=True,
        now=timezone.now(),
        actor_label="test",
    )

    assert tees.stock("M").stock_reserved == 0
    assert Campaign.objects.get().stock_reserved == 0


@pytest.mark.django_db(transaction=True)
def test_stripe_tax_is_asked_ahead_for_the_quantity_posted(settings):
    from urllib.parse import parse_qs

    import responses

    from orders.tests.test_stripe_tax import API, _calculation

    settings.HASHCART = {**settings.HASHCART, "TAX": "orders.tax.stripe.StripeTax"}
    settings.STRIPE_SECRET_KEY = "sk_test_hashcart"
    tee_shop()
    buyer_ready("alice", address={"state": "NY", "postal_code": "10001"})
    with responses.RequestsMock() as mocked:
        mocked.post(API, json=_calculation("exclusive", (596, 671, 56)))
        post("alice", f"@{BRAND} #{TEE} 2 M")
        tick()
        asked = [call.request.body for call in mocked.calls]

    order = Order.objects.get()
    assert order.quantity == 2
    assert len(asked) == 1
    body = asked[0].decode() if isinstance(asked[0], bytes) else asked[0]
    assert parse_qs(body)["line_items[0][quantity]"] == ["2"]  # asked ahead, for two


@pytest.mark.parametrize("platform", ["x", "sandbox", "bluesky"])
def test_the_list_of_choices_is_cut_to_the_platforms_reply_rule(platform):
    from orders.messages import reply_variant_needed
    from social.platforms import reply_fits

    campaign = Campaign(platform=platform, hashtag="BuyTeeShirt")
    sizes = [f"Size{n}" for n in range(60)]
    colours = ["Blue", "Red"]

    short = reply_variant_needed(
        handle="alice", campaign=campaign, choices=[("Size", sizes[:3]), ("Colour", colours)]
    )
    long = reply_variant_needed(
        handle="alice", campaign=campaign, choices=[("Size", sizes), ("Colour", colours)]
    )

    assert "Size: Size0, Size1, Size2; Colour: Blue, Red" in short
    assert reply_fits(platform=platform, text=long)
    assert "Size: Size0" in long
    assert "…" in long
