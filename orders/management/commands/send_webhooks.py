"""``send_webhooks``: send due webhook deliveries (the beat's ``orders.webhooks_send``)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orders.services.webhooks import webhooks_send_all


class Command(BaseCommand):
    help = (
        "Send due webhook deliveries to merchants' endpoints, signed (Standard Webhooks), "
        "batch after batch while full ones come, for at most --seconds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seconds", type=float, default=50.0)

    def handle(self, *args: Any, **options: Any) -> None:
        attempted = webhooks_send_all(seconds=options["seconds"])
        self.stdout.write(f"webhook attempts made: {attempted}")
