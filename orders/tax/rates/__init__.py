"""The shipped sales-tax rates (see SOURCES.md) and the reader of rate files.

A rate file is a CSV with the header ``state,zip_prefix,jurisdiction,rate_percent,source,
effective_date``: a state's rate has an empty ``zip_prefix``; a local rate names the first three
digits of the ZIP codes it applies to, and is added to the state's. ``rates_read`` checks every
row and reports every bad one with its line number, so a file is loaded whole or not at all.
"""

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

SHIPPED = Path(__file__).parent / "us_2025.csv"
HEADER = ("state", "zip_prefix", "jurisdiction", "rate_percent", "source", "effective_date")
# US states, DC and the territories a card's billing address may name.
STATES = frozenset(
    [
        "AL",
        "AK",
        "AZ",
        "AR",
        "CA",
        "CO",
        "CT",
        "DE",
        "DC",
        "FL",
        "GA",
        "HI",
        "ID",
        "IL",
        "IN",
        "IA",
        "KS",
        "KY",
        "LA",
        "ME",
        "MD",
        "MA",
        "MI",
        "MN",
        "MS",
        "MO",
        "MT",
        "NE",
        "NV",
        "NH",
        "NJ",
        "NM",
        "NY",
        "NC",
        "ND",
        "OH",
        "OK",
        "OR",
        "PA",
        "RI",
        "SC",
        "SD",
        "TN",
        "TX",
        "UT",
        "VT",
        "VA",
        "WA",
        "WV",
        "WI",
        "WY",
        "PR",
        "GU",
        "VI",
        "AS",
        "MP",
    ]
)
_ZIP_PREFIX = re.compile(r"[0-9]{3}")
# Field lengths of ``orders.models.TaxRate``.
_JURISDICTION_MAX, _SOURCE_MAX = 100, 200


@dataclass(frozen=True, slots=True)
class RateRow:
    line: int
    state: str
    zip_prefix: str
    jurisdiction: str
    rate: Decimal  # a fraction: 0.04 is 4%
    source: str
    effective_date: date


class RatesInvalid(Exception):
    """The file has bad rows; ``errors`` names each with its line number."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def _row(line: int, values: dict[str, str]) -> tuple[RateRow | None, list[str]]:
    errors = []
    state = values["state"].strip().upper()
    prefix = values["zip_prefix"].strip()
    jurisdiction = values["jurisdiction"].strip()
    source = values["source"].strip()
    if state not in STATES:
        errors.append(f"line {line}: unknown state {values['state']!r}")
    if prefix and not _ZIP_PREFIX.fullmatch(prefix):
        errors.append(f"line {line}: zip_prefix {prefix!r} is not three digits")
    if not jurisdiction or len(jurisdiction) > _JURISDICTION_MAX:
        errors.append(f"line {line}: jurisdiction must be 1 to {_JURISDICTION_MAX} characters")
    if len(source) > _SOURCE_MAX:
        errors.append(f"line {line}: source is longer than {_SOURCE_MAX} characters")
    try:
        percent = Decimal(values["rate_percent"].strip())
        if not (percent.is_finite() and 0 <= percent < 100):
            raise InvalidOperation
        rate = percent / 100
        if rate != round(rate, 5):
            errors.append(f"line {line}: rate_percent {percent} has more than 3 decimals")
    except InvalidOperation:
        errors.append(f"line {line}: rate_percent {values['rate_percent']!r} is not 0 to 100")
        rate = Decimal(0)
    try:
        effective = date.fromisoformat(values["effective_date"].strip())
    except ValueError:
        errors.append(f"line {line}: effective_date {values['effective_date']!r} is not YYYY-MM-DD")
        effective = date.min
    if errors:
        return None, errors
    return RateRow(line, state, prefix, jurisdiction, rate, source, effective), []


def rates_parse(stream: IO[str]) -> Iterator[tuple[RateRow | None, list[str]]]:
    """Each data row of a rate file, parsed, with its errors (lazily: for progress)."""
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != HEADER:
        yield None, [f"line 1: the header must be {','.join(HEADER)}"]
        return
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(HEADER):
            yield None, [f"line {line}: {len(values)} fields, {len(HEADER)} expected"]
            continue
        yield _row(line, dict(zip(HEADER, values, strict=True)))


def rates_read(stream: IO[str]) -> list[RateRow]:
    """Every row of a rate file; raises ``RatesInvalid`` listing every bad row (and every
    duplicate, and local rates of a state that has no state row)."""
    rows: list[RateRow] = []
    errors: list[str] = []
    for row, row_errors in rates_parse(stream):
        errors.extend(row_errors)
        if row is not None:
            rows.append(row)
    return rates_check(rows, errors)


def rates_check(rows: list[RateRow], errors: list[str]) -> list[RateRow]:
    """``rows`` if they and ``errors`` (found while parsing) make a valid file, else
    ``RatesInvalid`` with ``errors`` and the duplicates and orphan local rates found here."""
    seen: dict[tuple[str, str, str], int] = {}
    for row in rows:
        key = (row.state, row.zip_prefix, row.jurisdiction.casefold())
        if key in seen:
            errors.append(f"line {row.line}: repeats line {seen[key]} ({row.jurisdiction})")
        seen.setdefault(key, row.line)
    states = {row.state for row in rows if not row.zip_prefix}
    errors.extend(
        f"line {row.line}: a local rate for {row.state}, which has no state row"
        for row in rows
        if row.zip_prefix and row.state not in states
    )
    if not rows and not errors:
        errors.append("the file holds no rates")
    if errors:
        raise RatesInvalid(errors)
    return rows
