"""Deciders racing on PostgreSQL, each with its own connection: no oversell, caps hold."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from accounts.models import PurchaseControls
from catalog.models import Campaign
from devtools.bench_data import buyers_bulk_create, inbox_post
from orders.models import Order
from orders.services import posts_decide
from social.models import Post
from tests.shop import BRAND, shop_open

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
WORKERS = 4


def _race(post_ids: list[int], batch: int) -> list[BaseException]:
    """Decide ``post_ids`` with WORKERS threads taking interleaved batches at the same time."""
    batches = [post_ids[i : i + batch] for i in range(0, len(post_ids), batch)]
    barrier = threading.Barrier(WORKERS)
    errors: list[BaseException] = []

    def work(mine):
        try:
            barrier.wait(timeout=30)
            for ids in mine:
                posts_decide(post_ids=ids, now=timezone.now())
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(batches[n::WORKERS],)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return errors


def test_2000_buyers_racing_for_50_units_get_exactly_50_orders():
    shop = shop_open(stock=50)
    now = timezone.now()
    buyers = buyers_bulk_create(prefix="racer", count=2000, now=now)
    Post.objects.bulk_create(
        [
            inbox_post(
                account=shop.account,
                post_id=str(9_000_000 + n),
                author_id=b.platform_user_id,
                handle=b.handle,
                text=f"@{BRAND} #BuyKindleFireHD",
                posted_at=now,
            )
            for n, b in enumerate(buyers)
        ]
    )
    ids = list(Post.objects.order_by("id").values_list("pk", flat=True))

    assert _race(ids, batch=50) == []

    campaign = Campaign.objects.get(pk=shop.campaign.pk)
    assert Order.objects.count() == 50
    assert campaign.stock_reserved == 50
    outcomes = dict(Post.objects.values_list("outcome").annotate(n=Count("id")))
    assert outcomes == {"order_created": 50, "waitlisted": 1950}
    assert Order.objects.values("cardholder").distinct().count() == 50


def test_a_daily_cap_holds_when_one_buyers_posts_are_decided_at_once():
    shop = shop_open(stock=100, hashtag="BuyThing0")
    now = timezone.now()
    [buyer] = buyers_bulk_create(prefix="capped", count=1, now=now)
    PurchaseControls.objects.filter(cardholder_id=buyer.cardholder_id).update(
        per_day_cap=Decimal("316.62")
    )  # two units at $149 with Illinois's 6.25% ($158.31 each)
    tags = ["BuyThing0"]
    for n in range(1, 40):
        tags.append(f"BuyThing{n}")
        shop_open(stock=100, hashtag=tags[-1])
    Post.objects.bulk_create(
        [
            inbox_post(
                account=shop.account,
                post_id=str(8_000_000 + n),
                author_id=buyer.platform_user_id,
                handle=buyer.handle,
                text=f"@{BRAND} #{tag}",
                posted_at=now,
            )
            for n, tag in enumerate(tags)
        ]
    )
    ids = list(Post.objects.order_by("id").values_list("pk", flat=True))

    assert _race(ids, batch=1) == []

    assert Order.objects.filter(cardholder_id=buyer.cardholder_id).count() == 2
    outcomes = dict(Post.objects.values_list("outcome").annotate(n=Count("id")))
    assert outcomes == {"order_created": 2, "blocked": 38}
    held = sum(c.stock_reserved for c in Campaign.objects.all())
    assert held == 2


def test_an_email_click_that_commits_while_the_confirmation_is_decided_is_not_lost(monkeypatch):
    # Above the buyer's e-mail threshold both the post and the click are needed. Here the click
    # commits (another connection) after the decider has read the order and before it writes:
    # the decider must see it and confirm, or the order would wait for nothing and lapse.
    from orders.models import OrderStatus
    from orders.services import order_email_confirm
    from orders.services.decide import confirmations
    from tests.shop import buyer_ready, post, tick

    shop_open()
    buyer_ready("both", email_confirm_above=Decimal("100"))
    post("both", f"@{BRAND} #BuyKindleFireHD")
    tick()
    order = Order.objects.get()
    assert order.email_confirm_required
    original = confirmations.orders_for_confirmation
    clicks: list[str] = []

    def read_then_click(confirmations):
        orders = original(confirmations)

        def click() -> None:
            try:
                clicks.append(order_email_confirm(order_id=order.pk, now=timezone.now()))
            finally:
                connection.close()

        thread = threading.Thread(target=click)
        thread.start()
        thread.join(timeout=30)
        return orders

    monkeypatch.setattr(confirmations, "orders_for_confirmation", read_then_click)
    post("both", f"@{BRAND} #Confirm{order.confirmation_code}")
    tick()
    assert clicks == ["awaiting_post"]
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID  # confirmed by the post, then authorized


def test_buy_labels_run_twice_at_once_buys_each_label_and_captures_each_payment_once():
    from io import StringIO

    from django.core.management import call_command

    from fulfillment.models import Shipment
    from orders.models import OrderStatus
    from sandbox.models import SandboxLabel, SandboxLedgerEntry
    from tests.shop import buyer_ready, code_in, post, replies_to, tick

    shop_open(stock=20)
    handles = [f"label{n}" for n in range(12)]
    for handle in handles:
        buyer_ready(handle)
        post(handle, f"@{BRAND} #BuyKindleFireHD")
    tick()
    for handle in handles:
        post(handle, f"@{BRAND} #Confirm{code_in(replies_to(handle)[-1])}")
    tick()
    tick()
    assert Order.objects.filter(status=OrderStatus.PAID).count() == len(handles)
    # Every shipment is due now, whatever the clock says about cut-offs.
    Shipment.objects.update(ship_by=timezone.localdate() - timedelta(days=1))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=30)
            call_command("buy_labels", stdout=StringIO(), stderr=StringIO())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert SandboxLabel.objects.count() == len(handles)
    assert Order.objects.filter(status=OrderStatus.SHIPPED).count() == len(handles)
    captures = SandboxLedgerEntry.objects.filter(operation="capture")
    assert captures.count() == len(handles)  # one booking per order
    assert Order.objects.get(pk=captures.first().idempotency_key.split("-")[1]).total == (
        captures.first().amount
    )
