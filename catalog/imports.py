"""Products, their variants and their campaigns written from CSV rows, and read back as rows
(issue 14, item 6): the format is ``catalog.import_format``'s; ``catalog.resources`` adapts both
to django-import-export.

A product sold in several campaigns has one row per variant in each; every row repeats its
product's and its campaign's columns, and rows that disagree on them are refused (naming the
first row). Rows are matched to what exists by natural keys inside the importing merchant: a
product by its SKU, a variant by its product and SKU, a campaign by its hashtag and start.

Every row is written by the services the admin forms use, with the forms' checks: the models'
``full_clean``, ``option_validate``, ``variant_save`` (one-word values, one SKU per merchant),
``campaign_save`` (hashtag rules, one campaign per hashtag at a time) and
``variant_stock_save``. The caller holds the transaction that makes a file all or nothing.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import Prefetch, QuerySet

from catalog.import_format import (
    COLUMNS,
    CatalogRow,
    cell_guard,
    options_format,
    time_format,
)
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
from catalog.services import campaign_save
from catalog.variant_services import option_validate, variant_save, variant_stock_save
from social.hashtags import hashtag_key

Actor = AbstractBaseUser | AnonymousUser | None


# Where a model's or service's error (keyed by model field) shows: the file's column, by the
# model it was raised for (a product's ``sku`` is not a variant's).
_PRODUCT_COLUMNS = {"sku": "product_sku", "name": "product_name"}
_OPTION_COLUMNS = {"name": "options", "position": "options"}
_VARIANT_COLUMNS = {
    "sku": "variant_sku",
    "option1": "options",
    "option2": "options",
    "option3": "options",
}
_CAMPAIGN_COLUMNS = {"platform": "networks", "platforms": "networks", "stock_total": "stock"}
_STOCK_COLUMNS = {"stock_total": "stock", "variant": "variant_sku"}


@contextmanager
def _columns(names: dict[str, str]) -> Iterator[None]:
    """Re-key the ``ValidationError`` raised inside by column (``names``, else the field's own
    name when it is a column, else the row as a whole)."""
    try:
        yield
    except ValidationError as exc:
        if not hasattr(exc, "error_dict"):
            raise ValidationError({NON_FIELD_ERRORS: exc.messages}) from exc
        errors: dict[str, list[str]] = {}
        for name, messages in exc.message_dict.items():
            column = names.get(name, name if name in COLUMNS else NON_FIELD_ERRORS)
            errors.setdefault(column, []).extend(messages)
        raise ValidationError(errors) from exc


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
    with _columns({}), transaction.atomic():
        return _row_write(row, number, merchant, now, actor, ledger)


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
        with _columns(_PRODUCT_COLUMNS):
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
            with _columns(_OPTION_COLUMNS):
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
        with _columns(_VARIANT_COLUMNS):
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
        with _columns(_CAMPAIGN_COLUMNS):
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
    with _columns(_STOCK_COLUMNS):
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
