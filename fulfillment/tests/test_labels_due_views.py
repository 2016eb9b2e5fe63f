"""Fulfillment views agree (issue 14): the label queue, ``buy_labels``, the shipment admin's
"Labels due" and its buy-labels page all show ``labels_due`` on one data set."""

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import cast

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.services import operator_upsert, staff_user_upsert
from catalog.models import Merchant
from catalog.tests.factories import MerchantFactory
from fulfillment.models import Shipment, ShipmentStatus
from fulfillment.tests.factories import ShipmentFactory
from orders.tests.factories import OrderFactory
from tests.mfa import totp_enable

pytestmark = pytest.mark.django_db

# A Friday, 11:00 in New York (the merchants' zone): today is Fri 4 Dec, the next business day
# Mon 7 Dec. A queue that stopped at "today" would miss Monday's shipment.
NOW = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)
FRI, MON, TUE = date(2026, 12, 4), date(2026, 12, 7), date(2026, 12, 8)


@dataclass
class DataSet:
    merchant: Merchant
    other: Merchant
    due_today: Shipment
    due_next_business_day: Shipment
    due_later: Shipment
    of_another_merchant: Shipment
    labelled: Shipment

    def codes(self, *shipments: Shipment) -> set[str]:
        return {s.order.confirmation_code for s in shipments}


def _shipment(merchant: Merchant, ship_by: date, **fields: object) -> Shipment:
    order = OrderFactory(campaign__product__merchant=merchant, status="paid")
    shipment = ShipmentFactory(
        order=order, ship_by=ship_by, promised_delivery=ship_by + timedelta(days=3), **fields
    )
    return cast(Shipment, shipment)


def merchant(slug: str) -> Merchant:
    return cast(Merchant, MerchantFactory(slug=slug))


def labels_due_data_set() -> DataSet:
    """One merchant's shipments due today, on the next business day and later, one already
    labelled, and another merchant's due today (the set every view of the queue must agree on;
    the merchant home page's test reads it too)."""
    ours, other = merchant("acme"), merchant("other")
    return DataSet(
        merchant=ours,
        other=other,
        due_today=_shipment(ours, FRI),
        due_next_business_day=_shipment(ours, MON),
        due_later=_shipment(ours, TUE),
        of_another_merchant=_shipment(other, FRI),
        labelled=_shipment(
            ours,
            FRI,
            status=ShipmentStatus.LABEL_BOUGHT,
            carrier="sandbox",
            tracking_number="T1",
        ),
    )


def _client(user) -> Client:
    totp_enable(user)
    client = Client()
    client.force_login(user)
    return client


def staff_of(merchant: Merchant) -> Client:
    return _client(
        staff_user_upsert(
            username=f"staff-{merchant.slug}",
            email=f"{merchant.slug}@example.com",
            password="pw",
            merchant_id=merchant.pk,
        )
    )


def operator() -> Client:
    return _client(operator_upsert(username="op", email="op@example.com", password="pw"))


def queue_codes(*args: str) -> set[str]:
    out = io.StringIO()
    call_command("fulfillment_queue", "--csv", *args, stdout=out)
    return {row["order"] for row in csv.DictReader(io.StringIO(out.getvalue()))}


def dry_run_codes(*args: str) -> set[str]:
    out = io.StringIO()
    call_command("buy_labels", "--dry-run", *args, stdout=out)
    codes = set(re.findall(r"would buy: order #(\w+)", out.getvalue()))
    assert f"{len(codes)} label(s) would be bought" in out.getvalue()
    return codes


def admin_rows(client: Client, **query: str) -> list[Shipment]:
    response = client.get(reverse("admin:fulfillment_shipment_changelist"), query)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def admin_codes(client: Client, **query: str) -> set[str]:
    return {s.order.confirmation_code for s in admin_rows(client, **query)}


def buy_page_codes(client: Client) -> set[str]:
    response = client.get(reverse("admin:fulfillment_shipment_buy_labels"))
    assert response.status_code == 200
    return {line.shipment.order.confirmation_code for line in response.context["purchase"].buying}


def test_the_queue_buy_labels_and_the_admin_agree_on_one_data_set():
    with time_machine.travel(NOW, tick=False):
        data = labels_due_data_set()
        ours = data.codes(data.due_today, data.due_next_business_day)
        everyone = ours | data.codes(data.of_another_merchant)
        # One merchant: its staff's admin list, the queue and the dry run, for that merchant.
        assert queue_codes("--merchant", "acme") == ours
        assert dry_run_codes("--merchant", "acme") == ours
        staff = staff_of(data.merchant)
        assert admin_codes(staff, labels_due="next") == ours
        # In the queue's order too: the most overdue first.
        assert admin_rows(staff, labels_due="next") == [
            data.due_today,
            data.due_next_business_day,
        ]
        assert buy_page_codes(staff) == ours
        # Every merchant: the operators' view and the commands without --merchant.
        assert queue_codes() == dry_run_codes() == everyone
        assert admin_codes(operator(), labels_due="next") == everyone
        # A later horizon, the same way everywhere.
        later = ours | data.codes(data.due_later)
        assert queue_codes("--merchant", "acme", "--due-by", f"{TUE}") == later
        assert dry_run_codes("--merchant", "acme", "--due-by", f"{TUE}") == later
        assert admin_codes(staff, labels_due=f"{TUE}") == later
        # The other merchant's staff see only theirs.
        assert admin_codes(staff_of(data.other), labels_due="next") == data.codes(
            data.of_another_merchant
        )


def test_staff_find_a_shipment_by_its_order_code_within_their_merchant():
    with time_machine.travel(NOW, tick=False):
        data = labels_due_data_set()
        code = data.due_later.order.confirmation_code
        assert admin_codes(staff_of(data.merchant), q=f"#{code.lower()}") == {code}
        assert admin_codes(staff_of(data.other), q=f"#{code}") == set()


def test_the_buy_page_says_what_due_means_and_a_bare_post_buys_nothing():
    with time_machine.travel(NOW, tick=False):
        data = labels_due_data_set()
        staff = staff_of(data.merchant)
        page = staff.get(reverse("admin:fulfillment_shipment_buy_labels")).content.decode()
        assert "The labels due by Mon 7 Dec" in page
        response = staff.post(reverse("admin:fulfillment_shipment_buy_labels"), {}, follow=True)
        assert [str(m) for m in response.context["messages"]] == ["No label to buy."]
        assert Shipment.objects.filter(status=ShipmentStatus.AWAITING_LABEL).count() == 4
        Shipment.objects.filter(merchant=data.merchant).delete()
        page = staff.get(reverse("admin:fulfillment_shipment_buy_labels")).content.decode()
        assert "Nothing to ship by Mon 7 Dec: no label is due." in page
