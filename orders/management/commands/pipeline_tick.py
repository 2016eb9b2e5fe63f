"""``pipeline_tick``: poll, decide, send, expire and remind once, in order, synchronously."""

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

STAGES = ("poll_feeds", "process_posts", "send_replies", "expire_orders", "remind_orders")


class Command(BaseCommand):
    help = (
        "Run poll_feeds, process_posts, send_replies, expire_orders and remind_orders once, "
        "in order; a stage that fails does not stop the next ones (exit status 1 at the end)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        failed = []
        for name in (
            "poll_feeds",
            "process_posts",
            "send_replies",
            "expire_orders",
            "remind_orders",
        ):
            self.stdout.write(f"== {name}")
            try:
                call_command(name, stdout=self.stdout, stderr=self.stderr)
            except CommandError as exc:
                # Already reported by the stage itself; the other stages still run.
                failed.append(f"{name}: {exc}")
        if failed:
            raise CommandError("; ".join(failed), returncode=1)
