"""Re-encrypt every platform account's credentials with the first HASHCART_CREDENTIALS_KEY."""

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand
from tqdm import tqdm

from social.credentials import account_credentials_rotate, accounts_with_credentials


class Command(BaseCommand):
    help = (
        "Re-encrypt every platform account's credentials with the first key of "
        "HASHCART_CREDENTIALS_KEY (put the new key first, keep the old ones after it, run "
        "this, then drop the old keys). Safe to run again; exit 1 if any cannot be read."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would change, write nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = options["dry_run"]
        outcomes: Counter[str] = Counter()
        unreadable: list[int] = []
        for account_id in tqdm(
            accounts_with_credentials(), desc="accounts", unit="account", disable=None
        ):
            outcome = account_credentials_rotate(account_id=account_id, dry_run=dry_run)
            outcomes[outcome] += 1
            if outcome == "unreadable":
                unreadable.append(account_id)
        verb = "would be re-encrypted" if dry_run else "re-encrypted"
        self.stdout.write(
            f"credentials: {outcomes['rotated']} {verb} with the first key, "
            f"{outcomes['current']} already current, {len(unreadable)} unreadable"
        )
        if unreadable:
            ids = ", ".join(str(account_id) for account_id in unreadable)
            self.stderr.write(f"no configured key reads the credentials of account(s) {ids}")
            raise SystemExit(1)
