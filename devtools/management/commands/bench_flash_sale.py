"""``bench_flash_sale``: the flash-sale benchmark on PostgreSQL and Redis with real workers."""

import argparse
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test.utils import override_settings

from devtools import bench_flash as bench


def _budget(text: str) -> tuple[int, int]:
    try:
        return bench.reply_budget_parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


class Command(BaseCommand):
    help = (
        "Run a flash sale through the real pipeline (PostgreSQL, Redis, Celery workers) in "
        "a database of its own, and print throughput, latency, invariants and the ratio to "
        "pgbench's TPC-B on the same server. Writes a JSON report."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--units", type=int, default=500, help="Stock S (default 500).")
        parser.add_argument(
            "--buyers",
            type=int,
            default=20_000,
            help="Linked cardholders N, one purchase post each (default 20,000).",
        )
        parser.add_argument("--noise", type=int, default=5_000, help="Noise posts (5,000).")
        parser.add_argument("--workers", type=int, default=2, help="Worker processes (2).")
        parser.add_argument(
            "--chunk", type=int, default=500, help="Posts per inbox insert and decide task (500)."
        )
        parser.add_argument(
            "--rate",
            type=float,
            default=1_000,
            help="Offered posts per second in the latency phase (1,000).",
        )
        parser.add_argument(
            "--rate-seconds",
            type=float,
            default=10,
            help="Length of the latency phase in seconds (10).",
        )
        parser.add_argument("--pgbench-seconds", type=int, default=10)
        parser.add_argument(
            "--pgbench-scale",
            type=int,
            default=10,
            help="pgbench's scale factor (10: a million accounts; 1 for a quick run).",
        )
        parser.add_argument(
            "--pgbench-clients",
            type=int,
            default=2,
            help="pgbench clients: as many as worker processes by default.",
        )
        parser.add_argument(
            "--reply-budget",
            type=_budget,
            default=None,
            metavar="N/SECONDS",
            help=(
                "The brand account's reply budget (100/900: X's 100 per 15 minutes). Given, the "
                "bench also sends the confirmation requests (publicly within the budget, the "
                "rest privately) and prints the time from purchase post to request."
            ),
        )
        parser.add_argument("--report-dir", default=str(Path(settings.VAR_DIR) / "bench"))
        parser.add_argument(
            "--keep-database",
            action="store_true",
            help="Keep the bench database for inspection afterwards.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql" or not settings.REDIS_URL:
            raise CommandError(
                "The benchmark needs PostgreSQL and Redis: set DATABASE_URL and REDIS_URL."
            )
        say = self.stdout.write
        params = {
            k: options[k]
            for k in (
                "units",
                "buyers",
                "noise",
                "workers",
                "chunk",
                "rate",
                "rate_seconds",
                "pgbench_seconds",
                "pgbench_clients",
                "pgbench_scale",
                "reply_budget",
            )
        }
        report = bench.Report(parameters=params)
        original = connection.settings_dict["NAME"]
        db = bench.bench_database_use(say)
        try:
            # The bench stands in for the poller, which runs without the debug cursor.
            with override_settings(DEBUG=False):
                self._run(report, db, options)
        finally:
            bench.bench_database_leave(original=original, keep=options["keep_database"], say=say)

    def _run(self, report: "bench.Report", db: dict[str, Any], options: dict[str, Any]) -> None:
        say = self.stdout.write
        sale = bench.sale_prepare(
            units=options["units"],
            buyers=options["buyers"],
            say=say,
            reply_budget=options["reply_budget"],
        )
        workers = bench.Workers(
            db=db, concurrency=options["workers"], log=Path(options["report_dir"]) / "workers.log"
        )
        try:
            say(
                f"flash sale: {options['buyers']:,} purchase posts + {options['noise']:,} noise "
                f"for {options['units']} units, {options['workers']} worker processes ..."
            )
            posts = bench.posts_make(
                sale=sale,
                hashtag="BuyKindleFireHD",
                purchases=sale.buyers,
                noise=options["noise"],
                first_id=10_000_000,
                on_network=options["reply_budget"] is not None,
            )
            flash = bench.phase_run(
                name="flash sale", posts=posts, chunk=options["chunk"], rate=None
            )
            report.phases.append(flash)
            self._phase(flash)
            if options["reply_budget"] is not None:
                budget, seconds = options["reply_budget"]
                say(f"confirmation requests under a reply budget of {budget} per {seconds} s ...")
                report.requests = bench.requests_run(sale=sale)
                say(
                    "  purchase post to confirmation request (public or private): last buyer "
                    f"{report.requests['last_buyer_seconds']} s, p50 "
                    f"{report.requests['p50_seconds']} s, p99 {report.requests['p99_seconds']} s, "
                    f"max {report.requests['max_seconds']} s; {report.requests['public']} public, "
                    f"{report.requests['private']} private"
                )
                say(f"  requests: {report.requests}")
            report.replies_queued_by_kind = bench.replies_by_kind()
            say(f"  replies queued by kind: {report.replies_queued_by_kind}")
            report.invariants = bench.invariants_check(
                campaign=sale.campaign, units=options["units"]
            )
            say(f"  invariants: {report.invariants}")
            report.queries_per_batch = bench.queries_per_batch(
                sale=sale, sizes=(10, options["chunk"]), first_id=30_000_000
            )
            say(f"  queries per batch (by posts in it): {report.queries_per_batch}")

            confirm, paid = bench.confirmations_run(sale=sale, chunk=options["chunk"])
            report.phases.append(confirm)
            report.confirmations_per_second = confirm.decided_per_second
            report.authorizations = paid
            say(
                f"confirmations: {confirm.stored} decided in {confirm.seconds:.2f} s = "
                f"{confirm.decided_per_second:,.0f}/s; outcomes {confirm.outcomes}"
            )
            say(f"  authorized and paid: {paid['paid']} in {paid['seconds']} s")

            total = int(options["rate"] * options["rate_seconds"])
            say(
                f"steady load: {total:,} posts offered at {options['rate']:,.0f}/s "
                "(a second sale of the same size) ..."
            )
            second = bench.campaign_make(
                product=sale.campaign.product, hashtag="BuyXbox360Bundle", units=options["units"]
            )
            buyers = sale.buyers[: int(total * 0.8)]
            steady_posts = bench.posts_make(
                sale=sale,
                hashtag=second.hashtag,
                purchases=buyers,
                noise=total - len(buyers),
                first_id=20_000_000,
            )
            steady = bench.phase_run(
                name="steady load",
                posts=steady_posts,
                chunk=max(1, int(options["rate"] / 20)),
                rate=options["rate"],
            )
            report.phases.append(steady)
            self._phase(steady)
        finally:
            workers.stop()
        report.pgbench = bench.pgbench_run(
            db=db,
            seconds=options["pgbench_seconds"],
            clients=options["pgbench_clients"],
            scale=options["pgbench_scale"],
            say=say,
        )
        ratio = flash.decided_per_second / report.pgbench["tps"]
        report.targets = {
            "decided_per_second": {
                "value": flash.decided_per_second,
                "target": 5000,
                "met": flash.decided_per_second >= 5000,
            },
            "ratio_to_pgbench": {"value": round(ratio, 2), "target": 2.5, "met": ratio >= 2.5},
            "p99_ms_at_offered_rate": {
                "value": steady.latency_ms["p99"],
                "target": 250,
                "met": steady.latency_ms["p99"] <= 250,
            },
            "orders_equal_units": report.invariants["orders_equal_units"],
        }
        if report.requests:
            last = report.requests["last_buyer_seconds"]
            report.targets["last_buyer_seconds_to_request"] = {
                "value": last,
                "target": 60,
                "met": last is not None and last <= 60,
            }
        say(
            f"pgbench TPC-B: {report.pgbench['tps']:,.0f} tps "
            f"({report.pgbench['clients']} clients); posts/s over tps = {ratio:.2f}"
        )
        for name, target in report.targets.items():
            say(f"target {name}: {target}")
        say(f"report: {bench.report_write(report, Path(options['report_dir']))}")

    def _phase(self, phase: "bench.Phase") -> None:
        self.stdout.write(
            f"{phase.name}: {phase.stored:,} stored of {phase.offered:,} offered, decided in "
            f"{phase.seconds:.2f} s = {phase.decided_per_second:,.0f} posts/s (stored and sent "
            f"in {phase.offered_in_seconds:.2f} s); latency ms "
            f"{phase.latency_ms}"
        )
        self.stdout.write(f"  outcomes: {phase.outcomes}")
