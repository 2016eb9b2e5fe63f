"""factory_boy factories for catalog's models: merchants, products and campaigns."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from catalog.models import Campaign, Merchant, Product
from social.hashtags import hashtag_key
from social.models import Platform


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant

    name = factory.Sequence(lambda n: f"Merchant {n}")
    slug = factory.Sequence(lambda n: f"merchant-{n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    merchant = factory.SubFactory(MerchantFactory)
    name = factory.Sequence(lambda n: f"Product {n}")
    sku = factory.Sequence(lambda n: f"SKU-{n}")


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    product = factory.SubFactory(ProductFactory)
    merchant = factory.SelfAttribute("product.merchant")
    platform = Platform.SANDBOX
    hashtag = factory.Sequence(lambda n: f"BuyThing{n}")
    hashtag_key = factory.LazyAttribute(lambda c: hashtag_key(c.hashtag))
    price = Decimal("149.00")
    stock_total = 10
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    ends_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))
