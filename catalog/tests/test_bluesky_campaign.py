"""A campaign whose platform is Bluesky (issue 15, item 4): the merchant API and the admin take
it, the linking page offers Bluesky where a brand account is set up there, and the operator's
form keeps a Bluesky brand account on its DID and within Bluesky's write limits."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from accounts.services import cardholder_upsert, staff_user_upsert
from catalog.admin import CampaignForm
from catalog.models import Campaign
from catalog.tests.factories import ProductFactory
from social.admin import PlatformAccountForm
from social.models import PlatformAccount

pytestmark = pytest.mark.django_db


def _body(product_id: int) -> dict[str, object]:
    now = timezone.now()
    return {
        "product": product_id,
        "platform": "bluesky",
        "hashtag": "BuyKindleFireHD",
        "confirm_prefix": "Confirm",
        "price": "10.00",
        "currency": "USD",
        "stock_total": 5,
        "per_buyer_limit": 1,
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(days=3)).isoformat(),
    }


def test_the_api_creates_a_campaign_on_bluesky():
    product = ProductFactory()
    staff = staff_user_upsert(
        username="s", email="s@example.com", password="pw", merchant_id=product.merchant_id
    )
    _, token = AuthToken.objects.create(user=staff)
    api = Client(headers={"Authorization": f"Token {token}"})
    response = api.post("/api/v1/campaigns/", _body(product.pk), content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["platform"] == "bluesky"
    assert Campaign.objects.get().platform == "bluesky"


def test_the_admin_form_takes_a_campaign_on_bluesky():
    product = ProductFactory()
    form = CampaignForm(data={**_body(product.pk), "starts_at": timezone.now()})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["platform"] == "bluesky"


def test_the_linking_page_offers_bluesky_where_a_brand_account_is_there():
    PlatformAccount.objects.create(platform="sandbox", platform_user_id="1", handle="Deals")
    PlatformAccount.objects.create(
        platform="bluesky", platform_user_id="did:plc:brand", handle="deals.bsky.social"
    )
    cardholder = cardholder_upsert(email="carol@example.com", password="pw-carol-123")
    client = Client()
    client.force_login(cardholder.user)
    page = client.get(reverse("accounts:link_identity") + "?platform=bluesky")
    assert page.status_code == 200
    html = page.content.decode()
    assert ">Bluesky</a>" in html
    assert "@deals.bsky.social #Link" in html
    assert "on Bluesky within 15 minutes" in html


def _account_form(**fields: object) -> PlatformAccountForm:
    data = {
        "platform": "bluesky",
        "platform_user_id": "did:plc:brand",
        "handle": "deals.bsky.social",
        "enabled": True,
        "feed_mode": "mentions",
        "reply_budget": 1000,
        "reply_budget_seconds": 10000,
        "new_credentials": '{"identifier": "deals.bsky.social", "app_password": "a-b-c-d"}',
        **fields,
    }
    return PlatformAccountForm(data=data)


def test_a_bluesky_brand_account_is_its_did_within_the_write_limits():
    assert _account_form().is_valid()
    assert "platform_user_id" in _account_form(platform_user_id="deals.bsky.social").errors
    assert "reply_budget" in _account_form(reply_budget=2000, reply_budget_seconds=3600).errors
