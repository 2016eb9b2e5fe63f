"""Deciders racing for variant stock on PostgreSQL: no variant oversells, and the campaign's
stock stays the sum of its variants' (issue 13)."""

from collections import Counter

import pytest
from django.db.models import Sum
from django.utils import timezone

from catalog.models import Campaign
from devtools.bench_data import buyers_bulk_create, inbox_post
from orders.models import Order
from social.models import Post
from tests.shop import BRAND
from tests.test_concurrency import _race
from tests.variants import TEE, tee_shop

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_four_deciders_never_oversell_a_variant_and_fill_each_exactly():
    totals = {"S": 7, "M": 10, "L": 4}
    tees = tee_shop(totals, per_buyer_limit=3)
    # Per size: more one-unit posts than units (so each size must end exactly full: a unit
    # left over would have gone to one of them), among posts for two and three units.
    asks = [
        f"{units} {size}"
        for size, total in totals.items()
        for units in [1] * (total + 1) + [2] * 20 + [3] * 20
    ]
    now = timezone.now()
    buyers = buyers_bulk_create(prefix="vrace", count=len(asks), now=now)
    order = sorted(range(len(asks)), key=lambda n: (n * 7919) % len(asks))  # interleaved
    Post.objects.bulk_create(
        [
            inbox_post(
                account=tees.shop.account,
                post_id=str(7_000_000 + n),
                author_id=buyers[n].platform_user_id,
                handle=buyers[n].handle,
                text=f"@{BRAND} #{TEE} {asks[n]}",
                posted_at=now,
            )
            for n in order
        ]
    )
    ids = list(Post.objects.order_by("id").values_list("pk", flat=True))

    assert _race(ids, batch=10) == []

    for size, total in totals.items():
        stock = tees.stock(size)
        sold = Order.objects.filter(variant=tees.variants[size]).aggregate(n=Sum("quantity"))["n"]
        assert stock.stock_reserved == sold == total, size
    campaign = Campaign.objects.get(pk=tees.shop.campaign.pk)
    assert campaign.stock_reserved == campaign.stock_total == sum(totals.values())
    outcomes = Counter(Post.objects.values_list("outcome", flat=True))
    # The buyers who found their size gone wait for it (eligible buyers join the waitlist).
    assert set(outcomes) == {"order_created", "waitlisted"}
