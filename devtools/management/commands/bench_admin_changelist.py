"""``bench_admin_changelist``: time the order change list at a million orders (PostgreSQL): the
list, its filters, and the support search (``orders.search``) by every key, with ``--explain``
printing the plan of each search's page query."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from devtools.bench_admin import (
    bench_changelist,
    bench_orders_load,
    bench_search_sample,
    bench_world_ensure,
)


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
        parser.add_argument(
            "--explain",
            action="store_true",
            help="Print the plan (EXPLAIN ANALYZE) of each search's page query.",
        )

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
        found = bench_search_sample(world)
        x_link = f"https://x.com/{found.handle}/status/{found.post_id}"
        one_day = {"created_from": found.day, "created_to": found.day}
        a_month = {"created_from": found.month_start, "created_to": found.day}
        cases = [
            (world.staff, "staff, all orders", {}),
            (world.staff, "staff, status=delivered", {"status__exact": "delivered"}),
            (world.staff, "staff, search by handle", {"q": found.handle}),
            (world.staff, "staff, page 20", {"p": "20"}),
            (world.operator, "operator, all orders", {}),
            (world.operator, "operator, status=paid", {"status__exact": "paid"}),
        ]
        searches = [
            (world.staff, "staff, code", {"q": found.code}),
            (world.staff, "staff, #code in lower case", {"q": f"#{found.code.lower()}"}),
            (world.staff, "staff, @HANDLE in capitals", {"q": f"@{found.handle.upper()}"}),
            (world.staff, "staff, post id", {"q": found.post_id}),
            (world.staff, "staff, X link", {"q": x_link}),
            (world.staff, "staff, one day a year ago", one_day),
            (world.staff, "staff, 30 days a year ago", a_month),
            (world.staff, "staff, e-mail (finds none)", {"q": found.email}),
            (world.operator, "operator, code", {"q": found.code}),
            (world.operator, "operator, e-mail", {"q": found.email}),
            (world.operator, "operator, card last four", {"q": found.last4}),
            (world.operator, "operator, one day", one_day),
        ]
        self.stdout.write(
            f"{'view':<28} {'median ms':>10} {'max ms':>8} {'sql ms':>8} {'queries':>8} {'rows':>5}"
        )
        plans = []
        for user, label, params in cases + searches:
            explain = options["explain"] and (user, label, params) in searches
            t = bench_changelist(
                user=user, label=label, params=params, repeat=options["repeat"], explain=explain
            )
            self.stdout.write(
                f"{t.label:<28} {t.median_ms:>10.1f} {t.max_ms:>8.1f} "
                f"{t.sql_ms:>8.1f} {t.queries:>8} {t.rows_shown:>5}"
            )
            if t.plan:
                plans.append(f"--- {t.label}: {params}\n{t.plan}")
        for plan in plans:
            self.stdout.write(plan)
