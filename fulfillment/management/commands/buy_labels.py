"""Buy the labels of the label queue (``labels_due``), which ships the orders and captures their
payments."""

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone
from tqdm import tqdm

from fulfillment.management.commands._due import add_due_options, horizon_words
from fulfillment.selectors import labels_due
from fulfillment.services import label_buy


class Command(BaseCommand):
    help = (
        "Buy a two-day label for every shipment due by each merchant's next business day (or "
        "--due-by), then capture the payments: the shipments 'fulfillment_queue' lists. Safe "
        "to run twice at once: each label is bought and each payment captured once."
    )

    def add_arguments(self, parser: Any) -> None:
        add_due_options(parser)
        parser.add_argument("--limit", type=int, default=0, help="at most this many labels")
        parser.add_argument(
            "--dry-run", action="store_true", help="list what would be bought; buy nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        horizon = horizon_words(now=now, options=options)  # refuses an unknown --merchant
        queue = labels_due(now=now, merchant_slug=options["merchant"], due_by=options["due_by"])
        if options["limit"]:
            queue = queue[: options["limit"]]
        if options["dry_run"]:
            for shipment in queue:
                self.stdout.write(
                    f"would buy: order #{shipment.order.confirmation_code} "
                    f"({shipment.merchant.slug}, ship by {shipment.ship_by:%Y-%m-%d})"
                )
            self.stdout.write(f"{len(queue)} label(s) would be bought, due {horizon} (dry run).")
            return
        if not queue:
            self.stdout.write(f"No label to buy: nothing to ship {horizon}.")
            return
        outcomes: Counter[str] = Counter()
        for shipment in tqdm(queue, desc="labels", unit="label", disable=None):
            outcome = label_buy(shipment_id=shipment.pk)
            outcomes[outcome.status] += 1
            if outcome.status == "failed":
                self.stderr.write(f"order #{shipment.order.confirmation_code}: {outcome.detail}")
        self.stdout.write(
            f"labels: {outcomes['bought']} bought (payments captured), "
            f"{outcomes['skipped']} skipped, {outcomes['failed']} failed"
        )
        if outcomes["failed"]:
            raise SystemExit(1)
