"""``bench_dashboard``: time a campaign's dashboard beside millions of other merchants' posts."""

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from devtools.bench_dashboard import (
    analyze,
    bench_dashboard,
    dashboard_world_ensure,
    orders_load,
    posts_load,
)


class Command(BaseCommand):
    help = (
        "Load inbox posts of another merchant (kept for the next run) and print the server time "
        "of one campaign's dashboard as its merchant's staff. Needs PostgreSQL."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--posts",
            type=int,
            default=10_000_000,
            help="Inbox posts of another merchant to hold (default 10,000,000).",
        )
        parser.add_argument(
            "--own-posts",
            type=int,
            default=20_000,
            help="Inbox posts of the measured campaign (default 20,000).",
        )
        parser.add_argument(
            "--own-orders",
            type=int,
            default=5_000,
            help="Orders of the measured campaign (default 5,000).",
        )
        parser.add_argument("--repeat", type=int, default=7, help="Timed requests (median).")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("The benchmark needs PostgreSQL: set DATABASE_URL.")
        if min(options["posts"], options["own_posts"], options["own_orders"]) < 0:
            raise CommandError("--posts, --own-posts and --own-orders cannot be negative.")
        if options["repeat"] < 1:
            raise CommandError("--repeat must be positive.")
        world = dashboard_world_ensure()

        def progress(done: int, total: int) -> None:
            self.stdout.write(f"  loading posts: {done:,}/{total:,} ({done / total:.0%})")

        other = posts_load(
            world=world, campaign=world.other_campaign, target=options["posts"], progress=progress
        )
        own = posts_load(
            world=world, campaign=world.campaign, target=options["own_posts"], progress=progress
        )
        orders = orders_load(campaign=world.campaign, target=options["own_orders"])
        analyze()
        self.stdout.write(
            f"inbox: {other:,} posts of another merchant, {own:,} of the measured campaign "
            f"({orders:,} orders)"
        )
        t = bench_dashboard(world=world, repeat=options["repeat"])
        load = os.getloadavg()[0]
        self.stdout.write(
            f"dashboard: median {t.median_ms:.1f} ms, max {t.max_ms:.1f} ms (server CPU median "
            f"{t.cpu_median_ms:.1f} ms), sql {t.sql_ms:.1f} ms in {t.queries} queries, "
            f"{t.purchase_posts:,} purchase posts counted (load average {load:.2f})"
        )
