"""The products CSV's format (issue 14, item 6): its columns, how a cell reads and is written,
and a row parsed (``catalog_row_parse``); ``catalog.imports`` writes and exports such rows.

One row per variant and campaign: the product (``product_sku``, ``product_name``,
``description``), the variant (``options`` such as ``Size=M; Colour=Blue`` and ``variant_sku``,
both blank for a product sold without options), and, when ``hashtag`` is given, the campaign
(``networks``, ``starts_at``, ``ends_at``, ``price``, ``currency``, ``price_includes_tax``,
``per_buyer_limit``, ``confirm_prefix``) with ``stock``, its units of this variant. A blank
optional cell keeps what a product or campaign has (or the default for a new one); times are in
the merchant's time zone unless written with an offset. Text that a spreadsheet would run as a
formula is exported behind a quote that the import takes off again (``cell_guard``).
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError

from catalog.models import MAX_OPTIONS
from catalog.services import campaign_clean_hashtag
from core.exports import FORMULA_STARTS
from social.hashtags import hashtag_key
from social.models import Platform

COLUMNS = (
    "merchant",
    "product_sku",
    "product_name",
    "description",
    "options",
    "variant_sku",
    "hashtag",
    "networks",
    "starts_at",
    "ends_at",
    "price",
    "currency",
    "price_includes_tax",
    "per_buyer_limit",
    "confirm_prefix",
    "stock",
)
REQUIRED_COLUMNS = ("product_sku", "product_name")

# Where a service's or model's error (keyed by model field) shows: the file's column.
_TRUE = {"yes", "y", "true", "1"}
_FALSE = {"no", "n", "false", "0"}
_US_TIME_FORMATS = ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M %p", "%m/%d/%Y")
_SEPARATOR = re.compile(r"[;,]")


# --- Cells ------------------------------------------------------------------------------------
def cell_text(value: object) -> str:
    """A cell as written in the file: text with a leading quote that guards a formula (as the
    export writes it, ``cell_guard``) taken off, surrounding space removed."""
    text = "" if value is None else str(value).strip()
    if text.startswith("'") and text.lstrip("'").startswith(FORMULA_STARTS):
        return text[1:]
    return text


def cell_guard(text: str) -> str:
    """``text`` as a cell a spreadsheet shows as text, never runs as a formula: a leading
    quote before a formula's first character (or before quotes that precede one), which
    ``cell_text`` removes again, so that an export imports back unchanged."""
    return "'" + text if text.lstrip("'").startswith(FORMULA_STARTS) else text


def options_format(pairs: Iterable[tuple[str, str]]) -> str:
    return "; ".join(f"{name}={value}" for name, value in pairs)


def options_parse(text: str) -> tuple[tuple[str, str], ...]:
    """``Size=M; Colour=Blue`` as ``(("Size", "M"), ("Colour", "Blue"))``; blank: none."""
    if not text:
        return ()
    pairs: list[tuple[str, str]] = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        name, equals, value = (s.strip() for s in part.partition("="))
        if not equals or not name:
            raise ValidationError(f"Write each option as Name=value, like Size=M (not {part!r}).")
        if any(hashtag_key(name) == hashtag_key(n) for n, _ in pairs):
            raise ValidationError(f"The option {name} is given twice.")
        pairs.append((name, value))
    if len(pairs) > MAX_OPTIONS:
        raise ValidationError(f"A product has at most {MAX_OPTIONS} options.")
    return tuple(pairs)


def networks_parse(text: str) -> tuple[str, ...]:
    """``x; mastodon`` as ``("x", "mastodon")``, the first network first; blank: none given."""
    names = [n.strip().lower() for n in _SEPARATOR.split(text) if n.strip()]
    unknown = [n for n in names if n not in Platform.values]
    if unknown:
        raise ValidationError(
            f"Unknown network {', '.join(unknown)}: use {', '.join(Platform.values)}."
        )
    return tuple(dict.fromkeys(names))


def time_parse(text: str, zone: ZoneInfo) -> datetime | None:
    """``2026-12-01 09:00`` (or ``12/01/2026 09:00``, as spreadsheets rewrite dates) in
    ``zone``, unless it carries an offset (``+02:00``, ``Z``); blank: none given."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        for pattern in _US_TIME_FORMATS:
            try:
                moment = datetime.strptime(text, pattern)  # noqa: DTZ007 (zone set below)
                break
            except ValueError:
                continue
        else:
            raise ValidationError(
                f"{text!r} is not a date and time: write it like 2026-12-01 09:00."
            ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def time_format(moment: datetime, zone: ZoneInfo) -> str:
    """``moment`` in ``zone`` as ``time_parse`` reads it back to the same instant: minutes,
    seconds only when there are some, and the offset only for a wall time the zone's clock
    change makes ambiguous (or skips)."""
    local = moment.astimezone(zone)
    text = local.strftime("%Y-%m-%d %H:%M")
    if local.second or local.microsecond:
        text += local.strftime(":%S")
    if local.microsecond:
        text += local.strftime(".%f")
    naive = local.replace(tzinfo=None)
    if (
        naive.replace(tzinfo=zone, fold=0).utcoffset()
        != naive.replace(tzinfo=zone, fold=1).utcoffset()
    ):
        offset = local.strftime("%z")
        text += f"{offset[:3]}:{offset[3:]}"
    return text


def _decimal(text: str) -> Decimal | None:
    if not text:
        return None
    try:
        return Decimal(text.replace("$", "").replace(",", ""))
    except InvalidOperation:
        raise ValidationError(f"{text!r} is not an amount: write it like 149.00.") from None


def _integer(text: str) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValidationError(f"{text!r} is not a whole number.") from None


def _boolean(text: str) -> bool | None:
    if not text:
        return None
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValidationError(f"{text!r} is not yes or no.")


# --- Rows -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CatalogRow:
    """One row of the file, parsed. ``None`` (and ``()`` for networks): the cell was blank, so
    the product or campaign keeps what it has, or a new one gets the default."""

    product_sku: str
    product_name: str
    description: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    variant_sku: str = ""
    hashtag: str = ""
    networks: tuple[str, ...] = ()
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    price: Decimal | None = None
    currency: str | None = None
    price_includes_tax: bool | None = None
    per_buyer_limit: int | None = None
    confirm_prefix: str | None = None
    stock: int | None = None


def catalog_row_parse(cells: Mapping[str, object], *, zone: ZoneInfo) -> CatalogRow:
    """The row ``cells`` (column name to cell) as a ``CatalogRow``, times in ``zone``.

    Raises ``ValidationError`` keyed by column for a cell that cannot be read or a column a
    row needs left blank."""
    text = {name: cell_text(cells.get(name)) for name in COLUMNS}
    errors: dict[str, list[str]] = {}
    parsed: dict[str, Any] = {}
    readers = {
        "options": options_parse,
        "networks": networks_parse,
        "starts_at": lambda t: time_parse(t, zone),
        "ends_at": lambda t: time_parse(t, zone),
        "price": _decimal,
        "price_includes_tax": _boolean,
        "per_buyer_limit": _integer,
        "stock": _integer,
    }
    for name, read in readers.items():
        try:
            parsed[name] = read(text[name])
        except ValidationError as exc:
            errors.setdefault(name, []).extend(exc.messages)
    for name in REQUIRED_COLUMNS:
        if not text[name]:
            errors.setdefault(name, []).append("This column is required on every row.")
    if parsed.get("options") and not text["variant_sku"]:
        errors.setdefault("variant_sku", []).append("A variant needs its own SKU.")
    if text["variant_sku"] and not parsed.get("options") and "options" not in errors:
        errors.setdefault("options", []).append(
            "Give the variant's option values, like Size=M; Colour=Blue."
        )
    hashtag = campaign_clean_hashtag(text["hashtag"])
    campaign_cells = ("starts_at", "ends_at", "price", "stock", "networks")
    if not hashtag and any(text[name] for name in campaign_cells):
        errors.setdefault("hashtag", []).append("A campaign row needs its hashtag.")
    if hashtag:
        for name in ("starts_at", "ends_at", "stock"):
            if name not in errors and parsed[name] is None:
                errors.setdefault(name, []).append("A campaign row needs this column.")
    if errors:
        raise ValidationError(errors)
    return CatalogRow(
        product_sku=text["product_sku"],
        product_name=text["product_name"],
        description=text["description"] or None,
        variant_sku=text["variant_sku"],
        hashtag=hashtag,
        currency=text["currency"].upper() or None,
        confirm_prefix=text["confirm_prefix"] or None,
        **parsed,
    )
