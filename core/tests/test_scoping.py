"""Which merchant's rows a user sees (``core.scoping``): one rule for admin and API."""

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser

from accounts.tests.factories import UserFactory
from catalog.models import Campaign, Merchant
from catalog.tests.factories import MerchantFactory
from core.scoping import has_merchant_scope, merchant_id_of, merchant_lookup_of
from social.models import Post

pytestmark = pytest.mark.django_db


def _request(user):
    return SimpleNamespace(user=user)


def test_operators_see_every_merchant_staff_their_own_and_others_none():
    merchant = MerchantFactory()
    operator = UserFactory(is_staff=True, is_superuser=True)
    staff = UserFactory(is_staff=True, merchant=merchant)
    stray = UserFactory(is_staff=True)
    assert merchant_id_of(_request(operator)) is None
    assert merchant_id_of(_request(staff)) == merchant.pk
    assert merchant_id_of(_request(stray)) == 0
    assert merchant_id_of(_request(AnonymousUser())) == 0
    assert [has_merchant_scope(_request(u)) for u in (operator, staff, stray)] == [
        True,
        True,
        False,
    ]


def test_the_merchant_model_is_the_one_the_user_model_names():
    assert merchant_lookup_of(Merchant) == "pk"
    assert merchant_lookup_of(Campaign) == "merchant"
    assert merchant_lookup_of(Post) is None
