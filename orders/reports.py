"""Sales reports for merchant staff (issue 14, item 7): per day, in the merchant's time zone, and
per platform, across campaigns. Read by the admin's sales report page and its CSV
(``orders.admin_reports``); drawn with the campaign dashboard's chart code (``orders.dashboard``).

What each number means (the page's help text says the same: ``COLUMNS``):

- **Purchase posts**: decided posts that asked to buy one of the campaigns (whatever their
  outcome: an order, sold out, waitlisted, blocked…), counted on the day they were posted.
- **Orders**: orders placed that day (created by a purchase post or a waitlist promotion),
  whatever became of them. **Units**: their quantities added up.
- **Confirmed, paid, shipped, delivered** (the funnel): of the orders placed that day, how many
  reached each stage, whatever happened after: an order confirmed and then declined counts as
  confirmed; paid then cancelled counts as paid; refunded after delivery counts as delivered.
  Confirmed: it has a confirmation time. Paid: its card was authorized. Shipped: its label
  was bought. Delivered: the carrier reported delivery. The last three are the order's
  ``furthest_stage``, which the transitions record and nothing lowers (the status alone
  cannot say: a cancelled order may have been paid, a refunded one delivered).
- **Revenue**: the money captured for the orders placed that day: their totals, tax included,
  once the capture (run when the label is bought) went through. An order whose capture is
  queued, running or failed is not revenue yet; refunds do not lower it (see Refunds).
- **Tax**: the sales tax within that revenue (the orders' ``tax_total``).
- **Refunds**: money given back, on the day the gateway confirmed the refund (whichever day
  the order was placed), so a day's net takings are revenue less refunds of later days.
- **Waitlist joins**: purchase posts of that day that met a sold-out campaign and joined its
  waitlist (demand beyond the stock).

Amounts are per currency (a row per day, platform and currency). Operators looking at every
merchant at once see days in UTC.

Cost: four aggregate queries whatever the range (besides the campaigns and the transaction's
settings): orders by the ``order_merchant_created_idx`` index (two: ``_order_rows``),
refunds by ``refund_succeeded_idx`` and ``order_refunded_idx``, posts by ``post_campaign_idx``
(``social.selectors.posts_per_day``), each an index-only scan with no per-row lookup.
Measured by ``manage.py bench_sales_report``.
"""

from collections import Counter
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate

from catalog.models import Campaign, Merchant
from orders.dashboard import (
    HEIGHT,
    PURCHASE_OUTCOMES,
    WIDTH,
    Bar,
    funnel_bars,
    stacked_bars,
)
from orders.models import (
    Order,
    OutboxStatus,
    PaymentOperation,
    PaymentOperationKind,
    Refund,
    RefundStatus,
)
from orders.models.order import OrderStage
from orders.outcomes import PostOutcome
from social.selectors import day_bounds, posts_per_day

# The longest range one report covers: two years of days keeps the table and chart bounded.
MAX_DAYS = 731
ZERO = Decimal("0.00")
# Memory for grouping a year of orders (``_report_settings``): a few thousand groups' sums.
REPORT_WORK_MEM = "64MB"

# Colours of the platforms in the chart (colour-blind safe), in the order they stack.
PLATFORM_COLOURS = {
    "x": "#1b7837",
    "mastodon": "#762a83",
    "bluesky": "#2166ac",
    "sandbox": "#f1a340",
}
OTHER_COLOUR = "#999999"


@dataclass
class ReportRow:
    """One day, platform and currency. The column order is the table's and the CSV's."""

    day: date
    platform: str
    currency: str
    purchase_posts: int = 0
    orders: int = 0
    confirmed: int = 0
    paid: int = 0
    shipped: int = 0
    delivered: int = 0
    units: int = 0
    revenue: Decimal = ZERO
    tax: Decimal = ZERO
    refunds: Decimal = ZERO
    waitlist_joins: int = 0

    def add(self, other: "ReportRow") -> None:
        for name in COUNTED:
            setattr(self, name, getattr(self, name) + getattr(other, name))


# (field, heading, help): the columns of the table and the CSV, in order.
COLUMNS = (
    ("day", "Date", "The day, in the merchant's time zone (UTC for every merchant at once)."),
    ("platform", "Platform", "Where the purchase posts were made."),
    ("currency", "Currency", "The currency of the amounts on this row."),
    (
        "purchase_posts",
        "Purchase posts",
        "Decided posts asking to buy (any outcome), on the day posted.",
    ),
    ("orders", "Orders", "Orders placed that day, whatever became of them."),
    ("confirmed", "Confirmed", "Of those orders, how many the buyer confirmed."),
    ("paid", "Paid", "Of those orders, how many had their card authorized."),
    ("shipped", "Shipped", "Of those orders, how many had their label bought."),
    ("delivered", "Delivered", "Of those orders, how many the carrier delivered."),
    ("units", "Units", "The quantities of the orders placed that day."),
    (
        "revenue",
        "Revenue",
        "Captured totals (tax included) of the orders placed that day; not lowered by refunds.",
    ),
    ("tax", "Tax", "The sales tax within that revenue."),
    ("refunds", "Refunds", "Money given back that day (the gateway confirmed it), any order."),
    (
        "waitlist_joins",
        "Waitlist joins",
        "Purchase posts that day that met a sold-out campaign and joined its waitlist.",
    ),
)
KEY = ("day", "platform", "currency")
COUNTED = tuple(f.name for f in fields(ReportRow) if f.name not in KEY)
FUNNEL = (
    ("purchase posts", "purchase_posts"),
    ("orders", "orders"),
    ("confirmed", "confirmed"),
    ("paid", "paid"),
    ("shipped", "shipped"),
    ("delivered", "delivered"),
)


@dataclass
class SalesChart:
    """Orders per day, stacked by platform (``stacked_bars``), as the template draws it."""

    bars: list[Bar]
    y_ticks: list[tuple[float, int]]
    series: list[tuple[str, str, None]]
    width: int
    height: int


@dataclass
class SalesReport:
    date_from: date
    date_until: date
    time_zone: str
    rows: list[ReportRow]
    # One per currency: the sums of the rows in that currency (``day`` is ``date_from``).
    totals: list[ReportRow]
    funnel: list[tuple[str, int, float, float]]
    chart: SalesChart
    campaigns: list[Campaign] = field(default_factory=list)

    def table(self) -> list[list[str]]:
        """The rows then the totals (one per currency), as text in ``COLUMNS`` order: exactly
        what the page's table and the CSV show. Totals say "Total" instead of a date."""
        cells = [[_cell(getattr(row, name)) for name, _, _ in COLUMNS] for row in self.rows]
        for total in self.totals:
            cells.append(["Total", "all", *[_cell(getattr(total, n)) for n, _, _ in COLUMNS[2:]]])
        return cells


def _cell(value: object) -> str:
    """A date as ISO 8601, an amount with two decimals, a count as digits."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def report_time_zone(*, merchant_id: int | None) -> tzinfo:
    """The zone the report's days are in: the merchant's, or UTC for every merchant at once."""
    if merchant_id is None:
        return UTC
    name = Merchant.objects.values_list("time_zone", flat=True).get(pk=merchant_id)
    return ZoneInfo(name)


def sales_report(
    *,
    merchant_id: int | None,
    date_from: date,
    date_until: date,
    tz: tzinfo,
    campaign_id: int | None = None,
    platform: str | None = None,
) -> SalesReport:
    """The sales of ``merchant_id`` (every merchant's for ``None``: operators only) from
    ``date_from`` to ``date_until`` inclusive, days in ``tz``, optionally of one campaign or
    one platform: one row per day, platform and currency that has anything, newest day first.
    What each number means is this module's docstring.

    Six queries whatever the range (settings, campaigns, two of orders, refunds, posts),
    in one transaction with its own settings (``_report_settings``). Raises ``ValueError``
    when the range is reversed or longer than ``MAX_DAYS``.
    """
    if date_until < date_from or (date_until - date_from).days + 1 > MAX_DAYS:
        raise ValueError(f"a range of 1 to {MAX_DAYS} days, the first day first")
    with transaction.atomic():
        _report_settings()
        return _sales_report(
            merchant_id=merchant_id,
            date_from=date_from,
            date_until=date_until,
            tz=tz,
            campaign_id=campaign_id,
            platform=platform,
        )


def _report_settings() -> None:
    """Settings of this transaction's queries (PostgreSQL), in one statement:

    - no JIT compilation: a year of orders or posts is estimated dear enough to compile,
      which costs PostgreSQL more than the few hundred milliseconds of reading the indexes
      (``bench_sales_report``);
    - ``work_mem`` enough to group a year of a large merchant's orders in memory (a hash of
      day, platform and currency) rather than sorting them on disk.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('jit', 'off', true), set_config('work_mem', %s, true)",
                [REPORT_WORK_MEM],
            )


def _sales_report(
    *,
    merchant_id: int | None,
    date_from: date,
    date_until: date,
    tz: tzinfo,
    campaign_id: int | None,
    platform: str | None,
) -> SalesReport:
    start = datetime.combine(date_from, time.min, tzinfo=tz)
    end = datetime.combine(date_until + timedelta(days=1), time.min, tzinfo=tz)
    campaigns = _campaigns(merchant_id=merchant_id, campaign_id=campaign_id, platform=platform)
    rows: dict[tuple[date, str, str], ReportRow] = {}

    def row(day: date, platform_name: str, currency: str) -> ReportRow:
        key = (day, platform_name, currency)
        if key not in rows:
            rows[key] = ReportRow(day=day, platform=platform_name, currency=currency)
        return rows[key]

    for values in _order_rows(
        merchant_id=merchant_id,
        # Orders are their campaign's merchant's: the merchants of the campaigns are all.
        merchant_ids=sorted({c.merchant_id for c in campaigns}),
        start=start,
        end=end,
        tz=tz,
        campaign_id=campaign_id,
        platform=platform,
    ):
        target = row(values.pop("day"), values.pop("platform"), values.pop("currency"))
        for name, value in values.items():
            setattr(target, name, value)
    for day, platform_name, currency, amount in _refund_rows(
        merchant_id=merchant_id,
        start=start,
        end=end,
        tz=tz,
        campaign_id=campaign_id,
        platform=platform,
    ):
        row(day, platform_name, currency).refunds = amount
    by_campaign = {c.pk: c for c in campaigns}
    for campaign_pk, day, outcome, count in posts_per_day(
        campaign_ids=list(by_campaign),
        posted_from=start,
        posted_until=end,
        outcomes=PURCHASE_OUTCOMES,
        tz=tz,
    ):
        campaign = by_campaign[campaign_pk]
        target = row(day, campaign.platform, campaign.currency)
        target.purchase_posts += count
        if outcome == PostOutcome.WAITLISTED:
            target.waitlist_joins += count
    ordered = sorted(rows.values(), key=lambda r: (-r.day.toordinal(), r.platform, r.currency))
    totals: dict[str, ReportRow] = {}
    for r in ordered:
        totals.setdefault(r.currency, ReportRow(date_from, "all", r.currency)).add(r)
    funnel = funnel_bars([(name, sum(getattr(r, attr) for r in ordered)) for name, attr in FUNNEL])
    return SalesReport(
        date_from=date_from,
        date_until=date_until,
        time_zone=str(tz),
        rows=ordered,
        totals=[totals[c] for c in sorted(totals)],
        funnel=funnel,
        chart=_chart(ordered, date_from=date_from, date_until=date_until),
        campaigns=campaigns,
    )


def _campaigns(
    *, merchant_id: int | None, campaign_id: int | None, platform: str | None
) -> list[Campaign]:
    """The campaigns whose purchase posts count: the merchant's, narrowed by the filters."""
    campaigns = Campaign.objects.only("pk", "platform", "currency", "merchant_id")
    if merchant_id is not None:
        campaigns = campaigns.filter(merchant_id=merchant_id)
    if campaign_id is not None:
        campaigns = campaigns.filter(pk=campaign_id)
    if platform:
        campaigns = campaigns.filter(platform=platform)
    return list(campaigns.order_by("pk"))


def _order_rows(
    *,
    merchant_id: int | None,
    merchant_ids: list[int],
    start: datetime,
    end: datetime,
    tz: tzinfo,
    campaign_id: int | None,
    platform: str | None,
) -> list[dict]:
    """Orders placed in [start, end) by day, platform and currency: counts, the funnel, units,
    revenue and tax. Two aggregates, both starting from ``order_merchant_created_idx`` (which
    covers the columns they read, so the big one is an index-only scan):

    1. every order of the range, by confirmation time and furthest stage alone;
    2. the few shipped ones whose capture is still open (queued, running or failed), from
       ``payment_op_open_idx``: their totals are taken back out of the revenue.

    Kept apart so that the first, which reads every order of the range, needs no per-order
    lookup. Every merchant at once (``merchant_id`` None) is each of ``merchant_ids`` in turn
    in the same index (one range per merchant), not a scan of the whole table."""
    ids = merchant_ids if merchant_id is None else [merchant_id]
    orders = Order.objects.filter(merchant_id__in=ids, created_at__gte=start, created_at__lt=end)
    if campaign_id is not None:
        orders = orders.filter(campaign_id=campaign_id)
    if platform:
        orders = orders.filter(platform=platform)
    shipped = Q(furthest_stage__gte=OrderStage.SHIPPED)
    rows: dict[tuple, dict[str, Any]] = {}
    values: dict[str, Any]
    if connection.vendor == "postgresql":
        per_day = _orders_per_day_postgresql(
            merchant_ids=ids,
            start=start,
            end=end,
            tz=tz,
            campaign_id=campaign_id,
            platform=platform,
        )
    else:
        per_day = _orders_per_day(orders, tz)
    for values in per_day:
        rows[(values["day"], values["platform"], values["currency"])] = values
    uncaptured = PaymentOperation.objects.filter(
        operation=PaymentOperationKind.CAPTURE, status__in=_OPEN_STATUSES
    ).values("order_id")
    for values in _grouped(orders.filter(shipped, pk__in=uncaptured), tz).annotate(
        revenue=Sum("total"), tax=Sum("tax_total")
    ):
        row = rows[(values["day"], values["platform"], values["currency"])]
        row["revenue"] -= values["revenue"]
        row["tax"] -= values["tax"]
    return list(rows.values())


def _orders_per_day(orders: QuerySet[Order], tz: tzinfo) -> list[dict[str, Any]]:
    """``orders``' numbers by day in ``tz``, platform and currency (``ORDER_NUMBERS``)."""
    shipped = Q(furthest_stage__gte=OrderStage.SHIPPED)
    return list(
        _grouped(orders, tz).annotate(
            orders=Count("id"),
            units=Sum("quantity"),
            confirmed=Count("id", filter=Q(confirmed_at__isnull=False)),
            paid=Count("id", filter=Q(furthest_stage__gte=OrderStage.PAID)),
            shipped=Count("id", filter=shipped),
            delivered=Count("id", filter=Q(furthest_stage=OrderStage.DELIVERED)),
            revenue=Coalesce(Sum("total", filter=shipped), ZERO),
            tax=Coalesce(Sum("tax_total", filter=shipped), ZERO),
        )
    )


ORDER_NUMBERS = (
    "day",
    "platform",
    "currency",
    "orders",
    "units",
    "confirmed",
    "paid",
    "shipped",
    "delivered",
    "revenue",
    "tax",
)
# ``_orders_per_day`` on PostgreSQL: one range of ``order_merchant_created_idx`` per day and
# merchant (``d``: each day's bounds in the report's zone), aggregated as it is read, so no
# order's day is worked out (a time zone conversion and a hash of it per order cost more than
# reading the index: ``bench_sales_report``). The optional filters are NULL when not asked for.
_ORDERS_PER_DAY_SQL = """
SELECT d.day, x.platform, x.currency, x.orders, x.units, x.confirmed, x.paid, x.shipped,
       x.delivered, x.revenue, x.tax
FROM unnest(%(days)s::date[], %(starts)s::timestamptz[], %(ends)s::timestamptz[]) AS d(day, s, e)
CROSS JOIN LATERAL (
    SELECT o.platform, o.currency, COUNT(*) AS orders, SUM(o.quantity) AS units,
           COUNT(*) FILTER (WHERE o.confirmed_at IS NOT NULL) AS confirmed,
           COUNT(*) FILTER (WHERE o.furthest_stage >= %(paid)s) AS paid,
           COUNT(*) FILTER (WHERE o.furthest_stage >= %(shipped)s) AS shipped,
           COUNT(*) FILTER (WHERE o.furthest_stage = %(delivered)s) AS delivered,
           COALESCE(SUM(o.total) FILTER (WHERE o.furthest_stage >= %(shipped)s), 0.00) AS revenue,
           COALESCE(SUM(o.tax_total) FILTER (WHERE o.furthest_stage >= %(shipped)s), 0.00) AS tax
    FROM orders_order o
    WHERE o.merchant_id = ANY(%(merchants)s) AND o.created_at >= d.s AND o.created_at < d.e
      AND (%(campaign)s::bigint IS NULL OR o.campaign_id = %(campaign)s)
      AND (%(platform)s::text IS NULL OR o.platform = %(platform)s)
    GROUP BY o.platform, o.currency
) AS x
"""


def _orders_per_day_postgresql(
    *,
    merchant_ids: list[int],
    start: datetime,
    end: datetime,
    tz: tzinfo,
    campaign_id: int | None,
    platform: str | None,
) -> list[dict[str, Any]]:
    """What ``_orders_per_day`` returns, by ``_ORDERS_PER_DAY_SQL``."""
    days, starts, ends = day_bounds(start=start, end=end, tz=tz)
    with connection.cursor() as cursor:
        cursor.execute(
            _ORDERS_PER_DAY_SQL,
            {
                "days": days,
                "starts": starts,
                "ends": ends,
                "merchants": merchant_ids,
                "campaign": campaign_id,
                "platform": platform or None,
                "paid": int(OrderStage.PAID),
                "shipped": int(OrderStage.SHIPPED),
                "delivered": int(OrderStage.DELIVERED),
            },
        )
        return [dict(zip(ORDER_NUMBERS, row, strict=True)) for row in cursor.fetchall()]


def _grouped(orders: QuerySet[Order], tz: tzinfo) -> Any:
    """``orders`` grouped by the day they were placed in ``tz``, platform and currency."""
    return (
        orders.annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day", "platform", "currency")
        .order_by()
    )


# Every status of an outbox row but done: what ``payment_op_open_idx`` holds.
_OPEN_STATUSES = (OutboxStatus.PENDING, OutboxStatus.PROCESSING, OutboxStatus.FAILED)


def _refund_rows(
    *,
    merchant_id: int | None,
    start: datetime,
    end: datetime,
    tz: tzinfo,
    campaign_id: int | None,
    platform: str | None,
) -> list[tuple[date, str, str, Decimal]]:
    """Refunds that went through in [start, end), by the day they did, the order's platform
    and currency: ``refund_succeeded_idx`` joined to ``order_refunded_idx`` (index-only), so
    the cost follows the refunds and refunded orders, not every order of the merchant."""
    refunds = Refund.objects.filter(
        status=RefundStatus.SUCCEEDED,
        succeeded_at__gte=start,
        succeeded_at__lt=end,
        # Always true of a refund that went through; it lets the orders come from
        # ``order_refunded_idx`` (the refunded ones) rather than every order's row.
        order__refunded_total__gt=0,
    )
    if merchant_id is not None:
        refunds = refunds.filter(order__merchant_id=merchant_id)
    if campaign_id is not None:
        refunds = refunds.filter(order__campaign_id=campaign_id)
    if platform:
        refunds = refunds.filter(order__platform=platform)
    return list(
        refunds.annotate(day=TruncDate("succeeded_at", tzinfo=tz))
        .values_list("day", "order__platform", "order__currency")
        .annotate(amount=Sum("amount"))
        .order_by()
    )


def _chart(rows: list[ReportRow], *, date_from: date, date_until: date) -> SalesChart:
    """Orders per day (every day of the range, oldest first), stacked by platform."""
    per_day: dict[date, Counter[str]] = {}
    for r in rows:
        per_day.setdefault(r.day, Counter())[r.platform] += r.orders
    platforms = sorted({r.platform for r in rows if r.orders})
    series = [(p, PLATFORM_COLOURS.get(p, OTHER_COLOUR), None) for p in platforms]
    days = [date_from + timedelta(days=n) for n in range((date_until - date_from).days + 1)]
    columns = [(f"{d:%d %b}", dict(per_day.get(d, Counter()))) for d in days]
    bars, ticks = stacked_bars(columns, series=series)
    return SalesChart(bars=bars, y_ticks=ticks, series=series, width=WIDTH, height=HEIGHT)
