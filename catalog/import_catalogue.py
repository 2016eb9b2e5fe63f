"""The catalogue a CSV import reads once and changes in memory (``catalog.imports``): the
merchant's products, options, variants, campaigns, listings and stocks by natural key, each
change undoable per row (``Undo``) and written in bulk at the end."""

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db.models import OuterRef, Q, Subquery, Sum

from catalog.import_format import (
    CatalogRow,
)
from catalog.models import (
    MAX_OPTIONS,
    Campaign,
    CampaignListing,
    CampaignVariantStock,
    Merchant,
    Product,
    ProductOption,
    ProductVariant,
)
from catalog.selectors import campaign_networks_prefetched
from catalog.services import (
    Actor,  # noqa: F401
    campaigns_lock,
)
from catalog.services import (
    _listings_write as listings_write,
)
from catalog.variant_services import _ONE_WORD as ONE_WORD
from social.hashtags import hashtag_key


class Undo:
    """What a row changed in the plan, to take back if the row is refused."""

    def __init__(self) -> None:
        self.steps: list[Callable[[], None]] = []

    def setattrs(self, obj: object, values: Mapping[str, Any]) -> None:
        old = {name: getattr(obj, name) for name in values}

        def back() -> None:
            for name, value in old.items():
                setattr(obj, name, value)

        self.steps.append(back)
        for name, value in values.items():
            setattr(obj, name, value)

    def put(self, mapping: dict[Any, Any], key: Any, value: Any) -> None:
        had, old = key in mapping, mapping.get(key)
        mapping[key] = value

        def back() -> None:
            if had:
                mapping[key] = old
            else:
                mapping.pop(key, None)

        self.steps.append(back)

    def rollback(self) -> None:
        for step in reversed(self.steps):
            step()
        self.steps.clear()


# Stand-ins for the ids of the file's new campaigns (negative: never a stored campaign's).
_NEW_IDS = itertools.count(1)


@dataclass(eq=False)
class CampaignPlan:
    """A campaign of the file (new, or as stored) with its networks and variant stocks."""

    campaign: Campaign
    product_sku: str
    networks: tuple[str, ...] = ()
    stocks: dict[str, CampaignVariantStock] = field(default_factory=dict)  # by variant SKU
    dirty_stocks: dict[str, CampaignVariantStock] = field(default_factory=dict)
    stock_before: int | None = None
    ident: int = field(default_factory=lambda: -next(_NEW_IDS))

    listed_as: set[tuple[Any, ...]] = field(default_factory=set)  # its stored listings

    def __post_init__(self) -> None:
        if self.campaign.pk is not None:
            self.ident = self.campaign.pk
            self.stock_before = self.campaign.stock_total

    def listing_terms(self) -> set[tuple[Any, ...]]:
        """The listings the campaign needs: one per network, with its key and dates."""
        c = self.campaign
        return {(n, c.hashtag_key, c.starts_at, c.ends_at) for n in self.networks}

    def stock_sum(self) -> int:
        return sum(s.stock_total for s in self.stocks.values())


@dataclass(eq=False)
class Catalogue:
    """One merchant's products, options, variants and campaigns the file may touch, as the
    accepted rows leave them; ``dirty`` and ``dirty_campaigns``: what ``write`` saves."""

    merchant: Merchant
    products: dict[str, Product]  # by SKU: those of the file's SKUs (products' and variants')
    options: dict[str, list[ProductOption]]  # by product SKU, in position order
    variants: dict[str, dict[str, ProductVariant]]  # by product SKU, then variant SKU
    variant_skus: dict[str, str]  # every variant SKU of the file's SKUs: its product's SKU
    campaigns: dict[tuple[str, datetime], CampaignPlan]  # by hashtag key and start
    dirty: dict[int, Product | ProductOption | ProductVariant] = field(default_factory=dict)
    dirty_campaigns: dict[int, CampaignPlan] = field(default_factory=dict)

    @classmethod
    def load(cls, merchant: Merchant, rows: list[CatalogRow]) -> "Catalogue":
        skus = {r.product_sku for r in rows} | {r.variant_sku for r in rows if r.variant_sku}
        products = {p.sku: p for p in Product.objects.filter(merchant=merchant, sku__in=skus)}
        by_id = {p.pk: p for p in products.values()}
        options: dict[str, list[ProductOption]] = {}
        for option in ProductOption.objects.filter(product__in=list(by_id)).order_by("position"):
            options.setdefault(by_id[option.product_id].sku, []).append(option)
        variants: dict[str, dict[str, ProductVariant]] = {}
        variant_skus: dict[str, str] = {}
        # The file's products' variants, and any of the merchant's holding one of the file's SKUs.
        found = ProductVariant.objects.filter(
            Q(product__in=list(by_id)) | Q(product__merchant=merchant, sku__in=skus)
        ).select_related("product")
        for variant in found:
            owner = variant.product.sku
            if owner in products:
                variant.product = products[owner]
                variants.setdefault(owner, {})[variant.sku] = variant
            variant_skus[variant.sku] = owner
        keys = {hashtag_key(r.hashtag) for r in rows if r.hashtag}
        campaigns: dict[tuple[str, datetime], CampaignPlan] = {}
        stored = (
            Campaign.objects.filter(merchant=merchant, hashtag_key__in=keys)
            .select_related("product")
            .prefetch_related("listings", "variant_stocks__variant")
        )
        for campaign in stored:
            plan = CampaignPlan(
                campaign=campaign,
                product_sku=campaign.product.sku,
                networks=campaign_networks_prefetched(campaign),
                stocks={s.variant.sku: s for s in campaign.variant_stocks.all()},
                listed_as={
                    (li.platform, li.hashtag_key, li.starts_at, li.ends_at)
                    for li in campaign.listings.all()
                },
            )
            campaigns[(campaign.hashtag_key, campaign.starts_at)] = plan
        return cls(merchant, products, options, variants, variant_skus, campaigns)

    def option_validate(
        self, product_sku: str, option: ProductOption, others: list[ProductOption]
    ) -> None:
        """``option_validate``'s rules for a new option of the product."""
        errors: dict[str, str] = {}
        if not 1 <= (option.position or 0) <= MAX_OPTIONS:
            errors["position"] = f"A product has at most {MAX_OPTIONS} options: position 1 to 3."
        if any(hashtag_key(o.name) == hashtag_key(option.name) for o in others):
            errors["name"] = "This product already has an option of that name."
        if self.variants.get(product_sku):
            errors["name"] = "Remove the product's variants before giving it another option."
        if errors:
            raise ValidationError(errors)

    def variant_validate(
        self, product_sku: str, variant: ProductVariant, options: list[ProductOption]
    ) -> None:
        """``variant_validate``'s rules, on the catalogue as the rows before leave it."""
        errors: dict[str, str] = {}
        count = len(options)
        if count == 0:
            errors["option1"] = "Give the product an option (Size, Colour…) before its variants."
        for position, value in enumerate(variant.values_padded(), start=1):
            name = f"option{position}"
            if position <= count and not value:
                errors[name] = "Give a value for each of the product's options."
            elif position > count and value:
                errors[name] = "The product has no option at this position."
            elif value and not ONE_WORD.match(value):
                errors[name] = "A value is one word: letters, digits and underscores."
        keys = tuple(hashtag_key(v) for v in variant.values_padded())
        if any(
            other is not variant and tuple(hashtag_key(v) for v in other.values_padded()) == keys
            for other in self.variants.get(product_sku, {}).values()
        ):
            errors.setdefault("option1", "The product already has a variant with these values.")
        holder = self.variant_skus.get(variant.sku)
        if (holder is not None and holder != product_sku) or variant.sku in self.products:
            errors["sku"] = "Another product or variant of this merchant has this SKU."
        if errors:
            raise ValidationError(errors)

    def write(self, now: datetime) -> list[int]:
        """Save the new and changed rows; returns the existing campaigns whose stock rose."""
        by_kind: dict[type, list[Any]] = {}
        for obj in self.dirty.values():
            by_kind.setdefault(type(obj), []).append(obj)
        products = by_kind.get(Product, [])
        stored = [p for p in products if p.pk is not None]  # before the new ones get ids
        Product.objects.bulk_create([p for p in products if p.pk is None])
        bulk_update(Product, stored, now)
        for sku, options in self.options.items():
            for option in options:
                option.product = self.products[sku]
        ProductOption.objects.bulk_create(by_kind.get(ProductOption, []))
        variants = by_kind.get(ProductVariant, [])
        for sku, siblings in self.variants.items():
            for variant in siblings.values():
                variant.product = self.products[sku]
        stored = [v for v in variants if v.pk is not None]
        ProductVariant.objects.bulk_create([v for v in variants if v.pk is None])
        bulk_update(ProductVariant, stored, now)
        plans = list(self.dirty_campaigns.values())
        locked = campaigns_lock(p.campaign.pk for p in plans if p.campaign.pk is not None)
        for plan in plans:
            campaign = plan.campaign
            campaign.product = self.products[plan.product_sku]
            campaign.merchant = self.merchant
            held = locked[campaign.pk].stock_reserved if campaign.pk is not None else 0
            if campaign.stock_total < held:  # orders took units since the rows were checked
                raise IntegrityError(f"campaign {campaign.pk}: fewer units than orders hold")
        new = [p for p in plans if p.campaign.pk is None]
        changed = [p for p in plans if p.campaign.pk is not None]
        Campaign.objects.bulk_create([p.campaign for p in new])
        CampaignListing.objects.bulk_create(
            CampaignListing(
                campaign=p.campaign,
                platform=platform,
                hashtag_key=p.campaign.hashtag_key,
                starts_at=p.campaign.starts_at,
                ends_at=p.campaign.ends_at,
            )
            for p in new
            for platform in p.networks
        )
        bulk_update(
            Campaign, [p.campaign for p in changed], now, exclude=("stock_reserved", "created_at")
        )
        for plan in changed:
            if plan.listing_terms() != plan.listed_as:
                listings_write(plan.campaign, plan.networks)
        stocks = [s for p in plans for s in p.dirty_stocks.values()]
        for plan in plans:
            for sku, stock in plan.dirty_stocks.items():
                stock.campaign = plan.campaign
                stock.variant = self.variants[plan.product_sku][sku]
        held_now = (
            dict(
                CampaignVariantStock.objects.filter(
                    pk__in=[s.pk for s in stocks if s.pk is not None]
                ).values_list("pk", "stock_reserved")
            )
            if any(s.pk is not None for s in stocks)
            else {}
        )
        if any(s.stock_total < held_now.get(s.pk, 0) for s in stocks):
            raise IntegrityError("a variant stock below what orders hold")
        stored_stocks = [s for s in stocks if s.pk is not None]
        CampaignVariantStock.objects.bulk_create([s for s in stocks if s.pk is None])
        CampaignVariantStock.objects.bulk_update(stored_stocks, ["stock_total"])
        # campaign_stock_sync's rule, in one statement: a campaign selling variants holds the
        # sum of their stocks as stored now (under the lock), whatever the file said of it.
        summed = CampaignVariantStock.objects.filter(campaign=OuterRef("pk")).values("campaign")
        Campaign.objects.filter(pk__in=[p.campaign.pk for p in plans if p.stocks]).update(
            stock_total=Subquery(summed.annotate(total=Sum("stock_total")).values("total"))
        )
        return [
            p.campaign.pk
            for p in changed
            if p.stock_before is not None and p.campaign.stock_total > p.stock_before
        ]


def bulk_update(
    model: type[Any], objs: list[Any], now: datetime, exclude: tuple[str, ...] = ()
) -> None:
    if not objs:
        return
    for obj in objs:
        obj.updated_at = now
    names = [
        f.name
        for f in model._meta.concrete_fields
        if not f.primary_key and f.name not in ("created_at", *exclude)
    ]
    model.objects.bulk_update(objs, names)
