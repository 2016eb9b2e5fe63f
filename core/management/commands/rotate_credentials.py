"""Re-encrypt every encrypted column (``core.crypto``) with the first HASHCART_CREDENTIALS_KEY."""

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand
from tqdm import tqdm

from core.crypto import column_rotate, column_rows, encrypted_columns


class Command(BaseCommand):
    help = (
        "Re-encrypt every secret at rest (platform accounts' credentials, webhook endpoints' "
        "signing secrets) with the first key of HASHCART_CREDENTIALS_KEY (put the new key "
        "first, keep the old ones after it, run this, then drop the old keys). Safe to run "
        "again; exit 1 if any cannot be read."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would change, write nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = options["dry_run"]
        verb = "would be re-encrypted" if dry_run else "re-encrypted"
        failed = False
        for model, field in encrypted_columns():
            label = f"{model._meta.label}.{field}"
            outcomes: Counter[str] = Counter()
            unreadable: list[Any] = []
            for pk in tqdm(column_rows(model, field), desc=label, unit="row", disable=None):
                outcome = column_rotate(model=model, field=field, pk=pk, dry_run=dry_run)
                outcomes[outcome] += 1
                if outcome == "unreadable":
                    unreadable.append(pk)
            self.stdout.write(
                f"{label}: {outcomes['rotated']} {verb} with the first key, "
                f"{outcomes['current']} already current, {len(unreadable)} unreadable"
            )
            if unreadable:
                failed = True
                ids = ", ".join(str(pk) for pk in unreadable)
                self.stderr.write(f"no configured key reads {label} of id(s) {ids}")
        if failed:
            raise SystemExit(1)
