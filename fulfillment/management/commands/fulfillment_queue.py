"""What to pick, pack and ship today, per merchant (a table, or CSV for a spreadsheet)."""

import csv
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from core.exports import csv_safe
from fulfillment.selectors import labels_due

COLUMNS = ("ship_by", "merchant", "order", "product", "sku", "name", "city", "state", "zip")


class Command(BaseCommand):
    help = "List the shipments whose label is due today or earlier, most overdue first."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--merchant", help="only this merchant (its slug)")
        parser.add_argument("--csv", action="store_true", help="CSV on standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = [
            (
                f"{s.ship_by:%Y-%m-%d}",
                s.merchant.slug,
                s.order.confirmation_code,
                s.order.product_name,
                s.order.product_sku,
                s.order.ship_to.get("name", ""),
                s.order.ship_to.get("city", ""),
                s.order.ship_to.get("state", ""),
                s.order.ship_to.get("postal_code", ""),
            )
            for s in labels_due(now=timezone.now(), merchant_slug=options["merchant"])
        ]
        if options["csv"]:
            writer = csv.writer(self.stdout)
            writer.writerow(COLUMNS)
            # Names and addresses come from cardholders: no spreadsheet formulas.
            writer.writerows([csv_safe(value) for value in row] for row in rows)
            return
        if not rows:
            self.stdout.write("Nothing to ship today.")
            return
        widths = [max(len(str(v)) for v in column) for column in zip(COLUMNS, *rows, strict=False)]
        for row in [COLUMNS, *rows]:
            self.stdout.write("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
        self.stdout.write(f"{len(rows)} shipment(s) to ship.")
