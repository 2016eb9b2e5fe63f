"""factory_boy factories for accounts' models: users, cardholders and what a cardholder holds."""

from datetime import timedelta

import factory
from django.utils import timezone

from accounts.models import Card, Cardholder, PurchaseControls, SocialIdentity, User
from social.models import Platform


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("secret-password")


class CardholderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cardholder
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    controls = factory.RelatedFactory(
        "accounts.tests.factories.PurchaseControlsFactory", factory_related_name="cardholder"
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
