"""Reads of products' variants and campaigns' variant stock (issue 13)."""

from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.db.models import QuerySet
from django.utils.module_loading import import_string

from catalog.grammar import Offer, VariantChoice
from catalog.models import Campaign, CampaignVariantStock, ProductOption, ProductVariant


def campaign_offers(campaigns: Iterable[Campaign]) -> dict[int, Offer]:
    """What each campaign offers, as ``catalog.grammar`` reads it (two queries whatever the
    number of campaigns): its product's option names, the variants it has stock rows for
    (sold out or not), and its per-buyer limit. A campaign whose product has no options gets
    an ``Offer`` without options."""
    by_id = {c.pk: c for c in campaigns}
    if not by_id:
        return {}
    names: dict[int, list[str]] = defaultdict(list)
    for product_id, name in (
        ProductOption.objects.filter(product_id__in={c.product_id for c in by_id.values()})
        .order_by("product_id", "position")
        .values_list("product_id", "name")
    ):
        names[product_id].append(name)
    choices: dict[int, list[VariantChoice]] = defaultdict(list)
    rows = (
        CampaignVariantStock.objects.filter(campaign_id__in=by_id)
        .order_by("campaign_id", "variant_id")
        .values_list(
            "campaign_id",
            "variant_id",
            "variant__sku",
            "variant__option1",
            "variant__option2",
            "variant__option3",
        )
    )
    for campaign_id, variant_id, sku, *values in rows:
        count = len(names[by_id[campaign_id].product_id])
        choices[campaign_id].append(VariantChoice(variant_id, tuple(values[:count]), sku=sku))
    return {
        pk: Offer(
            options=tuple(names[c.product_id]),
            variants=tuple(choices[pk]) if names[c.product_id] else (),
            per_buyer_limit=c.per_buyer_limit,
        )
        for pk, c in by_id.items()
    }


def variant_stock_left(campaign_ids: Iterable[int]) -> dict[tuple[int, int], int]:
    """Units left per (campaign, variant) of the given campaigns: read under their locks
    (``catalog.services.campaigns_lock``) when selling from them."""
    ids = set(campaign_ids)
    if not ids:
        return {}
    rows = CampaignVariantStock.objects.filter(campaign_id__in=ids).values_list(
        "campaign_id", "variant_id", "stock_total", "stock_reserved"
    )
    return {(c, v): total - reserved for c, v, total, reserved in rows}


def variants_by_id(variant_ids: Iterable[int]) -> dict[int, ProductVariant]:
    """The variants by id (for an order's snapshot: SKU and label)."""
    ids = set(variant_ids)
    if not ids:
        return {}
    return {v.pk: v for v in ProductVariant.objects.filter(pk__in=ids)}


def products_with_options(product_ids: Iterable[int]) -> set[int]:
    """Those of ``product_ids`` that have options (sold by variant), in one query."""
    ids = set(product_ids)
    if not ids:
        return set()
    return set(
        ProductOption.objects.filter(product_id__in=ids)
        .order_by()
        .values_list("product_id", flat=True)
        .distinct()
    )


def variant_stocks_with_waitlist_length(
    queryset: QuerySet[CampaignVariantStock],
) -> QuerySet[CampaignVariantStock]:
    """``queryset`` with ``waitlist_length`` on each row: how many wait for that variant of that
    campaign (orders' waitlist, through ``HASHCART["VARIANT_WAITLIST_LENGTH"]``, as catalog
    does not import orders). A subquery: a page of rows costs no extra query."""
    expression = import_string(settings.HASHCART["VARIANT_WAITLIST_LENGTH"])()
    return queryset.annotate(waitlist_length=expression)
