"""What to pick, pack and ship by the next business day, per merchant (a table, or CSV for a
spreadsheet): ``labels_due``, the list the admin and the merchant home page show."""

import csv
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from core.exports import csv_safe
from fulfillment.management.commands._due import add_due_options, horizon_words
from fulfillment.models import Shipment
from fulfillment.selectors import labels_due
from orders.addresses import ship_to_fields, ship_to_one_line

# The CSV's columns. Spreadsheets and scripts read them by name: add new ones at the end, never
# rename or reorder ("zip" is the ship-to postal code, named before the address was complete).
COLUMNS = (
    "ship_by",
    "merchant",
    "order",
    "product",
    "sku",
    "name",
    "city",
    "state",
    "zip",
    "line1",
    "line2",
    "country",
    "variant",
    "quantity",
    "promised_delivery",
)
TABLE = ("ship by", "merchant", "order", "product", "qty", "ship to", "address")


def csv_row(s: Shipment) -> tuple[object, ...]:
    order, to = s.order, ship_to_fields(s.order.ship_to)
    return (
        f"{s.ship_by:%Y-%m-%d}",
        s.merchant.slug,
        order.confirmation_code,
        order.product_name,
        order.product_sku,
        to["name"],
        to["city"],
        to["state"],
        to["postal_code"],
        to["line1"],
        to["line2"],
        to["country"],
        order.variant_label,
        order.quantity,
        f"{s.promised_delivery:%Y-%m-%d}",
    )


class Command(BaseCommand):
    help = (
        "List the shipments whose label is due by each merchant's next business day (or "
        "--due-by), most overdue first. CSV columns (--csv), in this order: "
        + ", ".join(COLUMNS)
        + ". Dates are YYYY-MM-DD; 'order' is the order code without '#'; 'zip' is the "
        "postal code; 'country' an ISO code."
    )

    def add_arguments(self, parser: Any) -> None:
        add_due_options(parser)
        parser.add_argument("--csv", action="store_true", help="CSV on standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        horizon = horizon_words(now=now, options=options)  # refuses an unknown --merchant
        queue = labels_due(now=now, merchant_slug=options["merchant"], due_by=options["due_by"])
        if options["csv"]:
            writer = csv.writer(self.stdout)
            writer.writerow(COLUMNS)
            # Names and addresses come from cardholders: no spreadsheet formulas.
            writer.writerows([csv_safe(value) for value in csv_row(s)] for s in queue)
            return
        if not queue:
            self.stdout.write(f"Nothing to ship {horizon}.")
            return
        rows = [
            (
                f"{s.ship_by:%Y-%m-%d}",
                s.merchant.slug,
                f"#{s.order.confirmation_code}",
                s.order.product_name
                + (f" ({s.order.variant_label})" if s.order.variant_label else ""),
                str(s.order.quantity),
                ship_to_fields(s.order.ship_to)["name"],
                ship_to_one_line(s.order.ship_to),
            )
            for s in queue
        ]
        widths = [max(len(str(v)) for v in column) for column in zip(TABLE, *rows, strict=False)]
        for row in [TABLE, *rows]:
            self.stdout.write("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
        self.stdout.write(f"{len(rows)} shipment(s) to ship {horizon}.")
