"""``poll_feeds``: read every enabled brand account's feed into the inbox, once."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from orders.pipeline import stage_poll


class Command(BaseCommand):
    help = (
        "Read every enabled brand account's feed into the inbox (all pages), once; "
        "exit status 1 when any feed failed."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        summary = stage_poll(now=timezone.now())
        self.stdout.write(f"stored {len(summary.stored)} new post(s)")
        for waiting in summary.waiting:
            self.stdout.write(f"waiting: {waiting}")
        for error in summary.errors:
            self.stderr.write(f"error: {error}")
        if summary.errors:
            raise CommandError(f"{len(summary.errors)} feed(s) failed", returncode=1)
