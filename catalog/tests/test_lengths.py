"""A hashtag whose matching key would not fit is refused by every writer, with a message
(issue 10, item 3): some letters expand under NFKC, U+FDFA into 18 characters."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken

from accounts.services import staff_user_upsert
from catalog.admin import CampaignForm
from catalog.models import Campaign
from catalog.tests.factories import ProductFactory
from social.hashtags import hashtag_key, is_valid_hashtag

pytestmark = pytest.mark.django_db

KEY_MAX = Campaign._meta.get_field("hashtag_key").max_length or 0
EXPANDING = "Buy" + "\ufdfa" * 6  # 9 characters written, 3 + 6 * 18 in the key


def _body(product_id: int, hashtag: str) -> dict[str, object]:
    now = timezone.now()
    return {
        "product": product_id,
        "platform": "sandbox",
        "hashtag": hashtag,
        "confirm_prefix": "Confirm",
        "price": "10.00",
        "currency": "USD",
        "stock_total": 5,
        "per_buyer_limit": 1,
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(days=3)).isoformat(),
    }


def test_the_expanding_hashtag_is_valid_but_its_key_is_too_long():
    assert is_valid_hashtag(EXPANDING)
    assert len(hashtag_key(EXPANDING)) > KEY_MAX


def test_the_api_refuses_a_hashtag_whose_key_would_not_fit_with_a_400():
    product = ProductFactory()
    staff = staff_user_upsert(
        username="s", email="s@example.com", password="pw", merchant_id=product.merchant_id
    )
    _, token = AuthToken.objects.create(user=staff)
    api = Client(headers={"Authorization": f"Token {token}"})

    response = api.post(
        "/api/v1/campaigns/", _body(product.pk, EXPANDING), content_type="application/json"
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "too long once normalised" in error["fields"]["hashtag"][0]
    assert not Campaign.objects.exists()


def test_the_admin_form_refuses_a_hashtag_whose_key_would_not_fit():
    product = ProductFactory()
    form = CampaignForm(data={**_body(product.pk, EXPANDING), "starts_at": timezone.now()})
    assert not form.is_valid()
    assert "too long once normalised" in form.errors["hashtag"][0]


def test_a_hashtag_whose_key_just_fits_is_saved():
    product = ProductFactory()
    hashtag = "B" * (KEY_MAX - 18) + "\ufdfa"
    assert len(hashtag_key(hashtag)) == KEY_MAX
    form = CampaignForm(data={**_body(product.pk, hashtag), "starts_at": timezone.now()})
    assert form.is_valid(), form.errors
