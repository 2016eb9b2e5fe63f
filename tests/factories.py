"""factory_boy factories for every model the tests build."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from accounts.models import Card, Cardholder, PurchaseControls, SocialIdentity, User
from catalog.models import Campaign, Merchant, Product
from fulfillment.models import Shipment
from orders.models import CONFIRMATION_ALPHABET, Order
from social.hashtags import hashtag_key
from social.models import Platform, PlatformAccount, Post


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant

    name = factory.Sequence(lambda n: f"Merchant {n}")
    slug = factory.Sequence(lambda n: f"merchant-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("secret-password")


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


class CardholderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cardholder
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    controls = factory.RelatedFactory(
        "tests.factories.PurchaseControlsFactory", factory_related_name="cardholder"
    )


class PurchaseControlsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PurchaseControls

    cardholder = factory.SubFactory(CardholderFactory, controls=None)


class SocialIdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SocialIdentity

    cardholder = factory.SubFactory(CardholderFactory)
    platform = Platform.SANDBOX
    platform_user_id = factory.Sequence(lambda n: str(10_000 + n))
    handle = factory.Sequence(lambda n: f"buyer{n}")
    linked_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=3))


class CardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Card

    cardholder = factory.SubFactory(CardholderFactory)
    token = factory.Sequence(lambda n: f"tok_sandbox_{n}")
    brand = "Visa"
    last4 = "4242"
    exp_month = 12
    exp_year = 2030
    billing_name = "Alice Example"
    address_line1 = "1 Main Street"
    city = "Springfield"
    state = "IL"
    postal_code = "62701"
    address_changed_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=3))


class PlatformAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PlatformAccount
        django_get_or_create = ("platform", "platform_user_id")

    platform = Platform.SANDBOX
    platform_user_id = "1"
    handle = "HashcartDeals"


class PostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Post

    platform = Platform.SANDBOX
    account = factory.SubFactory(PlatformAccountFactory)
    post_id = factory.Sequence(lambda n: str(500_000 + n))
    root_id = factory.SelfAttribute("post_id")
    author_id = "10000"
    author_handle = "buyer"
    text = "@HashcartDeals #BuyThing"
    posted_at = factory.LazyFunction(timezone.now)


def _code(n: int) -> str:
    """A distinct valid confirmation code for each n."""
    base = len(CONFIRMATION_ALPHABET)
    return "".join(CONFIRMATION_ALPHABET[(n // base**i) % base] for i in range(5))


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    campaign = factory.SubFactory(CampaignFactory)
    merchant = factory.SelfAttribute("campaign.merchant")
    cardholder = factory.SubFactory(CardholderFactory)
    card = factory.SubFactory(CardFactory, cardholder=factory.SelfAttribute("..cardholder"))
    platform = Platform.SANDBOX
    author_id = "10000"
    author_handle = "buyer"
    confirmation_code = factory.Sequence(_code)
    unit_price = factory.SelfAttribute("campaign.price")
    total = factory.SelfAttribute("campaign.price")
    product_name = factory.SelfAttribute("campaign.product.name")
    product_sku = factory.SelfAttribute("campaign.product.sku")
    hashtag = factory.SelfAttribute("campaign.hashtag")


class ShipmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shipment

    order = factory.SubFactory(OrderFactory)
    merchant = factory.SelfAttribute("order.merchant")
    ship_by = factory.LazyFunction(lambda: timezone.localdate())
    promised_delivery = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=2))
