"""Measure the sales report at scale: ``manage.py bench_sales_report``.

Loads ``orders`` bench orders (default one million) split between two merchants, each with a
sandbox and a Mastodon campaign, placed over the last ``DAYS`` days in every status a sale goes
through (through ``devtools.bench_admin``'s ``INSERT … SELECT generate_series``); refunds for
the refunded ones (on the fifth day after), audit rows for the cancelled and refunded ones (with
the furthest stage they show: ``Order.furthest_stage``), a few failed captures, and 1.25
purchase posts per order. Then it times the report through Django's full request path
(middleware, admin, template) as one merchant's staff and as an operator, for a 30-day and a
365-day range. Rows are kept for the next run.
"""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from allauth.mfa.utils import is_mfa_enabled
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import Card, User
from accounts.services import operator_upsert, staff_user_upsert
from catalog.models import Campaign, Merchant, Product
from devtools.bench_admin import _SERIES, _insert_sql, bench_world_ensure
from orders.models import Order
from social.models import PlatformAccount, Post

PREFIX = "benchsales"
DAYS = 400
_PASSWORD = "bench-not-a-login"  # noqa: S105  (the bench logs in with force_login)
PLATFORMS = ("sandbox", "mastodon")
# Statuses in turn (no pending: confirmation codes of pending orders must be unique). The
# first two never had a confirmation time.
STATUSES = (
    "expired",
    "expired",
    "confirmed",
    "authentication_required",
    "declined",
    "cancelled",
    "cancelled",
    "paid",
    "paid",
    "shipped",
    "shipped",
    *["delivered"] * 7,
    "partially_refunded",
    "refunded",
)
PURCHASE_OUTCOMES = (*["order_created"] * 8, "waitlisted", "sold_out")
# A row's pseudo-random bits (Knuth's multiplicative hash of the row number), so that merchant,
# campaign, status and quantity do not follow the day.
_H = "((g::bigint * 2654435761) %% 4294967296)"
_QUANTITY = f"(1 + ({_H} / 80) %% 3)"
_ORDER_COLUMNS = {
    "created_at": (
        "%(now)s - make_interval(days => (g %% %(days)s)::int, "
        "secs => ((g::bigint * 7919) %% 86400)::int)"
    ),
    "updated_at": "%(now)s",
    # Campaigns in the order [a sandbox, b sandbox, a mastodon, b mastodon]: the merchant is
    # the hash's lowest bit, the platform the next.
    "merchant_id": f"(%(merchants)s::bigint[])[1 + {_H} %% 2]",
    "campaign_id": f"(%(campaigns)s::bigint[])[1 + {_H} %% 4]",
    "platform": f"(%(platforms)s::text[])[1 + ({_H} / 2) %% 2]",
    "cardholder_id": "%(cardholder)s",
    "card_id": "%(card)s",
    "author_id": "(20000 + g %% 50000)::text",
    "author_handle": "'buyer' || (g %% 50000)",
    "status": f"(%(statuses)s::text[])[1 + ({_H} / 4) %% %(n_statuses)s]",
    "confirmed_at": (
        f"CASE WHEN ({_H} / 4) %% %(n_statuses)s < 2 THEN NULL "
        "ELSE %(now)s - make_interval(days => (g %% %(days)s)::int) END"
    ),
    "confirmation_code": "'BENCH'",
    # The stage its status shows (``Order.furthest_stage``); ``_STAGES_SQL`` raises the cancelled
    # and refunded ones that went further, as their audit rows say.
    "furthest_stage": (
        f"CASE (%(statuses)s::text[])[1 + ({_H} / 4) %% %(n_statuses)s] "
        "WHEN 'paid' THEN 1 WHEN 'shipped' THEN 2 WHEN 'delivered' THEN 3 "
        "WHEN 'partially_refunded' THEN 2 WHEN 'refunded' THEN 2 ELSE 0 END"
    ),
    "quantity": _QUANTITY,
    "unit_price": "149.00",
    "subtotal": f"149.00 * {_QUANTITY}",
    "tax_total": f"9.31 * {_QUANTITY}",
    "total": f"158.31 * {_QUANTITY}",
    "currency": "'USD'",
    "product_name": "'Bench product'",
    "product_sku": "'BENCH-SALES'",
    "hashtag": "'BuyBenchSales'",
    "ship_to": "'{}'::jsonb",
}


@dataclass(frozen=True)
class SalesWorld:
    staff: User
    operator: User
    merchants: list[Merchant]
    # [a sandbox, b sandbox, a mastodon, b mastodon]
    campaigns: list[Campaign]


@dataclass(frozen=True)
class ReportTiming:
    label: str
    median_ms: float
    max_ms: float
    # CPU time of the request in this process (the test client runs the server here): what
    # rendering costs whatever else the machine runs; the database's own work is ``sql_ms``.
    cpu_median_ms: float
    sql_ms: float
    queries: int
    rows: int


def sales_world_ensure() -> SalesWorld:
    """The two merchants (the first in New York), their campaigns, the first's staff and an
    operator (created once, then reused)."""
    bench_world_ensure()  # the bench cardholder and card that the orders belong to
    now = timezone.now()
    merchants = []
    for name in ("a", "b"):
        merchant, _ = Merchant.objects.get_or_create(
            slug=f"{PREFIX}-{name}",
            defaults={"name": f"Sales bench {name.upper()}", "time_zone": "America/New_York"},
        )
        merchants.append(merchant)
    campaigns: list[Campaign] = []
    for platform in PLATFORMS:
        for merchant in merchants:
            product, _ = Product.objects.get_or_create(
                merchant=merchant, sku="BENCH-SALES", defaults={"name": "Bench product"}
            )
            hashtag = f"BuyBenchSales{merchant.slug[-1].upper()}{platform.title()}"
            campaign, _ = Campaign.objects.get_or_create(
                product=product,
                hashtag=hashtag,
                platform=platform,
                defaults={
                    "merchant": merchant,
                    "hashtag_key": hashtag.lower(),
                    "price": Decimal("149.00"),
                    "stock_total": 10_000_000,
                    "starts_at": now - timedelta(days=DAYS + 1),
                    "ends_at": now + timedelta(days=300),
                },
            )
            campaigns.append(campaign)
    staff = staff_user_upsert(
        username=f"{PREFIX}-staff",
        email=f"{PREFIX}-staff@example.com",
        password=_PASSWORD,
        merchant_id=merchants[0].pk,
    )
    operator = operator_upsert(
        username=f"{PREFIX}-operator", email=f"{PREFIX}-op@example.com", password=_PASSWORD
    )
    return SalesWorld(staff=staff, operator=operator, merchants=merchants, campaigns=campaigns)


def sales_orders_load(
    *, world: SalesWorld, target: int, progress: Callable[[str, int, int], None]
) -> int:
    """Insert bench orders until the two merchants hold ``target``, then the refunds, audit
    rows, failed captures and purchase posts of the new ones; returns how many orders exist."""
    merchant_ids = [m.pk for m in world.merchants]
    existing = Order.objects.filter(merchant_id__in=merchant_ids).count()
    before = Order.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    card = Card.objects.get(token="tok_bench")
    now = timezone.now()
    insert, defaults = _insert_sql(Order, _ORDER_COLUMNS, _SERIES)
    start, chunk = existing, 100_000
    while start < target:
        stop = min(start + chunk, target)
        with connection.cursor() as cursor:
            cursor.execute(
                insert,
                {
                    **defaults,
                    "now": now,
                    "days": DAYS,
                    "merchants": merchant_ids,
                    "campaigns": [c.pk for c in world.campaigns],
                    "platforms": list(PLATFORMS),
                    "cardholder": card.cardholder_id,
                    "card": card.pk,
                    "statuses": list(STATUSES),
                    "n_statuses": len(STATUSES),
                    "start": start + 1,
                    "stop": stop,
                },
            )
        start = stop
        progress("orders", start, target)
    if target > existing:
        _after_sale_rows_load(merchant_ids=merchant_ids, after_id=before)
        progress("refunds, audit rows and captures", 1, 1)
        for campaign in world.campaigns:
            _posts_load(campaign=campaign, count=(target - existing) * 5 // 16, now=now)
            progress(f"posts of #{campaign.hashtag}", 1, 1)
    # VACUUM sets the visibility map that index-only scans need (autovacuum would, later); it
    # cannot run inside a transaction (the test of this command), where ANALYZE does.
    command = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
    with connection.cursor() as cursor:
        for table in ("orders_order", "orders_refund", "orders_orderevent", "social_post"):
            cursor.execute(f"{command} {table}")
    return max(existing, target)


# Audit rows of the orders whose stage the report reads from them: a cancelled order was paid
# (every other one), a refunded one delivered (every other one). Three more rows each, as an
# order's trail holds, so that each lookup reads a realistic trail.
_EVENTS_SQL = """
INSERT INTO orders_orderevent (order_id, created_at, kind, from_status, to_status, actor_label,
                               data)
SELECT o.id, o.created_at, k.kind, '', '', 'bench', '{}'::jsonb
FROM orders_order o,
     unnest(CASE WHEN o.status = 'cancelled' THEN
                ARRAY['created', 'confirmed',
                      CASE WHEN o.id %% 2 = 0 THEN 'paid' ELSE 'authentication_required' END,
                      'cancelled']
            ELSE
                ARRAY['created', 'confirmed', 'paid', 'shipped',
                      CASE WHEN o.id %% 2 = 0 THEN 'delivered' ELSE 'refund_requested' END]
            END) AS k(kind)
WHERE o.merchant_id = ANY(%(merchants)s) AND o.id > %(after)s
  AND o.status IN ('cancelled', 'refunded', 'partially_refunded')
"""
# The stage the audit rows above show (a cancelled order paid, a refunded one delivered), as the
# transitions wrote it.
_STAGES_SQL = """
UPDATE orders_order o SET furthest_stage = CASE WHEN o.status = 'cancelled' THEN 1 ELSE 3 END
FROM orders_orderevent e
WHERE o.merchant_id = ANY(%(merchants)s) AND o.id > %(after)s AND e.order_id = o.id
  AND ((o.status = 'cancelled' AND e.kind = 'paid')
       OR (o.status IN ('refunded', 'partially_refunded') AND e.kind = 'delivered'))
"""
# Refunds go through on the fifth day after the order; a partial one gives back 10.00.
_REFUNDS_SQL = """
INSERT INTO orders_refund (created_at, updated_at, order_id, number, amount, reason,
                           actor_label, restock, status, idempotency_key, reference, succeeded_at)
SELECT o.created_at + interval '5 days', o.created_at + interval '5 days', o.id, 1,
       CASE WHEN o.status = 'refunded' THEN o.total ELSE 10.00 END, 'bench', 'system', false,
       'succeeded', 'bench-sales-' || o.id, '', o.created_at + interval '5 days'
FROM orders_order o
WHERE o.merchant_id = ANY(%(merchants)s) AND o.id > %(after)s
  AND o.status IN ('refunded', 'partially_refunded')
"""
# The money given back, on the orders, as the refund service records it (``order_refunded_idx``
# holds the orders with some).
_REFUNDED_TOTALS_SQL = """
UPDATE orders_order o SET refund_requested_total = r.amount, refunded_total = r.amount
FROM orders_refund r
WHERE o.merchant_id = ANY(%(merchants)s) AND o.id > %(after)s AND r.order_id = o.id
  AND r.status = 'succeeded'
"""
# One shipped order in a thousand has its capture failed: open rows of the payment outbox.
_CAPTURES_SQL = """
INSERT INTO orders_paymentoperation (created_at, updated_at, order_id, operation,
                                     idempotency_key, status, attempts, result, reference,
                                     last_error)
SELECT o.created_at, o.created_at, o.id, 'capture', 'bench-sales-capture-' || o.id, 'failed',
       5, '', '', 'bench'
FROM orders_order o
WHERE o.merchant_id = ANY(%(merchants)s) AND o.id > %(after)s AND o.status = 'shipped'
  AND o.id %% 1000 = 0
"""


def _after_sale_rows_load(*, merchant_ids: list[int], after_id: int) -> None:
    params: dict[str, Any] = {"merchants": merchant_ids, "after": after_id}
    with connection.cursor() as cursor:
        for sql in (_EVENTS_SQL, _STAGES_SQL, _REFUNDS_SQL, _REFUNDED_TOTALS_SQL, _CAPTURES_SQL):
            cursor.execute(sql, params)


def _posts_load(*, campaign: Campaign, count: int, now: datetime) -> None:
    """``count`` more decided purchase posts of ``campaign`` over the last ``DAYS`` days, each
    a copy of a template row stored through the ORM with the varying columns overridden (so
    columns added later get their defaults)."""
    account, _ = PlatformAccount.objects.get_or_create(
        platform=campaign.platform,
        platform_user_id=f"{PREFIX}-brand",
        defaults={"handle": "benchsalesbrand"},
    )
    prefix = f"{PREFIX}-{campaign.pk}"
    template, _ = Post.objects.get_or_create(
        platform=campaign.platform,
        post_id=f"{prefix}-template",
        defaults={
            "account": account,
            "root_id": f"{prefix}-template",
            "author_id": "0",
            "author_handle": "buyer0",
            "text": f"@benchsalesbrand #{campaign.hashtag}",
            "hashtags": [campaign.hashtag],
            "posted_at": timezone.now(),
            "outcome": "no_campaign",
            "decided_at": timezone.now(),
        },
    )
    first = Post.objects.filter(platform=campaign.platform, post_id__startswith=prefix).count()
    varying = {
        "post_id": "%(prefix)s || '-' || g",
        "root_id": "%(prefix)s || '-' || g",
        "author_id": "(g %% 100000)::text",
        "author_handle": "'buyer' || (g %% 100000)",
        "posted_at": (
            "%(now)s - make_interval(days => (g %% %(days)s)::int, "
            "secs => ((g::bigint * 7919) %% 86400)::int)"
        ),
        "outcome": f"(%(outcomes)s::text[])[1 + ({_H} / 8) %% %(n_outcomes)s]",
        "campaign_id": "%(campaign)s",
    }
    columns = [str(f.column) for f in Post._meta.concrete_fields if not f.primary_key]
    quoted = ", ".join(map(connection.ops.quote_name, columns))
    select = ", ".join(varying.get(c, f"t.{connection.ops.quote_name(c)}") for c in columns)
    # Names from the model, values as parameters: nothing here comes from outside.
    sql = (
        f"INSERT INTO {Post._meta.db_table} ({quoted}) "  # noqa: S608
        f"SELECT {select} FROM {Post._meta.db_table} t, generate_series(%(first)s, %(last)s) g "
        "WHERE t.id = %(template)s"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "prefix": prefix,
                "now": now,
                "days": DAYS,
                "outcomes": list(PURCHASE_OUTCOMES),
                "n_outcomes": len(PURCHASE_OUTCOMES),
                "campaign": campaign.pk,
                "template": template.pk,
                "first": first,
                "last": first + count - 1,
            },
        )


def bench_report(*, user: User, label: str, params: dict[str, str], repeat: int) -> ReportTiming:
    """Time ``repeat`` requests of the sales report page (after one warm-up request)."""
    if not is_mfa_enabled(user):  # the back office admits staff with a second factor only
        TOTP.activate(user, generate_totp_secret())
    client = Client()
    client.force_login(user)
    url = reverse("admin:orders_sales_report")
    times, cpu, sql_ms, queries, rows = [], [], 0.0, 0, 0
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        client.get(url, params)
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as captured:
                started, started_cpu = time.perf_counter(), time.process_time()
                response = client.get(url, params)
                times.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{label}: HTTP {response.status_code}")
            queries = len(captured)
            sql_ms = sum(float(q["time"]) for q in captured.captured_queries) * 1000
            context = getattr(response, "context_data", None) or {}
            report = context.get("report")
            # The CSV's lines less its header and totals (one per currency: one here).
            rows = len(report.rows) if report else response.content.count(b"\n") - 2
    return ReportTiming(
        label=label,
        median_ms=statistics.median(times),
        max_ms=max(times),
        cpu_median_ms=statistics.median(cpu),
        sql_ms=sql_ms,
        queries=queries,
        rows=rows,
    )
