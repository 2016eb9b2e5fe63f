"""The database rejects bad people data written without forms."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from accounts.models import Card, Consent, PurchaseControls, SocialIdentity, User
from accounts.tests.factories import (
    CardFactory,
    CardholderFactory,
    SocialIdentityFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def test_one_platform_identity_links_to_one_cardholder():
    identity = SocialIdentityFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        SocialIdentityFactory(
            platform=identity.platform, platform_user_id=identity.platform_user_id
        )


def test_the_same_user_id_on_another_platform_is_another_identity():
    identity = SocialIdentityFactory(platform="sandbox")
    SocialIdentityFactory(platform="x", platform_user_id=identity.platform_user_id)
    assert SocialIdentity.objects.count() == 2


def test_email_is_unique_regardless_of_case():
    UserFactory(email="alice@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        UserFactory(email="Alice@Example.com")


@pytest.mark.parametrize(
    "changes",
    [
        {"last4": "42a2"},
        {"last4": "424"},
        {"exp_month": 13},
        {"exp_month": 0},
        {"exp_year": 1999},
        {"postal_code": "6270"},
        {"postal_code": "62701-12"},
        {"country": "CA"},
    ],
    ids=lambda changes: ",".join(f"{k}={v}" for k, v in changes.items()),
)
def test_card_fields_are_checked(changes):
    card = CardFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Card.objects.filter(pk=card.pk).update(**changes)


def test_a_zip_plus_four_is_accepted():
    card = CardFactory()
    Card.objects.filter(pk=card.pk).update(postal_code="62701-1234")


def test_a_cardholder_has_one_default_card():
    card = CardFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        CardFactory(cardholder=card.cardholder)


def test_a_removed_default_card_makes_room_for_another():
    card = CardFactory()
    Card.objects.filter(pk=card.pk).update(removed_at=card.created_at)
    CardFactory(cardholder=card.cardholder)


def test_one_gateway_token_is_one_card():
    card = CardFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        CardFactory(token=card.token, is_default=False)


def test_consent_cannot_be_withdrawn_before_it_was_given():
    cardholder = CardholderFactory()
    consent = Consent.objects.create(
        cardholder=cardholder, terms_version="v1", accepted_at=cardholder.created_at
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Consent.objects.filter(pk=consent.pk).update(
            withdrawn_at=consent.accepted_at - timedelta(seconds=1)
        )


@pytest.mark.parametrize("field", ["per_order_cap", "per_day_cap"])
def test_spend_caps_are_positive(field):
    cardholder = CardholderFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        PurchaseControls.objects.filter(cardholder=cardholder).update(**{field: Decimal("0")})


def test_no_field_can_hold_a_card_number():
    # The card model stores what may be shown of a card, never the number (DESIGN §6).
    names = {f.name for f in Card._meta.get_fields()} | {f.name for f in User._meta.get_fields()}
    assert not names & {"number", "card_number", "pan", "cvc", "cvv"}
    assert Card._meta.get_field("last4").max_length == 4
