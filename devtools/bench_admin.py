"""Measure the order change list at scale: ``manage.py bench_admin_changelist``.

Loads ``orders`` rows (default one million) split between two bench merchants with
``generate_series`` on PostgreSQL, then times the change list through Django's full request path
(middleware, admin, template) as one merchant's staff and as an operator.
"""

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
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
from accounts.services import card_add, cardholder_upsert, operator_upsert, staff_user_upsert
from catalog.models import Campaign, Merchant, Product
from orders.models import Order

BENCH_PREFIX = "bench-"
_PASSWORD = "bench-not-a-login"  # noqa: S105  (the bench logs in with force_login)
_STATUSES = ("delivered", "shipped", "paid", "expired", "cancelled", "declined", "confirmed")

# The generated columns, as SQL over ``g`` (the row number) and the named parameters below.
# Every other NOT NULL column of ``orders_order`` gets its model field's default (see
# ``_insert_sql``), so a new column with a default never breaks the benchmark again.
_GENERATED = {
    "created_at": "%(now)s - make_interval(secs => g)",
    "updated_at": "%(now)s",
    "merchant_id": "CASE WHEN g %% 2 = 0 THEN %(merchant_a)s ELSE %(merchant_b)s END",
    "campaign_id": "CASE WHEN g %% 2 = 0 THEN %(campaign_a)s ELSE %(campaign_b)s END",
    "cardholder_id": "%(cardholder)s",
    "card_id": "%(card)s",
    "platform": "'sandbox'",
    "author_id": "(20000 + g %% 50000)::text",
    "author_handle": "'buyer' || (g %% 50000)",
    "status": "(%(statuses)s::text[])[1 + g %% %(n_statuses)s]",
    "confirmation_code": "'BENCH'",
    "quantity": "1",
    "unit_price": "149.00",
    "subtotal": "149.00",
    "total": "149.00",
    "currency": "'USD'",
    "product_name": "'Bench product'",
    "product_sku": "'BENCH-1'",
    "hashtag": "'BuyBench'",
    "ship_to": "'{}'::jsonb",
}


def _insert_sql(generated: Mapping[str, str] = _GENERATED) -> tuple[str, dict[str, Any]]:
    """The ``INSERT ... SELECT FROM generate_series`` of bench orders, and the parameters of the
    columns it fills with their model defaults (named ``default_<column>``). ``generated`` are
    the columns' SQL over ``g`` (``devtools.bench_sales_report`` brings its own).

    Raises ``RuntimeError`` naming the column when a NOT NULL column has neither a generated
    value nor a default: the bench must be taught about it, not fail with an IntegrityError.
    """
    columns, values, defaults = [], [], {}
    for model_field in Order._meta.concrete_fields:
        column = model_field.column
        if model_field.primary_key:
            continue
        if column in generated:
            columns.append(column)
            values.append(generated[column])
            continue
        if model_field.null:
            continue
        default = model_field.get_default()  # "" for a string field without a default
        if default is None:
            raise RuntimeError(f"bench_admin: no value for NOT NULL column orders_order.{column}")
        columns.append(column)
        values.append(f"%(default_{column})s")
        defaults[f"default_{column}"] = model_field.get_db_prep_save(default, connection)
    # Column names come from the model, expressions from this module: never from input.
    into, select = ", ".join(columns), ", ".join(values)
    series = "generate_series(%(start)s, %(stop)s) AS g"
    sql = f"INSERT INTO orders_order ({into}) SELECT {select} FROM {series}"  # noqa: S608
    return sql, defaults


@dataclass(frozen=True)
class Timing:
    label: str
    median_ms: float
    max_ms: float
    sql_ms: float
    queries: int
    rows_shown: int


@dataclass(frozen=True)
class BenchWorld:
    staff: User
    operator: User
    merchant_a: Merchant


def bench_world_ensure() -> BenchWorld:
    """The bench merchants, campaigns, staff, operator and buyer (created once, then reused)."""
    now = timezone.now()
    merchants = []
    for name in ("a", "b"):
        merchant, _ = Merchant.objects.get_or_create(
            slug=f"{BENCH_PREFIX}{name}", defaults={"name": f"Bench {name.upper()}"}
        )
        product, _ = Product.objects.get_or_create(
            merchant=merchant, sku="BENCH-1", defaults={"name": "Bench product"}
        )
        Campaign.objects.get_or_create(
            product=product,
            hashtag=f"BuyBench{name.upper()}",
            defaults={
                "merchant": merchant,
                "hashtag_key": f"buybench{name}",
                "price": Decimal("149.00"),
                "stock_total": 10,
                "starts_at": now,
                "ends_at": now + timedelta(days=365),
            },
        )
        merchants.append(merchant)
    cardholder = cardholder_upsert(email="bench-buyer@example.com", password=_PASSWORD)
    if not Card.objects.filter(cardholder=cardholder).exists():
        card_add(
            cardholder=cardholder,
            gateway="sandbox",
            token="tok_bench",
            brand="Visa",
            last4="4242",
            exp_month=12,
            exp_year=now.year + 3,
            now=now,
            address={
                "billing_name": "Bench",
                "address_line1": "1 Bench Way",
                "city": "Springfield",
                "state": "IL",
                "postal_code": "62701",
            },
        )
    staff = staff_user_upsert(
        username="bench-staff-a",
        email="bench-staff-a@example.com",
        password=_PASSWORD,
        merchant_id=merchants[0].pk,
    )
    operator = operator_upsert(
        username="bench-operator", email="bench-op@example.com", password=_PASSWORD
    )
    return BenchWorld(staff=staff, operator=operator, merchant_a=merchants[0])


def bench_orders_load(
    *, target: int, progress: Callable[[int, int], None], chunk: int = 100_000
) -> int:
    """Insert bench orders until the bench merchants hold ``target``; returns how many exist."""
    existing = Order.objects.filter(merchant__slug__startswith=BENCH_PREFIX).count()
    merchant_a, merchant_b = Merchant.objects.filter(
        slug__in=[f"{BENCH_PREFIX}a", f"{BENCH_PREFIX}b"]
    ).order_by("slug")
    campaign_a = Campaign.objects.get(merchant=merchant_a)
    campaign_b = Campaign.objects.get(merchant=merchant_b)
    card = Card.objects.get(token="tok_bench")
    now = timezone.now()
    insert, defaults = _insert_sql()
    start = existing
    while start < target:
        stop = min(start + chunk, target)
        with connection.cursor() as cursor:
            cursor.execute(
                insert,
                {
                    **defaults,
                    "now": now,
                    "merchant_a": merchant_a.pk,
                    "merchant_b": merchant_b.pk,
                    "campaign_a": campaign_a.pk,
                    "campaign_b": campaign_b.pk,
                    "cardholder": card.cardholder_id,
                    "card": card.pk,
                    "statuses": list(_STATUSES),
                    "n_statuses": len(_STATUSES),
                    "start": start + 1,
                    "stop": stop,
                },
            )
        start = stop
        progress(start, target)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order")
    return max(existing, target)


def bench_changelist(*, user: User, label: str, params: dict[str, str], repeat: int) -> Timing:
    """Time ``repeat`` requests of the order change list (after one warm-up request)."""
    if not is_mfa_enabled(user):  # the back office admits staff with a second factor only
        TOTP.activate(user, generate_totp_secret())
    client = Client()
    client.force_login(user)
    url = reverse("admin:orders_order_changelist")
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        client.get(url, params)
        times, sql_ms, queries, shown = [], 0.0, 0, 0
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url, params)
                times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{label}: HTTP {response.status_code}")
            queries = len(captured)
            sql_ms = sum(float(q["time"]) for q in captured.captured_queries) * 1000
            context = getattr(response, "context_data", None) or {}
            shown = len(context["cl"].result_list)
    return Timing(
        label=label,
        median_ms=statistics.median(times),
        max_ms=max(times),
        sql_ms=sql_ms,
        queries=queries,
        rows_shown=shown,
    )
