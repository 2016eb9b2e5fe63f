"""A shop selling a tee in sizes (and optionally colours), for the variant tests (issue 13)."""

from dataclasses import dataclass
from typing import Any

from catalog.models import CampaignVariantStock, ProductOption, ProductVariant
from catalog.variant_services import variant_save, variant_stock_save
from tests.shop import Shop, shop_open

TEE = "BuyTeeShirt"


@dataclass
class TeeShop:
    shop: Shop
    # By label ("M" or "M / Blue"): the variant and its campaign stock row.
    variants: dict[str, ProductVariant]

    def stock(self, label: str) -> CampaignVariantStock:
        return CampaignVariantStock.objects.get(
            campaign=self.shop.campaign, variant=self.variants[label]
        )


def tee_shop(
    stock: dict[str, int] | None = None, *, per_buyer_limit: int = 3, **campaign: object
) -> TeeShop:
    """The tee on offer under #BuyTeeShirt, a stock per variant: ``{"S": 5, "M": 5}`` for one
    option (Size), ``{"M / Blue": 2}`` for two (Size, Colour)."""
    stock = stock if stock is not None else {"S": 5, "M": 5, "L": 5}
    terms: dict[str, Any] = {"per_buyer_limit": per_buyer_limit, **campaign}
    shop = shop_open(stock=1, hashtag=TEE, **terms)
    product = shop.campaign.product
    options = max(len(label.split(" / ")) for label in stock)
    for position, name in enumerate(("Size", "Colour", "Fit")[:options], start=1):
        ProductOption.objects.create(product=product, position=position, name=name)
    variants = {}
    for n, (label, units) in enumerate(stock.items()):
        values = [*label.split(" / "), "", ""][:3]
        variant = variant_save(
            variant=ProductVariant(
                product=product,
                sku=f"TEE-{n}",
                option1=values[0],
                option2=values[1],
                option3=values[2],
            )
        )
        variant_stock_save(
            stock=CampaignVariantStock(campaign=shop.campaign, variant=variant, stock_total=units)
        )
        variants[label] = variant
    shop.campaign.refresh_from_db()
    return TeeShop(shop=shop, variants=variants)
