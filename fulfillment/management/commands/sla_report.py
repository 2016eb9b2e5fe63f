"""Late and at-risk shipments; exits 1 when any is late, so that it can raise an alert."""

import csv
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from fulfillment.selectors import sla_rows


class Command(BaseCommand):
    help = (
        "Report shipments that are late (not shipped by their ship-by day, or not delivered by "
        "the promised day) or at risk. Exit code 1 when any is late, 0 otherwise."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--merchant", help="only this merchant (its slug)")
        parser.add_argument("--csv", action="store_true", help="CSV on standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = list(sla_rows(now=timezone.now(), merchant_slug=options["merchant"]))
        late = sum(row.state == "late" for row in rows)
        if options["csv"]:
            writer = csv.writer(self.stdout)
            writer.writerow(
                ("state", "merchant", "order", "status", "ship_by", "promised", "reason")
            )
            for row in rows:
                s = row.shipment
                writer.writerow(
                    (row.state, s.merchant.slug, s.order.confirmation_code, s.status,
                     s.ship_by, s.promised_delivery, row.reason)
                )  # fmt: skip
        else:
            for row in rows:
                s = row.shipment
                self.stdout.write(
                    f"{row.state.upper():8} {s.merchant.slug:16} #{s.order.confirmation_code} "
                    f"{s.status:14} {row.reason}"
                )
            self.stdout.write(f"{late} late, {len(rows) - late} at risk.")
        if late:
            raise SystemExit(1)
