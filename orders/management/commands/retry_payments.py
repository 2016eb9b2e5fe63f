"""``retry_payments``: run failed payment operations once more (captures, voids, refunds,
authorizations).

Exit status: 0 when no failed operation is left, 1 when any still is (with ``--dry-run``: when
any would be retried), so that it can drive an alert as ``sla_report`` does. ``--abandon ID
--reason TEXT`` closes one that was settled by hand (recorded on the order), so that ``/healthz``
is healthy again.
"""

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from orders.selectors import payment_operations_failed
from orders.services.payments import payment_operation_abandon, payment_operation_retry


class Command(BaseCommand):
    help = (
        "Retry every failed payment operation (or those named by --id), each once: an "
        "authorization or refund in doubt is looked up at the gateway first. Exit status 1 "
        "while any operation is still failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--id", type=int, action="append", dest="ids", help="only this operation (repeatable)"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="list what would be retried; change nothing"
        )
        parser.add_argument(
            "--abandon",
            type=int,
            metavar="ID",
            help="close this failed operation without retrying it (settled by hand)",
        )
        parser.add_argument("--reason", default="", help="why it is abandoned (with --abandon)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["abandon"] is not None:
            if not options["reason"].strip():
                raise CommandError("--abandon needs --reason: it is recorded on the order.")
            if options["dry_run"]:
                self.stdout.write(f"would abandon #{options['abandon']} (dry run).")
                return
            if not payment_operation_abandon(
                operation_id=options["abandon"],
                reason=options["reason"].strip(),
                actor="retry_payments",
                now=timezone.now(),
            ):
                raise CommandError(f"#{options['abandon']} is not a failed payment operation.")
            self.stdout.write(f"#{options['abandon']} abandoned.")
            return
        failed = payment_operations_failed(limit=100_000)
        if options["ids"]:
            failed = [op for op in failed if op.id in set(options["ids"])]
        for op in failed:
            self.stdout.write(
                f"{'would retry' if options['dry_run'] else 'retrying'}: #{op.id} "
                f"{op.operation} of order {op.order_id} ({op.attempts} attempt(s)): {op.error}"
            )
        if options["dry_run"]:
            self.stdout.write(f"{len(failed)} failed operation(s) would be retried (dry run).")
            if failed:
                raise SystemExit(1)
            return
        outcomes: Counter[str] = Counter()
        for op in tqdm(failed, desc="payments", unit="op", disable=None):
            status = payment_operation_retry(operation_id=op.id, now=timezone.now())
            outcomes[status] += 1
            if status != "done":
                self.stderr.write(f"#{op.id} {op.operation} of order {op.order_id}: {status}")
        self.stdout.write(
            f"payment operations: {outcomes['done']} done, {outcomes['pending']} retrying later, "
            f"{outcomes['failed']} still failed, {outcomes['busy'] + outcomes['not_failed']} "
            "taken by another worker"
        )
        if outcomes["failed"]:
            raise SystemExit(1)
