"""``expire_orders``: expire pending orders whose confirmation window closed."""

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from orders.pipeline import stage_expire


class Command(BaseCommand):
    help = "Expire pending orders whose window closed behind the feed, releasing their units."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"expired {stage_expire(now=timezone.now())} order(s)")
