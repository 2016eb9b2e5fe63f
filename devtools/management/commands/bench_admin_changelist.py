"""``bench_admin_changelist``: time the order change list at a million orders (PostgreSQL)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from devtools.bench_admin import bench_changelist, bench_orders_load, bench_world_ensure


class Command(BaseCommand):
    help = (
        "Load bench orders (kept for the next run) and print the order change list's "
        "server time as merchant staff and as an operator. Needs PostgreSQL."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--orders",
            type=int,
            default=1_000_000,
            help="Bench orders to hold (default 1,000,000).",
        )
        parser.add_argument("--repeat", type=int, default=7, help="Timed requests per view.")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("The benchmark needs PostgreSQL: set DATABASE_URL.")
        if options["orders"] < 1 or options["repeat"] < 1:
            raise CommandError("--orders and --repeat must be positive.")
        world = bench_world_ensure()

        def progress(done: int, total: int) -> None:
            self.stdout.write(f"  loading orders: {done:,}/{total:,} ({done / total:.0%})")

        total = bench_orders_load(target=options["orders"], progress=progress)
        self.stdout.write(f"orders in the bench merchants: {total:,}")
        cases = [
            (world.staff, "staff, all orders", {}),
            (world.staff, "staff, status=delivered", {"status__exact": "delivered"}),
            (world.staff, "staff, search by handle", {"q": "buyer4242"}),
            (world.staff, "staff, page 20", {"p": "20"}),
            (world.operator, "operator, all orders", {}),
            (world.operator, "operator, status=paid", {"status__exact": "paid"}),
        ]
        self.stdout.write(
            f"{'view':<28} {'median ms':>10} {'max ms':>8} {'sql ms':>8} {'queries':>8} {'rows':>5}"
        )
        for user, label, params in cases:
            t = bench_changelist(user=user, label=label, params=params, repeat=options["repeat"])
            self.stdout.write(
                f"{t.label:<28} {t.median_ms:>10.1f} {t.max_ms:>8.1f} "
                f"{t.sql_ms:>8.1f} {t.queries:>8} {t.rows_shown:>5}"
            )
