"""Writes to products' options and variants and to campaigns' variant stock (issue 13).

A product has at most ``MAX_OPTIONS`` options; each variant names one value (one word, matched
in posts by its hashtag key) for each of them, and has a SKU no other product or variant of the
merchant uses. A campaign's variant stock moves under the campaign's lock, like its own stock,
and the campaign's ``stock_total`` stays the sum of its variants' (its ``stock_reserved`` is
the sum by construction: ``catalog.services.stock_reserve`` moves both).
"""

import regex
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum

from catalog.models import (
    MAX_OPTIONS,
    Campaign,
    CampaignVariantStock,
    Product,
    ProductOption,
    ProductVariant,
)
from catalog.services import campaigns_lock
from social.hashtags import hashtag_key

_ONE_WORD = regex.compile(r"^[\p{L}\p{M}\p{Nd}_]+$")


def option_validate(option: ProductOption) -> None:
    """Raise ``ValidationError`` unless ``option`` may be saved: a position 1 to
    ``MAX_OPTIONS``, a name its product does not already use (in any case), and, while the
    product has variants, no new option and no option moved (variants name values by
    position)."""
    errors: dict[str, str] = {}
    if not 1 <= (option.position or 0) <= MAX_OPTIONS:
        errors["position"] = f"A product has at most {MAX_OPTIONS} options: position 1 to 3."
    others = ProductOption.objects.filter(product_id=option.product_id).exclude(pk=option.pk)
    if any(hashtag_key(o.name) == hashtag_key(option.name) for o in others):
        errors["name"] = "This product already has an option of that name."
    if option.pk is not None:
        before = ProductOption.objects.filter(pk=option.pk).values_list("position", flat=True)
        if before.get() != option.position and _has_variants(option.product_id):
            # Each variant names its values by position: moving an option would rename them.
            errors["position"] = "Remove the product's variants before moving its options."
    elif _has_variants(option.product_id):
        # Every variant would lack a value for the new option: nothing could be sold by post.
        errors["name"] = "Remove the product's variants before giving it another option."
    if errors:
        raise ValidationError(errors)


def _has_variants(product_id: int) -> bool:
    return ProductVariant.objects.filter(product_id=product_id).exists()


def option_delete(*, option: ProductOption) -> None:
    """Remove a product's option, refused while the product has variants (each names a value
    for it): remove or change those first."""
    if ProductVariant.objects.filter(product_id=option.product_id).exists():
        raise ValidationError("Remove the product's variants before its options.")
    option.delete()


def variant_validate(variant: ProductVariant) -> None:
    """Raise ``ValidationError`` unless ``variant`` may be saved: one value for each option of
    its product and none beyond, each value one word (letters, digits, underscores) that does
    not read as a quantity like ``x2``; a combination no other variant of the product has (in
    any case); a SKU that no other product or variant of the merchant holds."""
    errors: dict[str, str] = {}
    count = ProductOption.objects.filter(product_id=variant.product_id).count()
    if count == 0:
        errors["option1"] = "Give the product an option (Size, Colour…) before its variants."
    values = (variant.option1, variant.option2, variant.option3)
    for position, value in enumerate(values, start=1):
        field = f"option{position}"
        if position <= count and not value:
            errors[field] = "Give a value for each of the product's options."
        elif position > count and value:
            errors[field] = "The product has no option at this position."
        elif value and not _ONE_WORD.match(value):
            errors[field] = "A value is one word: letters, digits and underscores."
    keys = tuple(hashtag_key(v) for v in values)
    siblings = ProductVariant.objects.filter(product_id=variant.product_id).exclude(pk=variant.pk)
    if any(tuple(hashtag_key(v) for v in s.values_padded()) == keys for s in siblings):
        errors.setdefault("option1", "The product already has a variant with these values.")
    merchant_id = Product.objects.filter(pk=variant.product_id).values_list(
        "merchant_id", flat=True
    )[:1]
    if (
        ProductVariant.objects.filter(product__merchant_id__in=merchant_id, sku=variant.sku)
        .exclude(pk=variant.pk)
        .exists()
        or Product.objects.filter(merchant_id__in=merchant_id, sku=variant.sku).exists()
    ):
        errors["sku"] = "Another product or variant of this merchant has this SKU."
    if errors:
        raise ValidationError(errors)


def variant_save(*, variant: ProductVariant) -> ProductVariant:
    """Validate (``variant_validate``) and save ``variant``."""
    variant.option1, variant.option2, variant.option3 = (
        v.strip() for v in (variant.option1, variant.option2, variant.option3)
    )
    variant_validate(variant)
    variant.save()
    return variant


def variant_stock_validate(stock: CampaignVariantStock) -> None:
    """Raise ``ValidationError`` unless ``stock`` may be saved: a variant of the campaign's
    product, the same campaign and variant as when it was created, and a total no lower than
    what orders already hold of it."""
    campaign = Campaign.objects.get(pk=stock.campaign_id)
    if (
        stock.variant_id is None
        or not ProductVariant.objects.filter(
            pk=stock.variant_id, product_id=campaign.product_id
        ).exists()
    ):
        raise ValidationError({"variant": "Choose a variant of the campaign's product."})
    if stock.pk is not None:
        stored = CampaignVariantStock.objects.filter(pk=stock.pk).values_list(
            "campaign_id", "variant_id", "stock_reserved"
        )
        campaign_id, variant_id, held = stored.get()
        if (campaign_id, variant_id) != (stock.campaign_id, stock.variant_id):
            # The units orders hold are of this variant in this campaign: moving the row would
            # strand them (and a release would then fail its check constraint).
            raise ValidationError(
                {"variant": "A stock row keeps its campaign and variant: add a new row instead."}
            )
        if stock.stock_total < held:
            raise ValidationError({"stock_total": "Orders already hold more units than this."})


def variant_stock_save(*, stock: CampaignVariantStock) -> CampaignVariantStock:
    """Save a campaign's stock of one variant under the campaign's lock, and make the campaign's
    ``stock_total`` the sum of its variants' again."""
    with transaction.atomic():
        campaigns_lock([stock.campaign_id])
        variant_stock_validate(stock)
        if stock.pk is None:
            stock.save()
        else:
            stock.save(update_fields=["variant", "stock_total"])
        campaign_stock_sync(campaign_id=stock.campaign_id)
    return stock


def variant_stock_delete(*, stock: CampaignVariantStock) -> None:
    """Remove a campaign's stock of one variant, refused while orders hold any of it."""
    with transaction.atomic():
        campaigns_lock([stock.campaign_id])
        if CampaignVariantStock.objects.filter(pk=stock.pk, stock_reserved__gt=0).exists():
            raise ValidationError("Orders hold units of this variant: set its stock to 0 instead.")
        CampaignVariantStock.objects.filter(pk=stock.pk).delete()
        campaign_stock_sync(campaign_id=stock.campaign_id)


def campaign_stock_sync(*, campaign_id: int) -> None:
    """Make the campaign's ``stock_total`` the sum of its variant stocks' (nothing when it has
    none). The caller holds the campaign's lock."""
    total = CampaignVariantStock.objects.filter(campaign_id=campaign_id).aggregate(
        total=Sum("stock_total")
    )["total"]
    if total is not None:
        Campaign.objects.filter(pk=campaign_id).update(stock_total=total)
