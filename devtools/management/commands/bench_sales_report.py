"""``bench_sales_report``: time the sales report at a million orders (PostgreSQL)."""

import os
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils import timezone

from devtools.bench_sales_report import bench_report, sales_orders_load, sales_world_ensure


class Command(BaseCommand):
    help = (
        "Load bench orders, refunds and purchase posts of two merchants over 400 days (kept for "
        "the next run) and print the sales report's server time for a 30-day and a 365-day "
        "range, as one merchant's staff and as an operator. Needs PostgreSQL."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--orders",
            type=int,
            default=1_000_000,
            help="Bench orders of the two merchants to hold (default 1,000,000).",
        )
        parser.add_argument("--repeat", type=int, default=7, help="Timed requests per case.")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("The benchmark needs PostgreSQL: set DATABASE_URL.")
        if options["orders"] < 1 or options["repeat"] < 1:
            raise CommandError("--orders and --repeat must be positive.")
        world = sales_world_ensure()

        def progress(what: str, done: int, total: int) -> None:
            self.stdout.write(f"  loading {what}: {done:,}/{total:,}")

        total = sales_orders_load(world=world, target=options["orders"], progress=progress)
        self.stdout.write(f"orders of the two bench merchants: {total:,}")
        today = timezone.now().date()
        a = str(world.merchants[0].pk)

        def days(n: int) -> dict[str, str]:
            return {
                "date_from": (today - timedelta(days=n - 1)).isoformat(),
                "date_until": today.isoformat(),
            }

        cases = [
            (world.staff, "staff, 30 days", days(30)),
            (world.staff, "staff, 365 days", days(365)),
            (world.staff, "staff, 365 days, CSV", {**days(365), "format": "csv"}),
            (world.operator, "operator, merchant A, 365", {**days(365), "merchant": a}),
            (world.operator, "operator, all, 30 days", days(30)),
            (world.operator, "operator, all, 365 days", days(365)),
        ]
        self.stdout.write(
            f"{'report':<28} {'median ms':>10} {'max ms':>8} {'cpu ms':>8} {'sql ms':>8} "
            f"{'queries':>8} {'rows':>5}"
        )
        for user, label, params in cases:
            t = bench_report(user=user, label=label, params=params, repeat=options["repeat"])
            self.stdout.write(
                f"{t.label:<28} {t.median_ms:>10.1f} {t.max_ms:>8.1f} {t.cpu_median_ms:>8.1f} "
                f"{t.sql_ms:>8.1f} {t.queries:>8} {t.rows:>5}"
            )
        self.stdout.write(f"load average {os.getloadavg()[0]:.2f}")
