"""Orders since a date as CSV: for accounting, reconciliation and support."""

import csv
import sys
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.exports import csv_safe
from orders.models import Order

COLUMNS = (
    "order",
    "code",
    "created_at",
    "status",
    "merchant",
    "campaign_hashtag",
    "product",
    "sku",
    "quantity",
    "unit_price",
    "subtotal",
    "tax",
    "total",
    "currency",
    "platform",
    "author_handle",
    "ship_state",
    "ship_zip",
    "ship_by",
    "promised_delivery",
    "carrier",
    "tracking",
)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date like 2026-11-30.") from None


class Command(BaseCommand):
    help = "Write the orders created on or after --since (UTC dates) as CSV."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--since", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--until", help="last day, YYYY-MM-DD (default: today)")
        parser.add_argument("--merchant", help="only this merchant (its slug)")
        parser.add_argument("--output", help="a file to write (default: standard output)")

    def handle(self, *args: Any, **options: Any) -> None:
        utc = ZoneInfo("UTC")
        since = datetime.combine(_day(options["since"]), time.min, tzinfo=utc)
        orders = Order.objects.filter(created_at__gte=since)
        if options["until"]:
            until = datetime.combine(_day(options["until"]), time.max, tzinfo=utc)
            orders = orders.filter(created_at__lte=until)
        if options["merchant"]:
            orders = orders.filter(merchant__slug=options["merchant"])
        orders = orders.select_related("merchant", "shipment").order_by("id")
        total = orders.count()
        out = open(options["output"], "w", newline="") if options["output"] else self.stdout  # noqa: SIM115
        try:
            writer = csv.writer(out)
            writer.writerow(COLUMNS)
            for order in tqdm(
                orders.iterator(chunk_size=2000),
                total=total,
                desc="orders",
                unit="order",
                disable=None,
                file=sys.stderr,
            ):
                shipment = getattr(order, "shipment", None)
                row = (
                    order.pk,
                    order.confirmation_code,
                    order.created_at.isoformat(),
                    order.status,
                    order.merchant.slug,
                    order.hashtag,
                    order.product_name,
                    order.product_sku,
                    order.quantity,
                    order.unit_price,
                    order.subtotal,
                    order.tax_total,
                    order.total,
                    order.currency,
                    order.platform,
                    order.author_handle,
                    order.ship_to.get("state", ""),
                    order.ship_to.get("postal_code", ""),
                    shipment.ship_by if shipment else "",
                    shipment.promised_delivery if shipment else "",
                    shipment.carrier if shipment else "",
                    shipment.tracking_number if shipment else "",
                )
                # Handles, product names and addresses come from outside: no formulas.
                writer.writerow(csv_safe(value) for value in row)
        finally:
            if options["output"]:
                out.close()
        if options["output"]:
            self.stderr.write(f"{total} order(s) written to {options['output']}")
