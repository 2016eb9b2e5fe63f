"""``process_posts``: decide every undecided inbox post, in batches."""

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from orders.pipeline import stage_decide


class Command(BaseCommand):
    help = "Decide every undecided inbox post (a batch per transaction) and print the outcomes."

    def handle(self, *args: Any, **options: Any) -> None:
        outcomes = stage_decide(now=timezone.now())
        total = sum(outcomes.values())
        self.stdout.write(f"decided {total} post(s)")
        for outcome, count in sorted(outcomes.items()):
            self.stdout.write(f"  {outcome}: {count}")
