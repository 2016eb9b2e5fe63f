"""The campaign dashboard counts from indexed data, whatever the rest of the inbox holds (issue 10,
item 18), and its benchmark runs."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from catalog.tests.factories import CampaignFactory
from orders.dashboard import campaign_dashboard
from social.models import Post
from social.tests.factories import PlatformAccountFactory, PostFactory
from tests.shop import BRAND, buyer_ready, post, shop_open, tick

pytestmark = pytest.mark.django_db


def _funnel(campaign) -> dict[str, int]:
    return {name: count for name, count, _, _ in campaign_dashboard(campaign).funnel}


def test_a_decided_purchase_post_records_its_campaign_and_is_counted():
    shop = shop_open()
    buyer_ready("alice")
    bought = post("alice", f"@{BRAND} #BuyKindleFireHD")
    stranger = post("mallory", f"@{BRAND} #BuyKindleFireHD")  # not linked: not a purchase
    other = post("alice", f"@{BRAND} #SomethingElse")
    tick()
    stored = {p.post_id: p for p in Post.objects.all()}
    assert stored[str(bought.pk)].outcome == "order_created"
    assert stored[str(bought.pk)].campaign_id == shop.campaign.pk
    assert stored[str(stranger.pk)].campaign_id == shop.campaign.pk
    assert stored[str(other.pk)].campaign_id is None
    assert _funnel(shop.campaign)["purchase posts"] == 1


def _post_rows_read() -> int:
    """Rows of the inbox read so far in this transaction, by scans and through indexes."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
            "FROM pg_stat_xact_user_tables WHERE relname = %s",
            [Post._meta.db_table],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


@pytest.mark.postgres
def test_the_dashboard_reads_none_of_the_other_merchants_posts():
    now = timezone.now()
    campaign = CampaignFactory(starts_at=now - timedelta(days=2), ends_at=now + timedelta(days=5))
    other = CampaignFactory(
        hashtag="BuyTheOtherThing",
        starts_at=now - timedelta(days=2),
        ends_at=now + timedelta(days=5),
    )
    account = PlatformAccountFactory()
    posted = now - timedelta(hours=1)

    def posts(n, **fields):
        base = Post.objects.count()
        Post.objects.bulk_create(
            PostFactory.build(
                account=account,
                post_id=f"d{base + i}",
                root_id=f"d{base + i}",
                posted_at=posted,
                decided_at=now,
                **fields,
            )
            for i in range(n)
        )

    posts(5, outcome="order_created", campaign_id=campaign.pk, hashtags=[campaign.hashtag])
    # Another merchant's flash sale in the same hours, on the same platform, and posts of none.
    posts(4000, outcome="sold_out", campaign_id=other.pk, hashtags=[other.hashtag])
    posts(1000, outcome="no_campaign", hashtags=["Hello"])
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Post._meta.db_table}")

    before = _post_rows_read()
    assert _funnel(campaign)["purchase posts"] == 5
    read = _post_rows_read() - before
    assert read <= 5


@pytest.mark.postgres
def test_bench_dashboard_runs_at_a_tiny_size():
    out = StringIO()
    call_command(
        "bench_dashboard",
        "--posts=400",
        "--own-posts=40",
        "--own-orders=20",
        "--repeat=1",
        stdout=out,
    )
    text = out.getvalue()
    assert "inbox: 400 posts of another merchant, 40 of the measured campaign" in text
    assert "dashboard: median" in text


def test_the_chart_draws_the_last_two_days_of_a_long_campaign_and_the_funnel_all_of_it():
    from orders.dashboard import CHART_HOURS
    from orders.models import Order
    from orders.tests.factories import OrderFactory

    # Mid-hour: a run in the first minute of an hour put the newest order in the hour before
    # the chart's first bar, and saw one bar fewer.
    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    campaign = CampaignFactory(
        stock_total=500, starts_at=now - timedelta(days=90), ends_at=now + timedelta(days=9)
    )
    orders = OrderFactory.create_batch(24 * 4, campaign=campaign, status="expired")
    for n, order in enumerate(orders):  # one an hour, for the last four days
        order.created_at = now - timedelta(hours=n, minutes=1)
    Order.objects.bulk_update(orders, ["created_at"])
    dashboard = campaign_dashboard(campaign, now=now)
    assert len(dashboard.bars) == CHART_HOURS
    assert _funnel(campaign)["orders (pending)"] == len(orders)
