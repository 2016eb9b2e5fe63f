"""Products, their variants and their campaigns as CSV rows (issue 14, item 6): the format, the
row's write and the export's reads. ``catalog.resources`` adapts them to django-import-export.

One row per variant and campaign: the product (``product_sku``, ``product_name``,
``description``), the variant (``options`` such as ``Size=M; Colour=Blue`` and ``variant_sku``,
both blank for a product sold without options), and, when ``hashtag`` is given, the campaign
(``networks``, ``starts_at``, ``ends_at``, ``price``, ``currency``, ``price_includes_tax``,
``per_buyer_limit``, ``confirm_prefix``) with ``stock``, its units of this variant. A product
sold in several campaigns has one row per variant in each; every row repeats its product's and
its campaign's columns, and rows that disagree on them are refused (naming the first row).

Rows are matched to what exists by natural keys inside the importing merchant: a product by its
SKU, a variant by its product and SKU, a campaign by its hashtag and start. A blank optional
cell keeps what a product or campaign has (or the default for a new one); times are in the
merchant's time zone unless written with an offset.

Every row is written by the services the admin forms use, with the forms' checks: the models'
``full_clean``, ``option_validate``, ``variant_save`` (one-word values, one SKU per merchant),
``campaign_save`` (hashtag rules, one campaign per hashtag at a time) and
``variant_stock_save``. The caller holds the transaction that makes a file all or nothing.
"""

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import Prefetch, QuerySet

from catalog.models import (
    MAX_OPTIONS,
    Campaign,
    CampaignVariantStock,
    Merchant,
    Product,
    ProductOption,
    ProductVariant,
    default_platform,
)
from catalog.selectors import campaign_networks, networks_in_order
from catalog.services import campaign_clean_hashtag, campaign_save
from catalog.variant_services import option_validate, variant_save, variant_stock_save
from core.exports import FORMULA_STARTS
from social.hashtags import hashtag_key
from social.models import Platform

Actor = AbstractBaseUser | AnonymousUser | None

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
_COLUMN_OF = {
    "sku": "variant_sku",
    "name": "product_name",
    "option1": "options",
    "option2": "options",
    "option3": "options",
    "position": "options",
    "variant": "variant_sku",
    "stock_total": "stock",
    "platform": "networks",
    "platforms": "networks",
}
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


@dataclass
class ImportLedger:
    """What the rows imported so far said of each product, variant, campaign and stock (by
    natural key), with the row that first said it: later rows must agree. Filled only by rows
    that were written, so a refused row leaves nothing to compare with."""

    seen: dict[tuple[Any, ...], tuple[int, Any]] = field(default_factory=dict)

    def check(
        self, key: tuple[Any, ...], stated: Any, *, column: str, what: str
    ) -> tuple[tuple[Any, ...], Any] | None:
        """Raise ``ValidationError`` on ``column`` if an earlier row said otherwise of ``key``;
        return the entry to record once this row is written (``None`` if one is there)."""
        first = self.seen.get(key)
        if first is not None and first[1] != stated:
            raise ValidationError(
                {column: f"Row {first[0]} gave {what} other values: every row must agree."}
            )
        return (key, stated) if first is None else None


@dataclass(frozen=True)
class RowOutcome:
    """``kind``: ``new`` (something was created), ``update`` (something changed) or ``skip``
    (nothing to do). ``before``: the row as the database held it (blank cells for what did
    not exist), for the preview's differences; ``product``: the row's product."""

    kind: str
    before: dict[str, str]
    product: Product


def catalog_row_save(
    *,
    row: CatalogRow,
    number: int,
    merchant: Merchant,
    now: datetime,
    actor: Actor,
    ledger: ImportLedger,
) -> RowOutcome:
    """Create or update the row's product, options, variant, campaign and campaign stock of
    ``merchant`` (only its own rows are looked up: another merchant's SKU is never reached).

    Runs in a savepoint: a row refused half-way leaves nothing behind, and the caller's
    transaction continues. Raises ``ValidationError`` keyed by column (``COLUMNS``). Campaign
    refusals are counted and logged for ``actor`` as ``campaign_save`` does."""
    try:
        with transaction.atomic():
            return _row_write(row, number, merchant, now, actor, ledger)
    except ValidationError as exc:
        raise _by_column(exc) from exc


def _by_column(exc: ValidationError) -> ValidationError:
    if not hasattr(exc, "error_dict"):
        return ValidationError({NON_FIELD_ERRORS: exc.messages})
    errors: dict[str, list[str]] = {}
    for name, messages in exc.message_dict.items():
        column = name if name in COLUMNS else _COLUMN_OF.get(name, NON_FIELD_ERRORS)
        errors.setdefault(column, []).extend(messages)
    return ValidationError(errors)


@dataclass
class _Changes:
    created: bool = False
    changed: bool = False
    stated: list[tuple[tuple[Any, ...], Any]] = field(default_factory=list)


def _row_write(
    row: CatalogRow,
    number: int,
    merchant: Merchant,
    now: datetime,
    actor: Actor,
    ledger: ImportLedger,
) -> RowOutcome:
    changes = _Changes()
    zone = ZoneInfo(merchant.time_zone)
    product = Product.objects.filter(merchant=merchant, sku=row.product_sku).first()
    before = _blank_row(merchant)
    if product is not None:
        before |= _product_cells(product)
    product = _product_write(row, merchant, product, ledger, changes)
    variant = None
    if row.variant_sku:
        variant = _variant_write(row, product, ledger, changes, before)
    if row.hashtag:
        _campaign_write(row, product, variant, merchant, now, actor, ledger, changes, before, zone)
    for key, stated in changes.stated:
        ledger.seen.setdefault(key, (number, stated))
    kind = "new" if changes.created else "update" if changes.changed else "skip"
    return RowOutcome(kind=kind, before=before, product=product)


def _blank_row(merchant: Merchant) -> dict[str, str]:
    return dict.fromkeys(COLUMNS, "") | {"merchant": merchant.slug}


def _product_cells(product: Product) -> dict[str, str]:
    return {
        "product_sku": product.sku,
        "product_name": product.name,
        "description": product.description,
    }


def _product_write(
    row: CatalogRow,
    merchant: Merchant,
    product: Product | None,
    ledger: ImportLedger,
    changes: _Changes,
) -> Product:
    stated = (row.product_name, row.description)
    key = ("product", merchant.pk, row.product_sku)
    first = ledger.check(key, stated, column="product_name", what="this product")
    if first is not None:
        changes.stated.append(first)
    new = product is None
    if product is None:
        product = Product(merchant=merchant, sku=row.product_sku)
        changes.created = True
    wanted = {"name": row.product_name}
    if row.description is not None:
        wanted["description"] = row.description
    if new or any(getattr(product, k) != v for k, v in wanted.items()):
        for name, value in wanted.items():
            setattr(product, name, value)
        product.full_clean()
        product.save()
        changes.changed = True
    return product


def _variant_write(
    row: CatalogRow,
    product: Product,
    ledger: ImportLedger,
    changes: _Changes,
    before: dict[str, str],
) -> ProductVariant:
    names = [name for name, _ in row.options]
    values = [value for _, value in row.options]
    options = list(ProductOption.objects.filter(product=product).order_by("position"))
    if not options:
        for position, name in enumerate(names, start=1):
            option = ProductOption(product=product, position=position, name=name)
            option.full_clean(exclude=["product"])
            option_validate(option)
            option.save()
            options.append(option)
        changes.changed = True
    have = [o.name for o in options]
    if [hashtag_key(n) for n in names] != [hashtag_key(n) for n in have]:
        unknown = [n for n in names if hashtag_key(n) not in {hashtag_key(h) for h in have}]
        lead = f"Unknown option {', '.join(unknown)}: " if unknown else ""
        raise ValidationError(
            {"options": f"{lead}this product's options are {', '.join(have)}, in that order."}
        )
    padded = [*values, "", "", ""][:MAX_OPTIONS]
    key = ("variant", product.merchant_id, product.sku, row.variant_sku)
    first = ledger.check(key, tuple(padded), column="options", what="this variant")
    if first is not None:
        changes.stated.append(first)
    variant = ProductVariant.objects.filter(product=product, sku=row.variant_sku).first()
    new = variant is None
    if variant is not None:
        before["variant_sku"] = variant.sku
        before["options"] = options_format(zip(have, variant.values, strict=False))
    else:
        variant = ProductVariant(product=product, sku=row.variant_sku)
        changes.created = True
    if new or list(variant.values_padded()) != padded:
        variant.option1, variant.option2, variant.option3 = padded
        variant.full_clean(exclude=["product"], validate_constraints=False)
        variant_save(variant=variant)
        changes.changed = True
    return variant


def _campaign_write(
    row: CatalogRow,
    product: Product,
    variant: ProductVariant | None,
    merchant: Merchant,
    now: datetime,
    actor: Actor,
    ledger: ImportLedger,
    changes: _Changes,
    before: dict[str, str],
    zone: ZoneInfo,
) -> None:
    if row.starts_at is None or row.ends_at is None or row.stock is None:
        # catalog_row_parse refuses these already: a row built otherwise is refused here.
        raise ValidationError({"hashtag": "A campaign row needs starts_at, ends_at and stock."})
    key = hashtag_key(row.hashtag)
    campaign_key = ("campaign", merchant.pk, key, row.starts_at)
    terms = (
        row.product_sku,
        row.networks,
        row.ends_at,
        row.price,
        row.currency,
        row.price_includes_tax,
        row.per_buyer_limit,
        row.confirm_prefix,
    )
    first = ledger.check(campaign_key, terms, column="hashtag", what="this campaign")
    if first is not None:
        changes.stated.append(first)
    stock_key = (*campaign_key, row.variant_sku)
    if stock_key in ledger.seen:
        raise ValidationError(
            {"stock": f"Row {ledger.seen[stock_key][0]} already gives this stock."}
        )
    changes.stated.append((stock_key, row.stock))
    campaign = (
        Campaign.objects.filter(merchant=merchant, hashtag_key=key, starts_at=row.starts_at)
        .select_related("product")
        .first()
    )
    networks: tuple[str, ...] = ()
    new = campaign is None
    if campaign is None:
        campaign = Campaign(
            product=product,
            merchant=merchant,
            platform=default_platform(),
            hashtag=row.hashtag,
            starts_at=row.starts_at,
            stock_total=0,
        )
        changes.created = True
    else:
        if campaign.product_id != product.pk:
            raise ValidationError(
                {"hashtag": f"#{campaign.hashtag} from this start sells {campaign.product.sku}."}
            )
        networks = campaign_networks(campaign_ids=[campaign.pk])[campaign.pk]
        before |= _campaign_cells(campaign, networks, zone)
    if (
        variant is None
        and ProductOption.objects.filter(product=product).exists()
        and (new or CampaignVariantStock.objects.filter(campaign=campaign).exists())
    ):
        # Its stock is its variants' (only a campaign that has none yet keeps a stock of its own,
        # as its page allows).
        raise ValidationError(
            {"variant_sku": "This product has options: each campaign row names its variant."}
        )
    wanted: dict[str, Any] = {"ends_at": row.ends_at}
    optional = ("price", "currency", "price_includes_tax", "per_buyer_limit", "confirm_prefix")
    wanted |= {name: getattr(row, name) for name in optional if getattr(row, name) is not None}
    if variant is None:
        wanted["stock_total"] = row.stock
    wanted_networks = row.networks or networks or (campaign.platform,)
    if (
        new
        or any(getattr(campaign, k) != v for k, v in wanted.items())
        or networks_in_order(wanted_networks[0], wanted_networks) != networks
    ):
        for name, value in wanted.items():
            setattr(campaign, name, value)
        campaign.hashtag_key = key
        exclude = ["product", "merchant", "stock_reserved", "hashtag_key"]
        campaign.full_clean(exclude=exclude, validate_constraints=False)
        campaign_save(campaign=campaign, now=now, actor=actor, platforms=wanted_networks)
        changes.changed = True
    if variant is not None:
        _stock_write(campaign, variant, row.stock, changes, before)


def _stock_write(
    campaign: Campaign,
    variant: ProductVariant,
    units: int,
    changes: _Changes,
    before: dict[str, str],
) -> None:
    stock = CampaignVariantStock.objects.filter(campaign=campaign, variant=variant).first()
    if stock is None:
        stock = CampaignVariantStock(campaign=campaign, variant=variant, stock_total=units)
        changes.created = True
    else:
        before["stock"] = str(stock.stock_total)
        if stock.stock_total == units:
            return
        stock.stock_total = units
    stock.full_clean(exclude=["campaign", "variant"], validate_constraints=False)
    variant_stock_save(stock=stock)
    changes.changed = True


def _campaign_cells(
    campaign: Campaign, networks: tuple[str, ...], zone: ZoneInfo
) -> dict[str, str]:
    return {
        "hashtag": campaign.hashtag,
        "networks": "; ".join(networks),
        "starts_at": time_format(campaign.starts_at, zone),
        "ends_at": time_format(campaign.ends_at, zone),
        "price": str(campaign.price),
        "currency": campaign.currency,
        "price_includes_tax": "yes" if campaign.price_includes_tax else "no",
        "per_buyer_limit": str(campaign.per_buyer_limit),
        "confirm_prefix": campaign.confirm_prefix,
        "stock": str(campaign.stock_total),
    }


def catalog_row_cells(row: CatalogRow, merchant: Merchant) -> dict[str, str]:
    """``row`` written back as cells (what the preview shows as the row's new state)."""
    zone = ZoneInfo(merchant.time_zone)
    cells = _blank_row(merchant) | {
        "product_sku": row.product_sku,
        "product_name": row.product_name,
        "description": row.description or "",
        "options": options_format(row.options),
        "variant_sku": row.variant_sku,
        "hashtag": row.hashtag,
        "networks": "; ".join(row.networks),
        "price": "" if row.price is None else str(row.price),
        "currency": row.currency or "",
        "per_buyer_limit": "" if row.per_buyer_limit is None else str(row.per_buyer_limit),
        "confirm_prefix": row.confirm_prefix or "",
        "stock": "" if row.stock is None else str(row.stock),
    }
    if row.price_includes_tax is not None:
        cells["price_includes_tax"] = "yes" if row.price_includes_tax else "no"
    for name in ("starts_at", "ends_at"):
        moment = getattr(row, name)
        cells[name] = "" if moment is None else time_format(moment, zone)
    return cells


# --- Export -----------------------------------------------------------------------------------
def catalog_rows_export(products: QuerySet[Product]) -> Iterator[dict[str, str]]:
    """The rows of ``products`` in the import's format (cells guarded against formulas), in
    product order: one per variant of each campaign (earliest campaign first), then one per
    variant in no campaign, or one for a product with neither. Importing them changes nothing.
    """
    products = products.select_related("merchant").prefetch_related(
        Prefetch("options", queryset=ProductOption.objects.order_by("position")),
        Prefetch("variants", queryset=ProductVariant.objects.order_by("id")),
        Prefetch(
            "campaigns",
            queryset=Campaign.objects.order_by("starts_at", "id").prefetch_related(
                "listings",
                Prefetch(
                    "variant_stocks",
                    queryset=CampaignVariantStock.objects.order_by("variant_id", "id"),
                ),
            ),
        ),
    )
    for product in products.order_by("merchant__slug", "sku"):
        for cells in _product_rows(product):
            yield {name: cell_guard(value) for name, value in cells.items()}


def _product_rows(product: Product) -> Iterator[dict[str, str]]:
    zone = ZoneInfo(product.merchant.time_zone)
    base = _blank_row(product.merchant) | _product_cells(product)
    names = [o.name for o in product.options.all()]
    variants = {v.pk: v for v in product.variants.all()}

    def variant_cells(variant: ProductVariant) -> dict[str, str]:
        return {
            "options": options_format(zip(names, variant.values, strict=False)),
            "variant_sku": variant.sku,
        }

    stocked: set[int] = set()
    for campaign in product.campaigns.all():
        listed = {listing.platform for listing in campaign.listings.all()}
        terms = _campaign_cells(campaign, networks_in_order(campaign.platform, listed), zone)
        stocks = list(campaign.variant_stocks.all())
        if not stocks:
            yield base | terms
        for stock in stocks:
            stocked.add(stock.variant_id)
            variant = variants[stock.variant_id]
            yield base | variant_cells(variant) | terms | {"stock": str(stock.stock_total)}
    unstocked = [v for pk, v in variants.items() if pk not in stocked]
    for variant in unstocked:
        yield base | variant_cells(variant)
    if not variants and not product.campaigns.all():
        yield base
