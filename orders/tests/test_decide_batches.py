"""A batch costs the same number of queries whatever its size, and the campaigns kept between
batches are read again as soon as one changes (issue 11, item 3)."""

from collections import Counter
from datetime import timedelta
from decimal import Decimal
from itertools import count
from typing import cast

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Card, Cardholder
from catalog.models import Campaign
from catalog.services import campaign_save, campaign_set_paused
from catalog.tests.factories import CampaignFactory
from devtools.bench_data import BulkBuyer, buyers_bulk_create, inbox_post
from orders.models import Order
from orders.services import posts_decide
from orders.tests.factories import OrderFactory
from social.models import Post, PostKind
from tests.shop import shop_open

pytestmark = pytest.mark.django_db

_ids = count(1)


def _post(shop, author: BulkBuyer | str, text: str, **kwargs) -> Post:
    author_id, handle = (
        (author, "someone") if isinstance(author, str) else (author.platform_user_id, author.handle)
    )
    row = inbox_post(
        account=shop.account,
        post_id=str(900_000 + next(_ids)),
        author_id=author_id,
        handle=handle,
        text=text,
        posted_at=timezone.now(),
        **kwargs,
    )
    row.save()
    return row


def _pending(shop, buyer: BulkBuyer) -> Order:
    order = OrderFactory.create(
        campaign=shop.campaign,
        cardholder=Cardholder.objects.get(pk=buyer.cardholder_id),
        card=Card.objects.get(cardholder_id=buyer.cardholder_id),
        author_id=buyer.platform_user_id,
        author_handle=buyer.handle,
    )
    return cast(Order, order)


def _mixed(shop, buyers: list[BulkBuyer], closed: Campaign, empty: Campaign) -> list[int]:
    """Fourteen posts per four buyers, one of each kind: an order, its duplicate, blocked
    (paused), sold out, closed, not linked (invited), a repost, no campaign, the brand's own
    post, an edit, the confirmation of a pending order, and three near misses."""
    buy = f"@{shop.brand.handle} #{shop.campaign.hashtag}"
    buyer, paused, third, confirming = buyers
    order = _pending(shop, confirming)
    first = _post(shop, buyer, buy)
    late = _post(shop, third, f"@{shop.brand.handle} #{closed.hashtag}")
    posts = [
        first,
        _post(shop, buyer, buy + " again"),
        _post(shop, paused, buy),
        _post(shop, third, f"@{shop.brand.handle} #{empty.hashtag}"),
        late,
        _post(shop, f"stranger{next(_ids)}", buy),
        _post(shop, third, f"RT {buy}", kind=PostKind.REPOST),
        _post(shop, third, f"@{shop.brand.handle} #Kindle #BlackFriday"),
        _post(shop, shop.account.platform_user_id, buy),
        _post(shop, third, buy + " edited", root_id=first.post_id),
        _post(shop, confirming, f"@{shop.brand.handle} #Confirm{order.confirmation_code}"),
        # Near misses (private hints): a code with a space, a split hashtag, a close one.
        _post(shop, confirming, f"@{shop.brand.handle} #Confirm {order.confirmation_code}"),
        _post(shop, third, f"@{shop.brand.handle} #Buy KindleFireHD"),
        _post(shop, paused, f"@{shop.brand.handle} #BuyKindelFireHD"),
    ]
    return [p.pk for p in posts]


def _queries(post_ids: list[int]) -> tuple[int, Counter[str]]:
    with CaptureQueriesContext(connection) as captured:
        outcomes = posts_decide(post_ids=post_ids, now=timezone.now())
    return len(captured.captured_queries), outcomes


def test_a_batch_of_a_hundred_and_forty_posts_costs_as_many_queries_as_a_batch_of_fourteen():
    from accounts.models import PurchaseControls

    shop = shop_open(stock=1000)
    now = timezone.now()
    closed = CampaignFactory(
        starts_at=now - timedelta(days=3), ends_at=now - timedelta(days=2), stock_total=5
    )
    empty = CampaignFactory(stock_total=1)
    Campaign.objects.filter(pk=empty.pk).update(stock_reserved=1)
    buyers = buyers_bulk_create(prefix="q", count=4 * 12, now=now)
    PurchaseControls.objects.filter(
        cardholder_id__in=[b.cardholder_id for b in buyers[1::4]]
    ).update(paused=True)
    groups = [_mixed(shop, buyers[n : n + 4], closed, empty) for n in range(0, len(buyers), 4)]
    _queries(groups[0])  # the first batch reads the campaigns, kept for the next ones

    small, small_outcomes = _queries(groups[1])
    large, large_outcomes = _queries([pk for group in groups[2:12] for pk in group])

    assert (
        set(small_outcomes)
        == set(large_outcomes)
        == {
            "order_created",
            "duplicate",
            "blocked",
            "waitlisted",
            "campaign_closed",
            "not_linked",
            "ignored_repost",
            "no_campaign",
            "ignored_own",
            "ignored_edit",
            "confirmed",
            "near_miss",
        }
    )
    assert large_outcomes["near_miss"] == 10 * small_outcomes["near_miss"] == 30
    assert sum(large_outcomes.values()) == 10 * sum(small_outcomes.values()) == 140
    assert small == large
    # Every new order was taxed (Illinois, the bench buyers' state) from rates read once a batch.
    created = Order.objects.exclude(purchase_post=None)
    assert created.count() == 12
    assert set(created.values_list("tax_total", flat=True)) == {Decimal("9.31")}


@pytest.mark.postgres
def test_a_campaign_created_paused_or_ended_is_seen_by_the_next_batch():
    shop = shop_open(stock=100)
    buyers = buyers_bulk_create(prefix="c", count=4, now=timezone.now())

    def decide(buyer: BulkBuyer, hashtag: str) -> str:
        row = _post(shop, buyer, f"@{shop.brand.handle} #{hashtag}")
        [outcome] = posts_decide(post_ids=[row.pk], now=timezone.now())
        return outcome

    assert decide(buyers[0], "BuyNewThing") == "no_campaign"  # the campaigns are now kept
    campaign = CampaignFactory(hashtag="BuyNewThing", stock_total=10)
    assert decide(buyers[1], "BuyNewThing") == "order_created"

    campaign_set_paused(campaign_ids=[campaign.pk], paused=True)
    assert decide(buyers[2], "BuyNewThing") == "campaign_closed"

    campaign_set_paused(campaign_ids=[campaign.pk], paused=False)
    campaign.refresh_from_db()
    campaign.ends_at = timezone.now() - timedelta(seconds=1)
    campaign.starts_at = campaign.ends_at - timedelta(days=1)
    campaign_save(campaign=campaign, now=timezone.now())
    assert decide(buyers[3], "BuyNewThing") == "campaign_closed"
