"""The sales report (issue 14, item 7): its numbers on a hand-built data set, its CSV, its chart,
its scoping to the merchant, and its bounded cost."""

import csv
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from html import unescape
from importlib import import_module
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps as django_apps
from django.db.models import F
from django.urls import reverse
from django.utils.html import escape

from accounts.services import operator_upsert, staff_user_upsert
from catalog.tests.factories import CampaignFactory, MerchantFactory
from orders import migrations, reports
from orders.models import (
    Order,
    OrderEvent,
    OrderStatus,
    PaymentOperation,
    Refund,
    RefundStatus,
)
from orders.models.order import OrderStage
from orders.reports import COLUMNS, sales_report
from orders.services.common import order_transition
from orders.services.shipping import order_deliver
from orders.tests.factories import OrderFactory
from social.models import Platform
from social.selectors import posts_per_day, posts_per_day_portable
from social.tests.factories import PostFactory
from tests.mfa import totp_enable

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")  # UTC-5 in November
DAY1, DAY2 = date(2026, 11, 2), date(2026, 11, 3)
URL = "admin:orders_sales_report"


def _at(day: date, hour: int) -> datetime:
    """``hour`` o'clock on ``day`` in New York."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=NEW_YORK)


# The stage each status shows it reached (``Order.furthest_stage``), as the transitions that led
# there wrote it; a cancelled or refunded order's stage is set where it went further.
STAGE_OF_STATUS = {
    OrderStatus.PAID: OrderStage.PAID,
    OrderStatus.SHIPPED: OrderStage.SHIPPED,
    OrderStatus.DELIVERED: OrderStage.DELIVERED,
    OrderStatus.PARTIALLY_REFUNDED: OrderStage.SHIPPED,
    OrderStatus.REFUNDED: OrderStage.SHIPPED,
}


def _order(campaign, *, at: datetime, status: str, confirmed: bool = True, **money) -> Order:
    order = cast(
        Order,
        OrderFactory(
            campaign=campaign,
            platform=campaign.platform,
            status=status,
            confirmed_at=at if confirmed else None,
            **money,
        ),
    )
    stage = STAGE_OF_STATUS.get(OrderStatus(status), OrderStage.NOT_PAID)
    Order.objects.filter(pk=order.pk).update(created_at=at, furthest_stage=stage)
    return order


def _money(unit: str, quantity: int = 1, tax: str = "0.00") -> dict:
    subtotal = Decimal(unit) * quantity
    return {
        "unit_price": Decimal(unit),
        "quantity": quantity,
        "subtotal": subtotal,
        "tax_total": Decimal(tax),
        "total": subtotal + Decimal(tax),
    }


def _event(order: Order, kind: str, at: datetime) -> None:
    OrderEvent.objects.create(order=order, kind=kind, created_at=at)


def _reached(order: Order, kind: str, at: datetime) -> None:
    """``order`` went on to the stage ``kind`` (paid, delivered) before its status changed: the
    audit row and the stage, as the transition wrote them."""
    _event(order, kind, at)
    Order.objects.filter(pk=order.pk).update(furthest_stage=OrderStage[kind.upper()])


def _refund(order: Order, amount: str, *, at: datetime | None, number: int = 1) -> None:
    Refund.objects.create(
        order=order,
        number=number,
        amount=Decimal(amount),
        reason="test",
        idempotency_key=f"order-{order.pk}-refund-{number}",
        status=RefundStatus.SUCCEEDED if at else RefundStatus.FAILED,
        succeeded_at=at,
    )
    # The order's totals, as the refund service keeps them: asked for, and given back if it was.
    given_back = Decimal(amount) if at else Decimal(0)
    Order.objects.filter(pk=order.pk).update(
        refund_requested_total=F("refund_requested_total") + Decimal(amount),
        refunded_total=F("refunded_total") + given_back,
    )


def _posts(campaign, *, at: datetime, outcome: str, count: int) -> None:
    for _ in range(count):
        PostFactory(
            platform=campaign.platform,
            campaign_id=campaign.pk,
            posted_at=at,
            outcome=outcome,
            decided_at=at,
        )


@pytest.fixture
def shop():
    """Merchant A (New York) with a sandbox and a Mastodon campaign over two days, and merchant
    B, whose sales on the same days must never show in A's report. Expected numbers are in
    ``EXPECTED``; each order's comment says what it adds."""
    a = MerchantFactory(time_zone="America/New_York")
    b = MerchantFactory()
    sandbox = CampaignFactory(product__merchant=a, platform=Platform.SANDBOX)
    mastodon = CampaignFactory(product__merchant=a, platform=Platform.MASTODON)
    other = CampaignFactory(product__merchant=b, platform=Platform.SANDBOX)
    # Day 1, sandbox.
    _order(  # delivered: every stage; 2 units; revenue 21.50 of which tax 1.50
        sandbox, at=_at(DAY1, 9), status=OrderStatus.DELIVERED, **_money("10.00", 2, "1.50")
    )
    paid_then_cancelled = _order(sandbox, at=_at(DAY1, 10), status=OrderStatus.CANCELLED)
    _reached(paid_then_cancelled, "paid", _at(DAY1, 10))  # counts as paid, not revenue
    _order(sandbox, at=_at(DAY1, 11), status=OrderStatus.EXPIRED, confirmed=False)
    capture_failed = _order(sandbox, at=_at(DAY1, 12), status=OrderStatus.SHIPPED)
    PaymentOperation.objects.create(  # shipped, but its money was never taken: no revenue
        order=capture_failed,
        operation="capture",
        idempotency_key=f"order-{capture_failed.pk}-capture",
        status="failed",
    )
    _posts(sandbox, at=_at(DAY1, 9), outcome="order_created", count=4)
    _posts(sandbox, at=_at(DAY1, 13), outcome="sold_out", count=1)
    _posts(sandbox, at=_at(DAY1, 13), outcome="confirmed", count=1)  # not a purchase post
    # Day 1, Mastodon.
    refunded = _order(  # delivered, then refunded in full on day 2
        mastodon, at=_at(DAY1, 9), status=OrderStatus.REFUNDED, **_money("30.00")
    )
    _reached(refunded, "delivered", _at(DAY1, 20))
    _refund(refunded, "30.00", at=_at(DAY2, 8))
    partly = _order(  # refunded in part on its way (never delivered), on day 1
        mastodon,
        at=_at(DAY1, 10),
        status=OrderStatus.PARTIALLY_REFUNDED,
        **_money("38.00", 1, "2.00"),
    )
    _refund(partly, "5.00", at=_at(DAY1, 23))
    _refund(partly, "7.00", at=None, number=2)  # failed: not money given back
    _posts(mastodon, at=_at(DAY1, 9), outcome="order_created", count=2)
    _posts(mastodon, at=_at(DAY1, 14), outcome="waitlisted", count=1)
    # Day 2, sandbox; the last one at 22:00 in New York is 03:00 UTC on the day after.
    _order(sandbox, at=_at(DAY2, 9), status=OrderStatus.PAID)
    _order(sandbox, at=_at(DAY2, 10), status=OrderStatus.DECLINED)
    _order(sandbox, at=_at(DAY2, 22), status=OrderStatus.PENDING, confirmed=False)
    _posts(sandbox, at=_at(DAY2, 9), outcome="order_created", count=3)
    # Out of the range: the day before and the day after.
    _order(sandbox, at=_at(date(2026, 11, 1), 23), status=OrderStatus.DELIVERED)
    _order(sandbox, at=_at(date(2026, 11, 4), 0), status=OrderStatus.DELIVERED)
    # Merchant B, same days: never in A's report.
    theirs = _order(other, at=_at(DAY1, 9), status=OrderStatus.REFUNDED, **_money("999.00"))
    _refund(theirs, "999.00", at=_at(DAY2, 9))
    _posts(other, at=_at(DAY1, 9), outcome="waitlisted", count=7)
    return a, b


COLUMN_NAMES = [name for name, _, _ in COLUMNS]
# (day, platform): purchase posts, orders, confirmed, paid, shipped, delivered, units, revenue,
# tax, refunds, waitlist joins.
EXPECTED = {
    (DAY2, "mastodon"): (0, 0, 0, 0, 0, 0, 0, "0.00", "0.00", "30.00", 0),
    (DAY2, "sandbox"): (3, 3, 2, 1, 0, 0, 3, "0.00", "0.00", "0.00", 0),
    (DAY1, "mastodon"): (3, 2, 2, 2, 2, 1, 2, "70.00", "2.00", "5.00", 1),
    (DAY1, "sandbox"): (5, 4, 3, 3, 2, 1, 5, "21.50", "1.50", "0.00", 0),
}


def _numbers(row) -> tuple:
    return tuple(
        f"{getattr(row, n):.2f}" if isinstance(getattr(row, n), Decimal) else getattr(row, n)
        for n in COLUMN_NAMES[3:]
    )


def test_the_report_counts_each_number_as_documented(shop):
    a, _ = shop
    report = sales_report(merchant_id=a.pk, date_from=DAY1, date_until=DAY2, tz=NEW_YORK)
    assert [(r.day, r.platform, r.currency) for r in report.rows] == [
        (day, platform, "USD") for day, platform in EXPECTED
    ]
    assert {(r.day, r.platform): _numbers(r) for r in report.rows} == EXPECTED
    [total] = report.totals
    sums = [sum(Decimal(str(v[i])) for v in EXPECTED.values()) for i in range(11)]
    assert [Decimal(str(v)) for v in _numbers(total)] == sums
    funnel = {name: count for name, count, _, _ in report.funnel}
    assert funnel == {
        "purchase posts": 11,
        "orders": 9,
        "confirmed": 7,
        "paid": 6,
        "shipped": 4,
        "delivered": 2,
    }


def test_filters_narrow_to_one_campaign_or_platform(shop):
    a, _ = shop
    mastodon_only = sales_report(
        merchant_id=a.pk, date_from=DAY1, date_until=DAY2, tz=NEW_YORK, platform="mastodon"
    )
    assert {(r.day, r.platform) for r in mastodon_only.rows} == {
        (DAY1, "mastodon"),
        (DAY2, "mastodon"),
    }
    sandbox = a.campaigns.get(platform="sandbox")
    one_campaign = sales_report(
        merchant_id=a.pk, date_from=DAY1, date_until=DAY1, tz=NEW_YORK, campaign_id=sandbox.pk
    )
    assert [_numbers(r) for r in one_campaign.rows] == [EXPECTED[(DAY1, "sandbox")]]


def test_days_follow_the_time_zone_asked_for(shop):
    a, _ = shop
    in_utc = sales_report(merchant_id=a.pk, date_from=DAY1, date_until=DAY2, tz=UTC)
    sandbox = {r.day: r.orders for r in in_utc.rows if r.platform == "sandbox"}
    # 23:00 in New York on 1 November is day 1 in UTC; 22:00 on day 2 is the day after.
    assert sandbox == {DAY1: 5, DAY2: 2}


def _staff(merchant, name="staff"):
    user = staff_user_upsert(
        username=name, email=f"{name}@example.com", password="pw", merchant_id=merchant.pk
    )
    totp_enable(user)
    return user


def _table(page: str) -> list[list[str]]:
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.S)
    assert body is not None
    return [
        [unescape(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)]
        for tr in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]


def test_staff_see_their_merchants_report_and_its_csv_equals_the_table(client, shop):
    a, _ = shop
    client.force_login(_staff(a))
    params = {"date_from": DAY1.isoformat(), "date_until": DAY2.isoformat()}
    response = client.get(reverse(URL), params)
    assert response.status_code == 200
    page = response.content.decode()
    table = _table(page)
    assert [row[:2] for row in table] == [
        *[[day.isoformat(), platform] for day, platform in EXPECTED],
        ["Total", "all"],
    ]
    assert "999.00" not in page  # merchant B's order and refund
    download = client.get(reverse(URL), {**params, "format": "csv"})
    assert download["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(download.content.decode())))
    assert rows[0] == [heading for _, heading, _ in COLUMNS]
    assert rows[1:] == table
    # The chart: an SVG image named by its heading, each bar segment titled with its numbers.
    svg = re.search(r'<svg class="chart"[^>]*aria-labelledby="orders-per-day[^"]*"', page)
    assert svg is not None
    assert 'role="img"' in svg.group(0)
    assert "<title>02 Nov: 4 sandbox</title>" in page
    assert "<title>02 Nov: 2 mastodon</title>" in page
    assert "<title>delivered: 2</title>" in page  # the funnel
    # Each column is explained on the page, as the selector's docstring explains it.
    for _, heading, help_text in COLUMNS:
        assert f"<dt>{heading}</dt><dd>{escape(help_text)}</dd>" in page


def test_staff_cannot_see_another_merchant_by_asking(client, shop):
    a, b = shop
    client.force_login(_staff(a))
    theirs = b.campaigns.get()
    params = {"date_from": DAY1.isoformat(), "date_until": DAY2.isoformat()}
    # No merchant choice for staff: the parameter is ignored, their own report shows.
    page = client.get(reverse(URL), {**params, "merchant": b.pk}).content.decode()
    assert next(row[:2] for row in _table(page)) == [DAY2.isoformat(), "mastodon"]
    assert "999.00" not in page
    # Another merchant's campaign is not a choice.
    response = client.get(reverse(URL), {**params, "campaign": theirs.pk})
    assert response.status_code == 400
    assert "999.00" not in response.content.decode()


def test_operators_choose_a_merchant_or_all(client, shop):
    _a, b = shop
    operator = operator_upsert(username="ops", email="ops@example.com", password="pw")
    totp_enable(operator)
    client.force_login(operator)
    params = {"date_from": DAY1.isoformat(), "date_until": DAY2.isoformat()}
    theirs = _table(client.get(reverse(URL), {**params, "merchant": b.pk}).content.decode())
    assert theirs[-1][COLUMN_NAMES.index("refunds")] == "999.00"
    assert theirs[-1][COLUMN_NAMES.index("waitlist_joins")] == "7"
    everyone = client.get(reverse(URL), params).content.decode()
    assert "in the UTC time zone" in everyone
    total = _table(everyone)[-1]
    assert total[COLUMN_NAMES.index("refunds")] == "1034.00"  # 30 + 5 + 999


def test_staff_of_no_merchant_are_refused(client, shop):
    from accounts.models import User

    user = User.objects.create_user(username="nobody", password="pw", is_staff=True)
    totp_enable(user)
    client.force_login(user)
    assert client.get(reverse(URL)).status_code == 403


def test_a_reversed_or_too_long_range_is_an_error_not_a_report(client, shop):
    a, _ = shop
    client.force_login(_staff(a))
    reversed_range = {"date_from": DAY2.isoformat(), "date_until": DAY1.isoformat()}
    assert client.get(reverse(URL), reversed_range).status_code == 400
    too_long = {"date_from": "2024-01-01", "date_until": DAY2.isoformat()}
    assert client.get(reverse(URL), too_long).status_code == 400


def test_the_cost_does_not_grow_with_the_range_or_the_rows(
    client, shop, django_assert_max_num_queries
):
    a, _ = shop
    client.force_login(_staff(a))
    url = reverse(URL)
    client.get(url)  # the session and the second factor, once
    with django_assert_max_num_queries(18) as short:
        client.get(url, {"date_from": DAY1.isoformat(), "date_until": DAY2.isoformat()})
    with django_assert_max_num_queries(len(short)) as year:
        client.get(url, {"date_from": "2025-11-04", "date_until": DAY2.isoformat()})
    assert len(year) == len(short)


def test_each_transition_records_the_stage_it_reached_and_nothing_lowers_it():
    def stage(order: Order) -> int:
        return Order.objects.values_list("furthest_stage", flat=True).get(pk=order.pk)

    sale = cast(Order, OrderFactory(status=OrderStatus.CONFIRMED))
    for transition, reached in (
        ("pay", OrderStage.PAID),
        ("ship", OrderStage.SHIPPED),
        ("deliver", OrderStage.DELIVERED),
        ("refund_fully", OrderStage.DELIVERED),  # refunded after delivery: still delivered
    ):
        assert order_transition(order=sale, transition=transition, fields={})
        assert stage(sale) == reached, transition
    cancelled = cast(Order, OrderFactory(status=OrderStatus.CONFIRMED))
    assert order_transition(order=cancelled, transition="pay", fields={})
    assert order_transition(order=cancelled, transition="cancel", fields={})
    assert stage(cancelled) == OrderStage.PAID
    # Delivered after a refund on its way: no transition, the stage all the same.
    on_its_way = cast(Order, OrderFactory(status=OrderStatus.SHIPPED))
    assert order_transition(order=on_its_way, transition="refund_partly", fields={})
    assert stage(on_its_way) == OrderStage.NOT_PAID  # made shipped by the factory, not a transition
    assert not order_deliver(order_id=on_its_way.pk, delivered_at=_at(DAY2, 9))
    assert stage(on_its_way) == OrderStage.DELIVERED


def test_the_migration_reads_existing_orders_stages_from_status_and_audit_rows():
    """``furthest_stage_fill`` (the data migration): the stage the report read before it."""
    [path] = Path(migrations.__file__).parent.glob("*_sales_report_stage.py")
    fill = import_module(f"orders.migrations.{path.stem}").furthest_stage_fill
    at = _at(DAY1, 9)
    cases = {
        OrderStage.NOT_PAID: [(OrderStatus.CANCELLED, None), (OrderStatus.CONFIRMED, None)],
        OrderStage.PAID: [(OrderStatus.PAID, None), (OrderStatus.CANCELLED, "paid")],
        OrderStage.SHIPPED: [(OrderStatus.SHIPPED, None), (OrderStatus.REFUNDED, "paid")],
        OrderStage.DELIVERED: [
            (OrderStatus.DELIVERED, None),
            (OrderStatus.PARTIALLY_REFUNDED, "delivered"),
        ],
    }
    orders = {}
    for expected, made in cases.items():
        for status, kind in made:
            order = cast(Order, OrderFactory(status=status))
            if kind:
                _event(order, kind, at)
            orders[order.pk] = expected
    fill(django_apps, None)
    assert dict(Order.objects.values_list("pk", "furthest_stage")) == orders


@pytest.mark.postgres
@pytest.mark.parametrize("tz", [NEW_YORK, UTC])
@pytest.mark.parametrize("narrow", [{}, {"platform": "mastodon"}, {"campaign": "sandbox"}])
def test_postgresqls_day_by_day_reads_equal_the_portable_ones(shop, tz, narrow):
    """The report reads orders and posts a day at a time on PostgreSQL (``_ORDERS_PER_DAY_SQL``,
    ``social.selectors.posts_per_day``); the plain grouping other databases run must agree."""
    a, b = shop
    campaign_id = a.campaigns.get(platform="sandbox").pk if narrow.get("campaign") else None
    platform = narrow.get("platform")
    start = datetime.combine(date(2026, 11, 1), datetime.min.time(), tzinfo=tz)
    end = datetime.combine(date(2026, 11, 5), datetime.min.time(), tzinfo=tz)
    orders = Order.objects.filter(merchant_id__in=[a.pk, b.pk], created_at__gte=start)
    orders = orders.filter(created_at__lt=end)
    if campaign_id:
        orders = orders.filter(campaign_id=campaign_id)
    if platform:
        orders = orders.filter(platform=platform)
    fast = reports._orders_per_day_postgresql(
        merchant_ids=[a.pk, b.pk],
        start=start,
        end=end,
        tz=tz,
        campaign_id=campaign_id,
        platform=platform,
    )
    plain = reports._orders_per_day(orders, tz)
    assert fast  # something to compare
    assert sorted(fast, key=str) == sorted(plain, key=str)
    posts = {
        "campaign_ids": [c.pk for c in (*a.campaigns.all(), *b.campaigns.all())],
        "posted_from": start,
        "posted_until": end,
        "outcomes": ["order_created", "waitlisted", "sold_out"],
        "tz": tz,
    }
    assert len(posts_per_day(**posts)) >= 4
    assert sorted(posts_per_day(**posts)) == sorted(posts_per_day_portable(**posts))
