"""``remind_orders``: e-mail the one reminder of pending orders whose window closes soon."""

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from orders.pipeline import stage_remind


class Command(BaseCommand):
    help = (
        "Queue and send one reminder e-mail for each pending order whose confirmation window "
        "closes within HASHCART_REMINDER_MINUTES."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"reminded {stage_remind(now=timezone.now())} order(s)")
