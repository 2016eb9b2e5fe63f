"""Ask the carriers about every shipment on its way and move them on; then the returns (labels
still missing bought, those on their way back polled)."""

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone
from tqdm import tqdm

from fulfillment.carriers.base import CarrierError
from fulfillment.services import shipment_track, shipments_to_track
from fulfillment.services.returns import returns_sweep


class Command(BaseCommand):
    help = "Poll the carriers for shipments with a label, in transit or in exception."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count them; poll nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        ids = shipments_to_track()
        if options["dry_run"]:
            self.stdout.write(f"{len(ids)} shipment(s) would be tracked (dry run).")
            return
        statuses: Counter[str] = Counter()
        for shipment_id in tqdm(ids, desc="tracking", unit="shipment", disable=None):
            try:
                statuses[shipment_track(shipment_id=shipment_id, now=timezone.now())] += 1
            except CarrierError as exc:
                statuses["carrier error"] += 1
                self.stderr.write(f"shipment {shipment_id}: {exc}")
        self.stdout.write(f"tracked {len(ids)} shipment(s): {dict(sorted(statuses.items()))}")
        returns = returns_sweep(now=timezone.now())
        self.stdout.write(
            f"returns: {returns['labels']} label(s) bought, {returns['tracked']} tracked, "
            f"{returns['failed']} carrier error(s)"
        )
