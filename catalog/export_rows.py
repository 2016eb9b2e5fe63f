"""The catalogue read back as CSV rows of ``catalog.import_format`` (the export, which the import
reads unchanged: a round trip changes nothing)."""

from collections.abc import Iterator
from zoneinfo import ZoneInfo

from django.db.models import Prefetch, QuerySet

from catalog.import_format import (
    COLUMNS,
    CatalogRow,
    cell_guard,
    options_format,
    time_format,
)
from catalog.models import (
    Campaign,
    CampaignVariantStock,
    Merchant,
    Product,
    ProductOption,
    ProductVariant,
)
from catalog.selectors import networks_in_order


def blank_row(merchant: Merchant) -> dict[str, str]:
    return dict.fromkeys(COLUMNS, "") | {"merchant": merchant.slug}


def product_cells(product: Product) -> dict[str, str]:
    return {
        "product_sku": product.sku,
        "product_name": product.name,
        "description": product.description,
    }


def campaign_cells(campaign: Campaign, networks: tuple[str, ...], zone: ZoneInfo) -> dict[str, str]:
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
    cells = blank_row(merchant) | {
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
    base = blank_row(product.merchant) | product_cells(product)
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
        terms = campaign_cells(campaign, networks_in_order(campaign.platform, listed), zone)
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
