"""factory_boy factories for social's models: the platform accounts and the posts they read."""

import factory
from django.utils import timezone

from social.models import Platform, PlatformAccount, Post


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
