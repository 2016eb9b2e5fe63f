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
from zoneinfo import ZoneInfo

from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from allauth.mfa.utils import is_mfa_enabled
from django.db import connection
from django.db.models import Max, Min, Model
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import Card, Cardholder, User
from accounts.services import card_add, cardholder_upsert, operator_upsert, staff_user_upsert
from catalog.models import Campaign, Merchant, Product
from core.codes import CONFIRMATION_CODE
from orders.models import Order
from social.models import PlatformAccount, Post

BENCH_PREFIX = "bench-"
_PASSWORD = "bench-not-a-login"  # noqa: S105  (the bench logs in with force_login)
_STATUSES = ("delivered", "shipped", "paid", "expired", "cancelled", "declined", "confirmed")
# Buyers of the bench orders, as the support search sees them: order ``g`` is bought by buyer
# ``g % BUYERS`` (their handle, e-mail and card) through an X post whose id is
# ``X_POST_BASE + g``, and has the code ``bench_code(g)``. Orders are a minute apart, the
# newest (highest id) last: a million orders span about two years.
BUYERS = 2_000
X_POST_BASE = 1_800_000_000_000_000_000
_MINUTE = 60
# A multiplier prime to 31**5: codes look scattered, and are distinct for the first 31**5 rows.
_CODE_STEP = 7919
_CODE_SPACE = len(CONFIRMATION_CODE.alphabet)


def bench_code(g: int) -> str:
    """The confirmation code of bench order ``g`` (as ``_CODE_SQL`` computes it)."""
    n = (g * _CODE_STEP) % _CODE_SPACE**CONFIRMATION_CODE.length
    alphabet = CONFIRMATION_CODE.alphabet
    return "".join(
        alphabet[(n // _CODE_SPACE**i) % _CODE_SPACE] for i in range(CONFIRMATION_CODE.length)
    )


def bench_last4(buyer: int) -> str:
    return f"{(buyer * 37) % 10_000:04d}"


def bench_email(buyer: int) -> str:
    return f"bench-buyer-{buyer}@example.com"


_CODE_SQL = " || ".join(
    f"substr(%(alphabet)s::text, (1 + ((g::bigint * {_CODE_STEP}) %% {_CODE_SPACE**5}"
    f" / {_CODE_SPACE**i}) %% {_CODE_SPACE})::int, 1)"
    for i in range(5)
)

# The generated columns, as SQL over ``g`` (the row number) and the named parameters below.
# Every other NOT NULL column of ``orders_order`` gets its model field's default (see
# ``_insert_sql``), so a new column with a default never breaks the benchmark again.
_GENERATED = {
    "created_at": "%(now)s - make_interval(secs => (%(target)s - g)::double precision * 60)",
    "updated_at": "%(now)s",
    "merchant_id": "CASE WHEN g %% 2 = 0 THEN %(merchant_a)s ELSE %(merchant_b)s END",
    "campaign_id": "CASE WHEN g %% 2 = 0 THEN %(campaign_a)s ELSE %(campaign_b)s END",
    "cardholder_id": "(%(cardholders)s::bigint[])[1 + g %% %(buyers)s]",
    "card_id": "(%(cards)s::bigint[])[1 + g %% %(buyers)s]",
    "purchase_post_id": "p.id",
    "platform": "'x'",
    "author_id": "(20000 + g %% %(buyers)s)::text",
    "author_handle": "'buyer' || (g %% %(buyers)s)",
    "status": "(%(statuses)s::text[])[1 + g %% %(n_statuses)s]",
    "confirmation_code": _CODE_SQL,
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
# The purchase posts, one per order, inserted first (same ``g``).
_POST_ID_SQL = "(%(post_base)s::bigint + g)::text"
_GENERATED_POSTS = {
    "platform": "'x'",
    "account_id": "%(account)s",
    "post_id": _POST_ID_SQL,
    "root_id": _POST_ID_SQL,
    "author_id": "(20000 + g %% %(buyers)s)::text",
    "author_handle": "'buyer' || (g %% %(buyers)s)",
    "text": "'@benchbrand #BuyBench'",
    "posted_at": "%(now)s - make_interval(secs => (%(target)s - g)::double precision * 60)",
    "received_at": "%(now)s",
    "outcome": "'order_created'",
    "decided_at": "%(now)s",
}
_SERIES = "generate_series(%(start)s, %(stop)s) AS g"
_ORDER_SOURCE = f"{_SERIES} JOIN social_post p ON p.platform = 'x' AND p.post_id = {_POST_ID_SQL}"


def _insert_sql(
    model: type[Model] = Order, generated: Mapping[str, str] = _GENERATED, source: str = ""
) -> tuple[str, dict[str, Any]]:
    """The ``INSERT ... SELECT FROM generate_series`` of bench rows of ``model`` (orders by
    default), and the parameters of the columns it fills with their model defaults (named
    ``default_<column>``). ``generated`` are the columns' SQL over ``g``
    (``devtools.bench_sales_report`` brings its own); ``source`` the FROM clause (bench orders
    join their purchase posts by default).

    Raises ``RuntimeError`` naming the column when a NOT NULL column has neither a generated
    value nor a default: the bench must be taught about it, not fail with an IntegrityError.
    """
    columns, values, defaults = [], [], {}
    table = model._meta.db_table
    for model_field in model._meta.concrete_fields:
        column = str(model_field.column)
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
            raise RuntimeError(f"bench_admin: no value for NOT NULL column {table}.{column}")
        columns.append(column)
        values.append(f"%(default_{column})s")
        defaults[f"default_{column}"] = model_field.get_db_prep_save(default, connection)
    # Column names come from the model, expressions from this module: never from input.
    into, select = ", ".join(columns), ", ".join(values)
    source = source or (_ORDER_SOURCE if model is Order else _SERIES)
    sql = f"INSERT INTO {table} ({into}) SELECT {select} FROM {source}"  # noqa: S608
    return sql, defaults


@dataclass(frozen=True)
class Timing:
    label: str
    median_ms: float
    max_ms: float
    sql_ms: float
    queries: int
    rows_shown: int
    # The plan of the page's query (``EXPLAIN ANALYZE``), when asked for.
    plan: str = ""


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


_BUYER_USERNAME = "'bench-buyer-' || g"
_GENERATED_USERS = {
    "username": _BUYER_USERNAME,
    "email": "'bench-buyer-' || g || '@example.com'",
}
_GENERATED_CARDHOLDERS = {"user_id": "u.id", "created_at": "%(now)s", "updated_at": "%(now)s"}
_GENERATED_CARDS = {
    "cardholder_id": "c.id",
    "created_at": "%(now)s",
    "updated_at": "%(now)s",
    "token": "'tok_bench_' || g",
    "brand": "'Visa'",
    "last4": "lpad(((g * 37) %% 10000)::text, 4, '0')",
    "exp_month": "12",
    "exp_year": "2030",
    "billing_name": "'Bench'",
    "address_line1": "'1 Bench Way'",
    "city": "'Springfield'",
    "state": "'IL'",
    "postal_code": "'62701'",
    "address_changed_at": "%(now)s",
}


def bench_buyers_ensure(*, buyers: int = BUYERS) -> tuple[list[int], list[int]]:
    """The bench buyers 0 to ``buyers - 1`` (a login with ``bench_email(k)``, a cardholder, a
    card ending ``bench_last4(k)``), created once: their cardholder and card ids, by buyer."""
    users = User.objects.filter(username__startswith="bench-buyer-")
    existing = users.count()
    if existing < buyers:
        user_user = f"{_SERIES} JOIN accounts_user u ON u.username = {_BUYER_USERNAME}"
        user_holder = f"{user_user} JOIN accounts_cardholder c ON c.user_id = u.id"
        params: dict[str, Any] = {"now": timezone.now(), "start": existing, "stop": buyers - 1}
        with connection.cursor() as cursor:
            for model, generated, source in (
                (User, _GENERATED_USERS, _SERIES),
                (Cardholder, _GENERATED_CARDHOLDERS, user_user),
                (Card, _GENERATED_CARDS, user_holder),
            ):
                sql, defaults = _insert_sql(model, generated, source)
                cursor.execute(sql, {**params, **defaults})
    holders = dict(Cardholder.objects.filter(user__in=users).values_list("user__username", "pk"))
    cards = dict(
        Card.objects.filter(cardholder__user__in=users).values_list(
            "cardholder__user__username", "pk"
        )
    )
    names = [f"bench-buyer-{k}" for k in range(buyers)]
    return [holders[name] for name in names], [cards[name] for name in names]


def bench_orders_load(
    *, target: int, progress: Callable[[int, int], None], chunk: int = 100_000
) -> int:
    """Insert bench orders (and their purchase posts) until the bench merchants hold
    ``target``; returns how many exist."""
    existing = Order.objects.filter(merchant__slug__startswith=BENCH_PREFIX).count()
    merchant_a, merchant_b = Merchant.objects.filter(
        slug__in=[f"{BENCH_PREFIX}a", f"{BENCH_PREFIX}b"]
    ).order_by("slug")
    campaign_a = Campaign.objects.get(merchant=merchant_a)
    campaign_b = Campaign.objects.get(merchant=merchant_b)
    cardholders, cards = bench_buyers_ensure()
    account, _ = PlatformAccount.objects.get_or_create(
        platform="x", platform_user_id="bench-brand", defaults={"handle": "benchbrand"}
    )
    now = timezone.now()
    insert_posts, post_defaults = _insert_sql(Post, _GENERATED_POSTS, _SERIES)
    insert_orders, order_defaults = _insert_sql()
    start = existing
    while start < target:
        stop = min(start + chunk, target)
        params = {
            **post_defaults,
            **order_defaults,
            "now": now,
            "target": target,
            "merchant_a": merchant_a.pk,
            "merchant_b": merchant_b.pk,
            "campaign_a": campaign_a.pk,
            "campaign_b": campaign_b.pk,
            "cardholders": cardholders,
            "cards": cards,
            "buyers": len(cardholders),
            "account": account.pk,
            "post_base": X_POST_BASE,
            "alphabet": CONFIRMATION_CODE.alphabet,
            "statuses": list(_STATUSES),
            "n_statuses": len(_STATUSES),
            "start": start + 1,
            "stop": stop,
        }
        with connection.cursor() as cursor:
            # A run stopped between the two leaves posts without orders: keep them.
            cursor.execute(f"{insert_posts} ON CONFLICT DO NOTHING", params)
            cursor.execute(insert_orders, params)
        start = stop
        progress(start, target)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order")
        cursor.execute("ANALYZE social_post")
        cursor.execute("ANALYZE accounts_card")
        cursor.execute("ANALYZE accounts_user")
    return max(existing, target)


def bench_changelist(
    *, user: User, label: str, params: dict[str, str], repeat: int, explain: bool = False
) -> Timing:
    """Time ``repeat`` requests of the order change list (after one warm-up request);
    ``explain``: with the plan of the query that reads the page of orders."""
    if not is_mfa_enabled(user):  # the back office admits staff with a second factor only
        TOTP.activate(user, generate_totp_secret())
    client = Client()
    client.force_login(user)
    url = reverse("admin:orders_order_changelist")
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        client.get(url, params)
        times, sql_ms, queries, shown, page_sql = [], 0.0, 0, 0, ""
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
            page_sql = next(
                (q["sql"] for q in captured.captured_queries if _is_page_query(q["sql"])), ""
            )
    return Timing(
        label=label,
        median_ms=statistics.median(times),
        max_ms=max(times),
        sql_ms=sql_ms,
        queries=queries,
        rows_shown=shown,
        plan=explain_analyze(page_sql) if explain and page_sql else "",
    )


def _is_page_query(sql: str) -> bool:
    # The rows of the page (with a LIMIT when there is more than one page), not their count.
    return sql.startswith('SELECT "orders_order"."id", ')


def explain_analyze(sql: str) -> str:
    """The executed plan of ``sql`` (as run, captured from the request), without costs."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


@dataclass(frozen=True)
class SearchSample:
    """A bench order of merchant A in the middle of the table (about a year old), and what
    support would type to find it."""

    code: str
    handle: str
    post_id: str
    email: str
    last4: str
    day: str  # its creation date in the merchant's time zone, ``YYYY-MM-DD``
    month_start: str


def bench_search_sample(world: BenchWorld) -> SearchSample:
    """Read from the loaded rows (index lookups), so it is the order that is there."""
    orders = Order.objects.filter(merchant=world.merchant_a)
    bounds = orders.aggregate(low=Min("pk"), high=Max("pk"))
    middle = (bounds["low"] + bounds["high"]) // 2
    order = (
        orders.filter(pk__lte=middle)
        .select_related("purchase_post", "card", "cardholder__user", "merchant")
        .order_by("-pk")
        .first()
    )
    if order is None or order.purchase_post is None:
        raise RuntimeError("bench_admin: no bench order with a purchase post to search for")
    day = order.created_at.astimezone(ZoneInfo(order.merchant.time_zone)).date()
    return SearchSample(
        code=order.confirmation_code,
        handle=order.author_handle,
        post_id=order.purchase_post.post_id,
        email=order.cardholder.user.email,
        last4=order.card.last4,
        day=day.isoformat(),
        month_start=(day - timedelta(days=30)).isoformat(),
    )
