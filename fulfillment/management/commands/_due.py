"""What ``fulfillment_queue`` and ``buy_labels`` share: the ``--due-by`` option and the words
for the horizon they used (not a command: Django skips modules starting with "_")."""

import re
from argparse import ArgumentTypeError
from datetime import date, datetime
from typing import Any

from django.core.management.base import CommandError

from fulfillment.selectors import horizon_phrase, labels_due_horizons


def due_by_date(value: str) -> date:
    """``--due-by``'s value: a day written YYYY-MM-DD (anything else is a clear error)."""
    # Only this form: ``date.fromisoformat`` also takes "20261130" and week dates.
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise ArgumentTypeError(f"{value!r} is not a date like 2026-11-30 (YYYY-MM-DD).") from None


def add_due_options(parser: Any) -> None:
    parser.add_argument("--merchant", help="only this merchant (its slug)")
    parser.add_argument(
        "--due-by",
        type=due_by_date,
        metavar="YYYY-MM-DD",
        help="shipments due to ship on or before this day (default: each merchant's next "
        "business day, as the admin's 'Labels due' and the merchant home page)",
    )


def horizon_words(*, now: datetime, options: dict[str, Any]) -> str:
    """ "by Mon 30 Nov" (or a range, when merchants' next business days differ). Raises
    ``CommandError`` for a ``--merchant`` that names none: an empty queue must not be
    mistaken for nothing to do."""
    horizons = labels_due_horizons(
        now=now, merchant_slug=options["merchant"], due_by=options["due_by"]
    )
    if options["merchant"] and not horizons:
        raise CommandError(f"No merchant has the slug {options['merchant']!r}.")
    phrase = horizon_phrase(horizons)
    return f"by {phrase}" if phrase else "(there is no merchant)"
