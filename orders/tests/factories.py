"""factory_boy factories for orders' models, over catalog's and accounts' factories."""

import factory

from accounts.tests.factories import CardFactory, CardholderFactory
from catalog.tests.factories import CampaignFactory
from orders.models import CONFIRMATION_ALPHABET, Order
from social.models import Platform


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
    subtotal = factory.SelfAttribute("campaign.price")
    total = factory.SelfAttribute("campaign.price")
    product_name = factory.SelfAttribute("campaign.product.name")
    product_sku = factory.SelfAttribute("campaign.product.sku")
    hashtag = factory.SelfAttribute("campaign.hashtag")
