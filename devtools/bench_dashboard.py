"""Measure the campaign dashboard beside a huge inbox: ``manage.py bench_dashboard``.

The dashboard of one merchant's campaign must cost what that campaign holds, not what the inbox
holds (issue 10, item 18). This loads ``other`` inbox posts of another merchant's campaign (default
ten million, posted inside the measured campaign's window, on the same platform, three in four of
them decided purchase posts) with ``INSERT … SELECT generate_series`` on PostgreSQL, a few
thousand posts and orders of the measured campaign, and times the dashboard through Django's full
request path (middleware, admin, template) as the merchant's staff. Rows are kept for the next run.

Every inserted post copies a template row stored through the ORM and overrides only the columns
that vary, so columns added to the inbox later are filled with their own defaults.
"""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from allauth.mfa.utils import is_mfa_enabled
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import Card, User
from accounts.services import staff_user_upsert
from catalog.models import Campaign, Merchant, Product
from devtools.bench_admin import bench_world_ensure
from orders.models import Order
from social.models import PlatformAccount, Post

PREFIX = "benchdash"
WINDOW_DAYS = 30
_PASSWORD = "bench-not-a-login"  # noqa: S105  (the bench logs in with force_login)
# Outcomes of the loaded posts, in turn: three purchase outcomes and one post of no campaign.
_OUTCOMES = ("sold_out", "order_created", "blocked", "no_campaign")
_STATUSES = ("delivered", "shipped", "paid", "expired", "cancelled", "declined", "confirmed")

# Columns that vary per row; every other column is copied from the template row.
_VARYING = {
    "post_id": "%(prefix)s || '-' || g",
    "root_id": "%(prefix)s || '-' || g",
    "author_id": "(g %% 100000)::text",
    "author_handle": "'buyer' || (g %% 100000)",
    "posted_at": "%(start)s + make_interval(secs => ((g::bigint * 7919) %% %(window)s)::int)",
    "outcome": "(%(outcomes)s::text[])[1 + g %% 4]",
    "campaign_id": "CASE WHEN g %% 4 = 3 THEN NULL ELSE %(campaign)s END",
}


@dataclass(frozen=True)
class DashboardWorld:
    staff: User
    campaign: Campaign
    other_campaign: Campaign
    account: PlatformAccount


@dataclass(frozen=True)
class DashboardTiming:
    median_ms: float
    max_ms: float
    # CPU time of the request (the test client runs the server in this process): what the
    # request costs whatever else the machine runs; the database's own work is ``sql_ms``.
    cpu_median_ms: float
    sql_ms: float
    queries: int
    purchase_posts: int


def _campaign(slug: str, hashtag: str) -> Campaign:
    now = timezone.now()
    merchant, _ = Merchant.objects.get_or_create(
        slug=f"{PREFIX}-{slug}", defaults={"name": f"Dashboard bench {slug}"}
    )
    product, _ = Product.objects.get_or_create(
        merchant=merchant, sku="BENCH-DASH", defaults={"name": "Bench product"}
    )
    campaign, _ = Campaign.objects.get_or_create(
        product=product,
        hashtag=hashtag,
        defaults={
            "merchant": merchant,
            "platform": "sandbox",
            "hashtag_key": hashtag.lower(),
            "price": Decimal("149.00"),
            "stock_total": 1_000_000,
            "starts_at": now - timedelta(days=WINDOW_DAYS),
            "ends_at": now + timedelta(days=300),
        },
    )
    return campaign


def dashboard_world_ensure() -> DashboardWorld:
    """The measured merchant and campaign, another merchant's campaign, a brand account and the
    measured merchant's staff (created once, then reused)."""
    bench_world_ensure()  # the bench cardholder and card that the orders belong to
    campaign = _campaign("own", "BuyBenchDashOwn")
    other = _campaign("other", "BuyBenchDashOther")
    account, _ = PlatformAccount.objects.get_or_create(
        platform="sandbox", platform_user_id=f"{PREFIX}-brand", defaults={"handle": "benchbrand"}
    )
    staff = staff_user_upsert(
        username=f"{PREFIX}-staff",
        email=f"{PREFIX}-staff@example.com",
        password=_PASSWORD,
        merchant_id=campaign.merchant_id,
    )
    return DashboardWorld(staff=staff, campaign=campaign, other_campaign=other, account=account)


def _template_post(account: PlatformAccount, prefix: str, hashtag: str) -> Post:
    post, _ = Post.objects.get_or_create(
        platform=account.platform,
        post_id=f"{prefix}-template",
        defaults={
            "account": account,
            "root_id": f"{prefix}-template",
            "author_id": "0",
            "author_handle": "buyer0",
            "text": f"@benchbrand #{hashtag}",
            "hashtags": [hashtag],
            "posted_at": timezone.now() - timedelta(days=WINDOW_DAYS),
            "outcome": "no_campaign",
            "decided_at": timezone.now(),
        },
    )
    return post


def posts_load(
    *,
    world: DashboardWorld,
    campaign: Campaign,
    target: int,
    progress: Callable[[int, int], None],
    chunk: int = 500_000,
) -> int:
    """Insert inbox posts of ``campaign`` until it has ``target`` (the template row aside);
    returns how many it has. One statement per ``chunk`` rows, each committed on its own."""
    prefix = f"{PREFIX}-{campaign.pk}"
    template = _template_post(world.account, prefix, campaign.hashtag)
    existing = Post.objects.filter(post_id__startswith=f"{prefix}-").count() - 1
    columns = [str(f.column) for f in Post._meta.concrete_fields if not f.primary_key]
    quoted = ", ".join(map(connection.ops.quote_name, columns))
    select = ", ".join(_VARYING.get(c, f"t.{connection.ops.quote_name(c)}") for c in columns)
    # Names from the model, values as parameters: nothing here comes from outside.
    sql = (
        f"INSERT INTO {Post._meta.db_table} ({quoted}) "  # noqa: S608
        f"SELECT {select} FROM {Post._meta.db_table} t, generate_series(%(first)s, %(last)s) g "
        "WHERE t.id = %(template)s"
    )
    start = existing
    while start < target:
        stop = min(start + chunk, target)
        with connection.cursor() as cursor:
            cursor.execute(
                sql,
                {
                    "prefix": prefix,
                    "start": campaign.starts_at,
                    "window": WINDOW_DAYS * 86400,
                    "outcomes": list(_OUTCOMES),
                    "campaign": campaign.pk,
                    "template": template.pk,
                    "first": start + 1,
                    "last": stop,
                },
            )
        start = stop
        progress(start, target)
    return max(existing, target)


def orders_load(*, campaign: Campaign, target: int) -> int:
    """Give ``campaign`` ``target`` orders spread over the last days (none pending, so that no
    confirmation code has to be unique); returns how many it has."""
    existing = Order.objects.filter(campaign=campaign).count()
    card = Card.objects.get(token="tok_bench")
    now = timezone.now()
    orders = [
        Order(
            merchant_id=campaign.merchant_id,
            campaign=campaign,
            cardholder_id=card.cardholder_id,
            card=card,
            platform="sandbox",
            author_id=str(n),
            author_handle=f"buyer{n}",
            status=_STATUSES[n % len(_STATUSES)],
            confirmation_code="BENCH",
            unit_price=campaign.price,
            subtotal=campaign.price,
            total=campaign.price,
            currency=campaign.currency,
            product_name="Bench product",
            product_sku="BENCH-DASH",
            hashtag=campaign.hashtag,
        )
        for n in range(existing, target)
    ]
    created = Order.objects.bulk_create(orders, batch_size=2000)
    # Spread over the hours of the last days, so that the chart has bars.
    for n, order in enumerate(created):
        order.created_at = now - timedelta(minutes=7 * n % (WINDOW_DAYS * 1440))
    Order.objects.bulk_update(created, ["created_at"], batch_size=2000)
    return max(existing, target)


def analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Post._meta.db_table}")
        cursor.execute(f"ANALYZE {Order._meta.db_table}")


def bench_dashboard(*, world: DashboardWorld, repeat: int) -> DashboardTiming:
    """Time ``repeat`` requests of the campaign's dashboard (after one warm-up request)."""
    from orders.dashboard import purchase_posts

    if not is_mfa_enabled(world.staff):  # the back office admits staff with a second factor
        TOTP.activate(world.staff, generate_totp_secret())
    client = Client()
    client.force_login(world.staff)
    url = reverse("admin:orders_campaign_dashboard", args=[world.campaign.pk])
    times, cpu, sql_ms, queries = [], [], 0.0, 0
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        client.get(url)
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as captured:
                started, started_cpu = time.perf_counter(), time.process_time()
                response = client.get(url)
                times.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"dashboard: HTTP {response.status_code}")
            queries = len(captured)
            sql_ms = sum(float(q["time"]) for q in captured.captured_queries) * 1000
    return DashboardTiming(
        median_ms=statistics.median(times),
        max_ms=max(times),
        cpu_median_ms=statistics.median(cpu),
        sql_ms=sql_ms,
        queries=queries,
        purchase_posts=purchase_posts(world.campaign),
    )
