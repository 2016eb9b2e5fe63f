"""Edits the back office must refuse while orders or variants depend on a row (issue 13): a
stock row moved to another variant strands the units its orders hold; a new or moved option
renames every variant's values."""

import pytest
from django.core.exceptions import ValidationError

from catalog.models import CampaignVariantStock, ProductOption
from catalog.tests.factories import CampaignFactory
from catalog.variant_services import option_validate, variant_stock_save
from orders.models import Order
from tests.shop import BRAND, UNTAXED, buyer_ready, post, tick
from tests.variants import TEE, tee_shop

pytestmark = pytest.mark.django_db


def test_a_stock_row_keeps_its_variant_and_campaign():
    tees = tee_shop({"M": 1, "XL": 1})
    buyer_ready("alice", address=UNTAXED)
    post("alice", f"@{BRAND} #{TEE} M")
    tick()
    assert Order.objects.get().variant == tees.variants["M"]

    row = tees.stock("M")
    row.variant = tees.variants["XL"]
    with pytest.raises(ValidationError) as refused:
        variant_stock_save(stock=row)
    assert "variant" in refused.value.message_dict
    row = tees.stock("M")
    row.campaign = CampaignFactory(product=tees.shop.campaign.product, hashtag="BuyTeeAgain")
    with pytest.raises(ValidationError):
        variant_stock_save(stock=row)
    assert (tees.stock("M").stock_reserved, tees.stock("XL").stock_reserved) == (1, 0)


def test_a_product_with_variants_gets_no_new_option_and_keeps_its_options_in_place():
    tees = tee_shop({"M": 1, "L": 1})
    product = tees.shop.campaign.product
    with pytest.raises(ValidationError) as added:
        option_validate(ProductOption(product=product, position=2, name="Colour"))
    assert "name" in added.value.message_dict
    size = ProductOption.objects.get(product=product)
    size.position = 2
    with pytest.raises(ValidationError) as moved:
        option_validate(size)
    assert "position" in moved.value.message_dict
    size.position, size.name = 1, "Tee size"  # a new name for the same option is fine
    option_validate(size)
    assert CampaignVariantStock.objects.filter(campaign=tees.shop.campaign).count() == 2
