"""``alerts_sweep``: raise the merchant alerts due now, each once (the beat task's work)."""

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from orders.services.alerts.sweep import alerts_sweep


class Command(BaseCommand):
    help = (
        "Raise the merchant alerts due now (low stock, sold out, waitlist demand, failed "
        "payments, lapsing authorizations, late-shipment digests, disputes and returns), each "
        "once, and queue their e-mails (the e-mail sweep sends them)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        raised = alerts_sweep(now=timezone.now())
        summary = ", ".join(f"{kind} {n}" for kind, n in sorted(raised.items())) or "none"
        self.stdout.write(f"alerts raised: {summary}")
