"""``pipeline_tick``: poll, decide, send and expire once, in order, synchronously."""

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run poll_feeds, process_posts, send_replies and expire_orders once, in order."

    def handle(self, *args: Any, **options: Any) -> None:
        for name in ("poll_feeds", "process_posts", "send_replies", "expire_orders"):
            self.stdout.write(f"== {name}")
            call_command(name, stdout=self.stdout, stderr=self.stderr)
