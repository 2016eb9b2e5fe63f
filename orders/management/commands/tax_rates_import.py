"""``tax_rates_import FILE``: replace the sales-tax rates table with a newer CSV (DESIGN §3.8).

The file has the shipped table's columns (``orders/tax/rates/SOURCES.md``). Every row is checked
first, with progress on stderr; any bad row is reported with its line number and nothing is
changed. A good file replaces the whole table in one transaction.
"""

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from orders.services.tax import tax_rates_replace
from orders.tax.rates import RateRow, RatesInvalid, rates_check, rates_parse


class Command(BaseCommand):
    help = "Check a CSV of sales-tax rates and, if every row is good, replace the table with it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="CSV with the shipped table's columns")
        parser.add_argument(
            "--check", action="store_true", help="Only check the file; change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            stream = path.open(newline="", encoding="utf-8-sig")
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from exc
        rows: list[RateRow] = []
        errors: list[str] = []
        with stream:
            try:
                for row, row_errors in tqdm(
                    rates_parse(stream), desc="rates", unit="row", disable=None, file=sys.stderr
                ):
                    errors.extend(row_errors)
                    if row is not None:
                        rows.append(row)
            except UnicodeDecodeError as exc:
                raise CommandError(f"{path}: not UTF-8 text ({exc.reason})") from exc
        try:
            rows = rates_check(rows, errors)
        except RatesInvalid as exc:
            raise CommandError(
                f"{path}: {len(exc.errors)} error(s), nothing changed:\n" + "\n".join(exc.errors)
            ) from exc
        states = len({row.state for row in rows if not row.zip_prefix})
        local = sum(1 for row in rows if row.zip_prefix)
        if options["check"]:
            self.stdout.write(f"{path}: good ({states} state rates, {local} local rates)")
            return
        removed, added = tax_rates_replace(rows=rows)
        self.stdout.write(
            f"replaced {removed} rate(s) with {added} ({states} state rates, {local} local rates)"
        )
