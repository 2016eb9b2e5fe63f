"""``reconcile_payments``: compare the gateway's books with the orders and print every mismatch.

Exit status: 0 when the books agree, 1 when any mismatch is found (so that it can drive an
alert), 2 when the gateway cannot be read. Beat runs the same comparison daily
(``orders.reconcile_payments``); ``pipeline_status`` shows the latest result.
"""

import csv
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from orders.payments.base import GatewayError
from orders.services.reconcile import MISMATCH_KINDS, reconciliation_run


def _date(value: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
    except ValueError:
        raise CommandError(f"--since: {value!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = (
        "Compare the payment gateway's records (holds, captures, voids) with the orders "
        "authorized since --since (default: HASHCART_RECONCILE_DAYS ago) and print every "
        "mismatch. Exit status 1 when any is found."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=_date, help="first day to compare (YYYY-MM-DD, UTC)")
        parser.add_argument(
            "--format", choices=["table", "csv"], default="table", help="output (table)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        since = options["since"] or now - timedelta(days=settings.HASHCART["RECONCILE_DAYS"])
        self.stderr.write(f"reading the gateway's records since {since:%Y-%m-%d %H:%M} UTC ...")
        try:
            run = reconciliation_run(since=since, now=now)
        except GatewayError as exc:
            self.stderr.write(f"the gateway could not be read: {exc}")
            raise SystemExit(2) from exc
        rows = [(m["kind"], m["order_id"], m["detail"]) for m in run.mismatches]
        if options["format"] == "csv":
            writer = csv.writer(self.stdout)
            writer.writerow(["kind", "order_id", "detail"])
            writer.writerows(rows)
        else:
            self.stdout.write(
                f"{run.records} gateway records, {run.orders} orders compared: "
                f"{len(rows)} mismatch{'es' if len(rows) != 1 else ''}."
            )
            if rows:
                width = max(len(kind) for kind, _, _ in rows)
                self.stdout.write(f"{'kind':<{width}}  {'order':>8}  detail")
                for kind, order_id, detail in rows:
                    order = "-" if order_id is None else str(order_id)
                    self.stdout.write(f"{kind:<{width}}  {order:>8}  {detail}")
                self.stdout.write("")
                for kind in sorted({kind for kind, _, _ in rows}):
                    self.stdout.write(f"{kind}: {MISMATCH_KINDS[kind]}")
        if rows:
            raise SystemExit(1)
