"""``poll_feeds``: read every enabled brand account's feed into the inbox, once."""

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from orders.pipeline import stage_poll


class Command(BaseCommand):
    help = "Read every enabled brand account's feed into the inbox (all pages), once."

    def handle(self, *args: Any, **options: Any) -> None:
        summary = stage_poll(now=timezone.now())
        self.stdout.write(f"stored {len(summary.stored)} new post(s)")
        for error in summary.errors:
            self.stderr.write(f"error: {error}")
