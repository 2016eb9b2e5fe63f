"""``pipeline_status``: feed lag, backlog per stage, oldest unsent reply."""

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from orders.selectors import pipeline_status


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


class Command(BaseCommand):
    help = "Print each feed's lag and state, and the backlog of every pipeline stage."

    def handle(self, *args: Any, **options: Any) -> None:
        status = pipeline_status(now=timezone.now())
        self.stdout.write("feeds:")
        if not status.feeds:
            self.stdout.write("  (none polled yet)")
        for feed in status.feeds:
            state = (
                "STOPPED (usage cap)"
                if feed.stopped
                else f"FAILING since {feed.failing_since:%Y-%m-%d %H:%M:%S}"
                if feed.failing_since
                else "ok"
            )
            error = f"  last error: {feed.last_error}" if feed.last_error else ""
            self.stdout.write(
                f"  {feed.account} {feed.feed}: lag {_secs(feed.lag_seconds)}, {state}{error}"
            )
        self.stdout.write(
            f"undecided posts: {status.undecided_posts} "
            f"(oldest {_secs(status.oldest_undecided_seconds)})"
        )
        queued = ", ".join(f"{k} {v}" for k, v in status.replies_queued.items()) or "none"
        self.stdout.write(
            f"replies unsent: {queued} (oldest {_secs(status.oldest_unsent_reply_seconds)})"
        )
        self.stdout.write(
            f"orders pending: {status.orders_awaiting_reply} awaiting their reply, "
            f"{status.orders_awaiting_confirmation} awaiting confirmation"
        )
        self.stdout.write(f"payment operations pending: {status.payments_pending}")
        failed = status.payments_failed
        self.stdout.write(
            f"payment operations failed: {len(failed)}"
            + (" (retry them with retry_payments)" if failed else "")
        )
        for op in failed:
            self.stdout.write(
                f"  #{op.id} {op.operation} of order {op.order_id}, {op.attempts} attempt(s), "
                f"failed {op.failed_at:%Y-%m-%d %H:%M} UTC: {op.error}"
            )
        self.stdout.write(f"e-mails pending: {status.emails_pending}")
        run = status.reconciliation
        if run is None:
            self.stdout.write("reconciliation: never run (reconcile_payments)")
        elif run.error:
            self.stdout.write(
                f"reconciliation: FAILED at {run.ran_at:%Y-%m-%d %H:%M} UTC: {run.error}"
            )
        else:
            found = len(run.mismatches)
            self.stdout.write(
                f"reconciliation: {run.ran_at:%Y-%m-%d %H:%M} UTC, {run.orders} orders, "
                f"{found} mismatch{'es' if found != 1 else ''}"
                + (" (reconcile_payments lists them)" if found else "")
            )
