"""A campaign's dashboard for merchant staff: orders per hour by outcome, and the funnel from
purchase posts to shipped orders, drawn as SVG on the server (no script, no chart library).

Its cost follows the campaign, never the platform (issue 10, item 18): purchase posts are counted
through the campaign id the decision records on each post, and the chart covers the last
``CHART_HOURS`` hours of the campaign (up to now or its end), so a campaign that runs for months
draws a bounded number of bars. Measured by ``manage.py bench_dashboard``.
"""

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

from catalog.models import Campaign
from orders.models import Order, OrderEvent, OrderStatus
from social.selectors import posts_count

PURCHASE_OUTCOMES = (
    "order_created",
    "sold_out",
    "waitlisted",
    "blocked",
    "duplicate",
    "campaign_closed",
    # Asked for a variant or quantity that could not be sold as written (issue 13).
    "variant_needed",
    "quantity_invalid",
)
# Order outcomes as stacked in the chart, bottom up, with their colours (colour-blind safe).
SERIES = (
    # Refunded orders were sold (paid, shipped) before their money went back.
    (
        "paid or later",
        "#1b7837",
        (
            OrderStatus.PAID,
            OrderStatus.SHIPPED,
            OrderStatus.DELIVERED,
            OrderStatus.PARTIALLY_REFUNDED,
            OrderStatus.REFUNDED,
        ),
    ),
    ("confirmed", "#5aae61", (OrderStatus.CONFIRMED, OrderStatus.AUTHENTICATION_REQUIRED)),
    ("pending", "#f1a340", (OrderStatus.PENDING,)),
    ("expired", "#998ec3", (OrderStatus.EXPIRED,)),
    ("cancelled or declined", "#762a83", (OrderStatus.CANCELLED, OrderStatus.DECLINED)),
)
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 240, 40, 40, 10
# Hours of the chart: two days of a flash sale, bars still wide enough to read at 640 pixels.
CHART_HOURS = 48
# Labels under the bars at most: more would overlap at 640 pixels.
MAX_LABELS = 8


@dataclass
class Bar:
    x: float
    width: float
    label: str
    # Whether the label is drawn under the bar: every few bars when there are many.
    labelled: bool = True
    segments: list[tuple[float, float, str, str, int]] = field(default_factory=list)


@dataclass
class Dashboard:
    campaign: Campaign
    hours: list[datetime]
    bars: list[Bar]
    y_ticks: list[tuple[float, int]]
    funnel: list[tuple[str, int, float, float]]  # name, count, y, bar width
    table: list[tuple[str, list[int]]]
    series: tuple = SERIES
    width: int = WIDTH
    height: int = HEIGHT
    chart_hours: int = CHART_HOURS


def stacked_bars(
    columns: Sequence[tuple[str, Mapping[str, int]]], *, series: Sequence[tuple[str, str, Any]]
) -> tuple[list[Bar], list[tuple[float, int]]]:
    """The bars of a stacked bar chart ``WIDTH`` by ``HEIGHT``: one per column (its label and
    its count of each series, by name), each series (name, colour, anything) stacked bottom up
    in its colour, and the y axis's five gridlines at whole numbers, as (y, value). Shared by
    the campaign dashboard and the sales report (``orders.reports``), drawn by the template
    ``admin/orders/_stacked_chart.html``."""
    totals = [sum(counts.values()) for _, counts in columns]
    step = max(1, -(-max(totals, default=0) // 4))  # whole-number gridlines, four of them
    top = step * 4
    plot_w, plot_h = WIDTH - LEFT - 10, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(len(columns), 1)
    every = -(-len(columns) // MAX_LABELS)
    bars = []
    for index, (label, counts) in enumerate(columns):
        width = min(slot * 0.8, 48.0)
        bar = Bar(
            x=LEFT + index * slot + (slot - width) / 2,
            width=width,
            label=label,
            labelled=index % every == 0,
        )
        base: float = TOP + plot_h
        for name, colour, _ in series:
            count = counts.get(name, 0)
            if count:
                height = plot_h * count / top
                base -= height
                bar.segments.append((base, height, colour, name, count))
        bars.append(bar)
    ticks = [(TOP + plot_h - plot_h * k / 4, step * k) for k in range(5)]
    return bars, ticks


def funnel_bars(stages: Sequence[tuple[str, int]]) -> list[tuple[str, int, float, float]]:
    """The funnel's rows as (name, count, y, bar width), widths proportional to the counts
    (the widest stage fills the chart), drawn by ``admin/orders/_funnel_chart.html``."""
    widest = max((count for _, count in stages), default=0) or 1
    return [
        (name, count, 10.0 + 36 * row, max(1.0, (WIDTH - 220) * count / widest))
        for row, (name, count) in enumerate(stages)
    ]


def purchase_posts(campaign: Campaign) -> int:
    """Decided posts that asked to buy this campaign's product (whatever their outcome), posted
    while it ran: counted through the campaign id the decision recorded on each post (the
    ``post_campaign_idx`` index), so the cost follows this campaign's posts, never the inbox's.
    """
    return posts_count(
        campaign_id=campaign.pk,
        posted_from=campaign.starts_at,
        posted_until=campaign.ends_at,
        outcomes=PURCHASE_OUTCOMES,
    )


def campaign_dashboard(campaign: Campaign, *, now: datetime | None = None) -> Dashboard:
    """The dashboard of ``campaign``: the chart of its orders in the last ``CHART_HOURS`` hours
    up to ``now`` (or its end, if earlier), and its funnel over its whole life."""
    chart_end = min(now or timezone.now(), campaign.ends_at)
    chart_start = chart_end.replace(minute=0, second=0, microsecond=0) - timedelta(
        hours=CHART_HOURS - 1
    )
    per_hour: dict[datetime, Counter[str]] = defaultdict(Counter)
    for row in (
        Order.objects.filter(campaign=campaign, created_at__gte=chart_start)
        .annotate(hour=TruncHour("created_at"))
        .values("hour", "status")
        .annotate(n=Count("id"))
    ):
        per_hour[row["hour"]][row["status"]] += row["n"]
    hours = sorted(per_hour)
    columns = [
        (
            f"{hour:%H:%M}",
            {name: sum(per_hour[hour][s] for s in statuses) for name, _, statuses in SERIES},
        )
        for hour in hours
    ]
    bars, ticks = stacked_bars(columns, series=SERIES)
    table = [(name, [counts[name] for _, counts in columns]) for name, _, _ in SERIES]
    events = OrderEvent.objects.filter(
        order__campaign=campaign, kind__in=["confirmed", "paid", "shipped"]
    )
    reached = Counter(events.values_list("kind", flat=True))
    stages = [
        ("purchase posts", purchase_posts(campaign)),
        ("orders (pending)", Order.objects.filter(campaign=campaign).count()),
        ("confirmed", reached["confirmed"]),
        ("paid", reached["paid"]),
        ("shipped", reached["shipped"]),
    ]
    funnel = funnel_bars(stages)
    return Dashboard(
        campaign=campaign, hours=hours, bars=bars, y_ticks=ticks, funnel=funnel, table=table
    )
