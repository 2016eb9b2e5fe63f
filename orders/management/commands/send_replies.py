"""``send_replies``: send due replies, open confirmation windows, run payments, send e-mails."""

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from orders.pipeline import stage_send


class Command(BaseCommand):
    help = (
        "Send due replies within each account's rate budget, open the confirmation windows "
        "of the requests posted, run due payment operations, send privately the requests the "
        "reply budget cannot post in time, and send due e-mails."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        summary = stage_send(now=timezone.now())
        self.stdout.write(
            f"sent {summary.replies} reply(ies); opened {summary.windows_opened} window(s); "
            f"payments {dict(summary.payments) or 0}; e-mails {summary.emails}; "
            f"requests sent privately {summary.private_requests}"
        )
