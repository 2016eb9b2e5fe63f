"""The merchant home page: the back office's index shows the merchant's work (issue 14)."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.services import MERCHANT_STAFF_PERMISSIONS, operator_upsert, staff_user_upsert
from accounts.tests.factories import CardholderFactory
from catalog.tests.factories import CampaignFactory
from fulfillment.business_days import next_business_day
from fulfillment.home import LIMIT, merchant_home
from fulfillment.models import ShipmentStatus
from fulfillment.selectors import labels_due, merchant_today
from fulfillment.tests.factories import ShipmentFactory
from orders.models import (
    Dispute,
    OrderStatus,
    OutboxStatus,
    PaymentOperation,
    Return,
    WaitlistEntry,
)
from social.tests.factories import PostFactory
from tests.mfa import totp_enable

pytestmark = pytest.mark.django_db


def _staff(client, merchant_id, username="s"):
    user = staff_user_upsert(
        username=username, email=f"{username}@example.com", password="pw", merchant_id=merchant_id
    )
    totp_enable(user)
    client.force_login(user)
    return user


def _home(client, **params) -> str:
    response = client.get(reverse("admin:index"), params)
    assert response.status_code == 200
    return response.content.decode()


def _due_tomorrow(campaign, **kwargs):
    """A paid order's shipment due on the merchant's next business day."""
    day = next_business_day(merchant_today(campaign.merchant, timezone.now()))
    return ShipmentFactory(
        order__campaign=campaign,
        order__status=OrderStatus.PAID,
        ship_by=day,
        promised_delivery=day + timedelta(days=2),
        **kwargs,
    )


def test_staff_see_the_labels_due_by_the_next_business_day_and_a_button_to_buy_them(client):
    campaign = CampaignFactory()
    due = _due_tomorrow(campaign)
    _due_tomorrow(CampaignFactory())  # another merchant's
    _staff(client, campaign.merchant_id)

    page = _home(client)

    # The page shows what the one label-queue selector returns: the same data set.
    queue = labels_due(now=timezone.now(), merchant_id=campaign.merchant_id)
    assert [s.pk for s in queue] == [due.pk]
    assert "Labels to buy" in page
    assert f"Order #{due.order.confirmation_code}" in page
    assert f"Ship by {due.ship_by:%a} {due.ship_by.day} {due.ship_by:%b}" in page
    assert reverse("admin:orders_order_change", args=[due.order_id]) in page
    assert reverse("admin:fulfillment_shipment_change", args=[due.pk]) in page
    assert "Buy labels (1)" in page
    assert page.count("Order #") == 1  # not the other merchant's


def test_the_home_page_the_queue_and_buy_labels_agree_on_what_to_ship(client):
    campaign = CampaignFactory()
    merchant = campaign.merchant
    today = merchant_today(merchant, timezone.now())
    tomorrow = next_business_day(today)
    later = next_business_day(tomorrow)
    due = [
        ShipmentFactory(
            order__campaign=campaign, ship_by=day, promised_delivery=later + timedelta(3)
        )
        for day in (today - timedelta(days=3), today, tomorrow)
    ]
    ShipmentFactory(order__campaign=campaign, ship_by=later, promised_delivery=later + timedelta(3))
    _due_tomorrow(CampaignFactory())  # another merchant's
    _staff(client, merchant.pk)

    labels = _home(client).split('id="home-labels-title"', 1)[1].split("</section>", 1)[0]
    on_home = set(re.findall(r"Order #(\w+)", labels))
    queue = io.StringIO()
    call_command("fulfillment_queue", "--csv", "--merchant", merchant.slug, stdout=queue)
    in_queue = {row["order"] for row in csv.DictReader(io.StringIO(queue.getvalue()))}
    dry_run = io.StringIO()
    call_command("buy_labels", "--dry-run", "--merchant", merchant.slug, stdout=dry_run)

    expected = {s.order.confirmation_code for s in due}
    assert on_home == in_queue == expected
    assert f"{len(expected)} label(s) would be bought" in dry_run.getvalue()
    assert f"Buy labels ({len(expected)})" in labels


def test_the_buy_labels_button_leads_to_a_page_staff_may_open(client):
    campaign = CampaignFactory()
    due = _due_tomorrow(campaign)
    _staff(client, campaign.merchant_id)
    page = _home(client)
    href = page.split('class="button home-buy-labels" href="', 1)[1].split('"', 1)[0]
    href = href.replace("&amp;", "&")
    response = client.get(href)
    assert response.status_code == 200
    if "?ids=" in href:  # the confirmation page (issue 14) is on this branch
        assert href.endswith(f"?ids={due.pk}")


def test_staff_without_the_shipping_permission_get_no_buy_button(client):
    campaign = CampaignFactory()
    _due_tomorrow(campaign)
    user = _staff(client, campaign.merchant_id)
    user.groups.clear()
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_order", "view_shipment"])
    )
    page = _home(client)
    assert "Buy labels (" not in page
    assert "Labels to buy" in page


# The merchant's other pages, each linked only for a user its page lets in.
OTHER_PAGES = {
    "Sales report": ("admin:orders_sales_report", "view_order"),
    "Alert settings": ("admin:orders_alertsettings_changelist", "view_alertsettings"),
    "Alerts": ("admin:orders_alert_changelist", "view_alert"),
    "Webhook endpoints": ("admin:orders_webhookendpoint_changelist", "view_webhookendpoint"),
    "Webhook deliveries": ("admin:orders_webhookdelivery_changelist", "view_webhookdelivery"),
}


def _links(page: str) -> dict[str, str]:
    """The page's links by their text."""
    return {
        text: href.replace("&amp;", "&")
        for href, text in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', page)
    }


def test_staff_reach_the_sales_report_alerts_and_webhooks_from_the_home_page(client):
    campaign = CampaignFactory()
    _staff(client, campaign.merchant_id)
    links = _links(_home(client))
    for text, (name, _) in OTHER_PAGES.items():
        assert links.get(text) == reverse(name), text
        response = client.get(links[text], follow=True)
        assert response.status_code == 200, (text, response.status_code)


@pytest.mark.parametrize("text", list(OTHER_PAGES))
def test_a_page_the_user_may_not_open_is_not_linked(client, text):
    campaign = CampaignFactory()
    user = _staff(client, campaign.merchant_id)
    name, codename = OTHER_PAGES[text]
    model = codename.removeprefix("view_")  # every right on it goes (change implies view)
    kept = [c for c in MERCHANT_STAFF_PERMISSIONS if c[1].split("_", 1)[1] != model]
    user.groups.clear()
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=[c for _, c in kept], content_type__app_label__in=[a for a, _ in kept]
        )
    )
    assert client.get(reverse(name)).status_code == 403  # the page would refuse
    page = _home(client)
    assert text not in _links(page)
    assert f'href="{reverse(name)}"' not in page
    assert set(OTHER_PAGES) - {text} <= set(_links(page))


def test_the_page_lists_late_shipments_open_cases_failed_payments_and_live_campaigns(client):
    campaign = CampaignFactory(stock_total=10, stock_reserved=3)
    today = merchant_today(campaign.merchant, timezone.now())
    late = ShipmentFactory(
        order__campaign=campaign,
        status=ShipmentStatus.AWAITING_LABEL,
        ship_by=today - timedelta(days=5),
        promised_delivery=today - timedelta(days=1),
    )
    disputed = ShipmentFactory(order__campaign=campaign).order
    now = timezone.now()
    dispute = Dispute.objects.create(
        order=disputed, merchant=campaign.merchant, opened_at=now, deadline=now + timedelta(days=3)
    )
    returned = ShipmentFactory(order__campaign=campaign).order
    case = Return.objects.create(
        order=returned, merchant=campaign.merchant, reason="too small", requested_at=now
    )
    failed = ShipmentFactory(order__campaign=campaign).order
    PaymentOperation.objects.create(
        order=failed,
        operation="capture",
        idempotency_key=f"order-{failed.pk}-capture",
        status=OutboxStatus.FAILED,
        attempts=5,
        result="card_declined",
    )
    for _ in range(2):
        WaitlistEntry.objects.create(
            campaign=campaign,
            merchant=campaign.merchant,
            cardholder=CardholderFactory(),
            post=PostFactory(),
            posted_at=now,
        )
    ended = CampaignFactory(
        product__merchant=campaign.merchant, ends_at=now - timedelta(hours=1), hashtag="Gone"
    )
    _staff(client, campaign.merchant_id)

    page = _home(client)

    assert f"Order #{late.order.confirmation_code}</a>: not delivered" in page
    assert "1 dispute waiting for an answer" in page
    assert reverse("admin:orders_dispute_change", args=[dispute.pk]) in page
    assert reverse("admin:orders_return_change", args=[case.pk]) in page
    assert f"Order #{failed.confirmation_code}</a>:\n        capture failed after 5 attempts" in (
        page
    )
    assert "(card_declined)" in page
    campaigns = page.split('id="home-campaigns-title"', 1)[1]
    assert f"#{campaign.hashtag}" in campaigns
    assert "<td>7 of 10</td>" in campaigns
    assert "<td>2</td>" in campaigns  # waiting
    assert reverse("admin:orders_campaign_dashboard", args=[campaign.pk]) in campaigns
    assert f"#{ended.hashtag}" not in campaigns


def test_operators_pick_the_merchant_whose_work_they_see(client):
    first, second = CampaignFactory(), CampaignFactory()
    due_first, due_second = _due_tomorrow(first), _due_tomorrow(second)
    operator = operator_upsert(username="op", email="op@example.com", password="pw")
    totp_enable(operator)
    client.force_login(operator)

    chooser = _home(client)
    assert 'name="merchant"' in chooser
    assert "Labels to buy" not in chooser

    page = _home(client, merchant=second.merchant_id)
    assert f"Order #{due_second.order.confirmation_code}" in page
    assert f"Order #{due_first.order.confirmation_code}" not in page


def test_a_staff_user_of_no_merchant_sees_no_work(client):
    campaign = CampaignFactory()
    _due_tomorrow(campaign)
    user = _staff(client, campaign.merchant_id)
    type(user).objects.filter(pk=user.pk).update(merchant=None)
    page = _home(client)
    assert "Labels to buy" not in page
    assert "Order #" not in page


def test_the_page_costs_the_same_queries_whatever_the_rows(client, django_assert_max_num_queries):
    campaign = CampaignFactory(stock_total=500)
    _staff(client, campaign.merchant_id)
    for _ in range(2):
        _due_tomorrow(campaign)
    with django_assert_max_num_queries(MAX_QUERIES):
        _home(client)
    for _ in range(60):
        _due_tomorrow(campaign)
    for _ in range(5):
        CampaignFactory(product__merchant=campaign.merchant)
    with django_assert_max_num_queries(MAX_QUERIES):
        page = _home(client)
    assert "Buy labels (50)" in page  # cut at fulfillment.home.LIMIT
    assert "every shipment awaiting a label" in page


# Session, user, permissions (2), the merchant, the label queue (merchants, closures,
# shipments), the SLA (merchants, shipments), disputes, returns, failed payments, campaigns, and
# the admin's own recent actions: measured at 16 (see the test); plus the merchant's time zone
# (``accounts.middleware.merchant_time_zone``) and whether it has alert settings (the app list).
MAX_QUERIES = 18


def test_the_home_page_reads_a_bounded_number_of_due_labels():
    """After a big sale the home page reads at most its page of due labels, not all of them."""
    campaign = CampaignFactory(stock_total=500)
    for _ in range(LIMIT + 5):
        _due_tomorrow(campaign)
    with CaptureQueriesContext(connection) as queries:
        home = merchant_home(merchant=campaign.merchant, now=timezone.now())
    assert len(home.label_ids) == LIMIT
    assert home.labels_more
    due_reads = [q["sql"] for q in queries.captured_queries if "= 'awaiting_label'" in q["sql"]]
    assert len(due_reads) == 1, due_reads
    assert f"LIMIT {LIMIT + 1}" in due_reads[0]
