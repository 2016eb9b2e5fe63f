"""The back office and the API manage the networks a campaign runs on (issue 13, item 7)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from accounts.services import staff_user_upsert
from catalog.models import Campaign, CampaignListing
from catalog.selectors import campaign_networks
from catalog.services import campaign_save
from catalog.tests.factories import ProductFactory
from tests.mfa import totp_enable

pytestmark = pytest.mark.django_db
UNAVAILABLE = "#BuyEverywhere is unavailable on this platform. Choose another hashtag."


@pytest.fixture
def product():
    return ProductFactory()


@pytest.fixture
def staff(product):
    user = staff_user_upsert(
        username="staff", email="s@example.com", password="pw", merchant_id=product.merchant_id
    )
    totp_enable(user)
    return user


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def api(staff):
    _, token = AuthToken.objects.create(user=staff)
    return Client(headers={"Authorization": f"Token {token}"})


def _rival(*platforms):
    """Another merchant's campaign holding #BuyEverywhere on ``platforms`` from now on."""
    now = timezone.now()
    return campaign_save(
        campaign=Campaign(
            product=ProductFactory(),
            hashtag="BuyEverywhere",
            price="5.00",
            stock_total=1,
            starts_at=now,
            ends_at=now + timedelta(days=20),
        ),
        now=now,
        platforms=list(platforms),
    )


def _form(product, **overrides):
    now = timezone.now()
    data = {
        "product": product.pk,
        "platform": "sandbox",
        "platforms": ["mastodon", "x"],
        "hashtag": "BuyEverywhere",
        "confirm_prefix": "Confirm",
        "price": "99.00",
        "currency": "USD",
        "stock_total": "5",
        "per_buyer_limit": "1",
        "starts_at_0": now.strftime("%Y-%m-%d"),
        "starts_at_1": now.strftime("%H:%M:%S"),
        "ends_at_0": (now + timedelta(days=7)).strftime("%Y-%m-%d"),
        "ends_at_1": "12:00:00",
        # The change page's variant stock inline (none here).
        "variant_stocks-TOTAL_FORMS": 0,
        "variant_stocks-INITIAL_FORMS": 0,
        "variant_stocks-MIN_NUM_FORMS": 0,
        "variant_stocks-MAX_NUM_FORMS": 1000,
    }
    data.update(overrides)
    return data


def _networks(campaign):
    return campaign_networks(campaign_ids=[campaign.pk])[campaign.pk]


def test_staff_create_a_campaign_on_several_networks_and_change_them(admin_client, product):
    created = admin_client.post(reverse("admin:catalog_campaign_add"), _form(product))
    assert created.status_code == 302
    campaign = Campaign.objects.get(hashtag="BuyEverywhere")
    assert _networks(campaign) == ("sandbox", "x", "mastodon")

    url = reverse("admin:catalog_campaign_change", args=[campaign.pk])
    page = admin_client.get(url)
    assert set(page.context["adminform"].form["platforms"].initial) == {"sandbox", "x", "mastodon"}
    changed = admin_client.post(url, _form(product, platforms=["bluesky"]))
    assert changed.status_code == 302
    assert _networks(campaign) == ("sandbox", "bluesky")


def test_the_form_refuses_a_clash_on_any_ticked_network_with_the_usual_message(
    admin_client, product
):
    _rival("bluesky", "x")
    response = admin_client.post(reverse("admin:catalog_campaign_add"), _form(product))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["hashtag"] == [UNAVAILABLE]
    assert not Campaign.objects.filter(product=product).exists()
    # Not on X: saved.
    response = admin_client.post(
        reverse("admin:catalog_campaign_add"), _form(product, platforms=["mastodon"])
    )
    assert response.status_code == 302


def _body(product, **values):
    now = timezone.now()
    return {
        "product": product.pk,
        "hashtag": "BuyEverywhere",
        "price": "10.00",
        "stock_total": 5,
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(days=3)).isoformat(),
        **values,
    }


def test_the_api_creates_reads_and_changes_a_campaigns_networks(api, product):
    created = api.post(
        "/api/v1/campaigns/",
        _body(product, platforms=["mastodon", "sandbox"]),
        content_type="application/json",
    )
    assert created.status_code == 201
    body = created.json()
    assert (body["platform"], body["platforms"]) == ("mastodon", ["mastodon", "sandbox"])
    url = f"/api/v1/campaigns/{body['id']}/"
    changed = api.patch(url, {"platforms": ["x", "bluesky"]}, content_type="application/json")
    assert changed.status_code == 200
    assert changed.json()["platforms"] == ["x", "bluesky"]
    assert api.get(url).json()["platforms"] == ["x", "bluesky"]
    [listed] = api.get("/api/v1/campaigns/").json()["results"]
    assert listed["platforms"] == ["x", "bluesky"]
    # ``platform`` alone changes the first network and keeps the others.
    kept = api.patch(url, {"platform": "sandbox"}, content_type="application/json")
    assert kept.json()["platforms"] == ["sandbox", "bluesky"]
    assert CampaignListing.objects.count() == 2


def test_the_api_refuses_a_clash_on_any_network_and_an_empty_or_unknown_list(api, product):
    _rival("x")
    clash = api.post(
        "/api/v1/campaigns/",
        _body(product, platforms=["sandbox", "x"]),
        content_type="application/json",
    )
    assert clash.status_code == 400
    assert clash.json()["error"]["fields"]["hashtag"] == [UNAVAILABLE]
    for bad in ([], ["myspace"]):
        refused = api.post(
            "/api/v1/campaigns/", _body(product, platforms=bad), content_type="application/json"
        )
        assert refused.status_code == 400
        assert "platforms" in refused.json()["error"]["fields"]
    assert not Campaign.objects.filter(product=product).exists()


def test_the_schema_documents_the_platforms_list(api):
    schema = api.get("/api/schema/?format=json").json()
    field = schema["components"]["schemas"]["Campaign"]["properties"]["platforms"]
    assert field["type"] == "array"
    assert "one stock pool" in field["description"]
