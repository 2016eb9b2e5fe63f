"""Options, variants and variant stock in the back office and the API, merchant-scoped; saved
option values on the cardholder's settings page (issue 13, items 1 and 2)."""

import pytest
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken

from accounts.models import OptionPreference
from accounts.services import staff_user_upsert
from catalog.models import Campaign, CampaignVariantStock, ProductOption, ProductVariant
from catalog.tests.factories import CampaignFactory
from tests.mfa import totp_enable
from tests.shop import buyer_ready
from tests.variants import tee_shop

pytestmark = pytest.mark.django_db


def _staff(merchant_id: int):
    user = staff_user_upsert(
        username=f"staff-{merchant_id}",
        email=f"s{merchant_id}@example.com",
        password="pw-staff",
        merchant_id=merchant_id,
    )
    totp_enable(user)
    return user


def _inline(prefix: str, rows: list[dict[str, object]]) -> dict[str, object]:
    data: dict[str, object] = {
        f"{prefix}-TOTAL_FORMS": len(rows),
        f"{prefix}-INITIAL_FORMS": 0,
        f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
    }
    for n, row in enumerate(rows):
        data |= {f"{prefix}-{n}-{k}": v for k, v in row.items()}
    return data


def test_staff_give_a_product_options_then_variants_on_its_page(client):
    campaign = CampaignFactory()
    product = campaign.product
    client.force_login(_staff(campaign.merchant_id))
    url = reverse("admin:catalog_product_change", args=[product.pk])
    base = {"name": product.name, "sku": product.sku, "description": ""}

    first = client.post(
        url,
        base | _inline("options", [{"position": 1, "name": "Size"}]) | _inline("variants", []),
    )
    assert first.status_code == 302
    second = client.post(
        url,
        base
        | _inline("options", [])
        | _inline("variants", [{"sku": "TEE-M", "option1": "M"}, {"sku": "TEE-L", "option1": "L"}]),
    )
    assert second.status_code == 302
    assert sorted(ProductVariant.objects.values_list("option1", flat=True)) == ["L", "M"]

    refused = client.post(
        url,
        base | _inline("options", []) | _inline("variants", [{"sku": "TEE-XL", "option1": "X L"}]),
    )
    assert refused.status_code == 200  # the form again, with the row's error
    assert "A value is one word" in refused.content.decode()
    assert ProductOption.objects.filter(product=product).count() == 1


def test_the_campaign_page_offers_only_the_merchants_own_variants(client):
    tees = tee_shop({"S": 1})
    theirs = CampaignFactory(hashtag="BuyOtherTee")
    ProductOption.objects.create(product=theirs.product, position=1, name="Size")
    foreign = ProductVariant.objects.create(product=theirs.product, sku="THEIRS", option1="S")
    client.force_login(_staff(tees.shop.campaign.merchant_id))

    page = client.get(
        reverse("admin:catalog_campaign_change", args=[tees.shop.campaign.pk])
    ).content.decode()

    assert f'value="{tees.variants["S"].pk}"' in page
    assert f'value="{foreign.pk}"' not in page


def test_the_api_manages_variants_and_stock_within_the_merchant():
    campaign = CampaignFactory(stock_total=3)
    theirs = CampaignFactory(hashtag="BuyOtherTee")
    foreign = ProductVariant.objects.create(product=theirs.product, sku="THEIRS", option1="S")
    _, token = AuthToken.objects.create(user=_staff(campaign.merchant_id))
    api = Client(headers={"Authorization": f"Token {token}"})

    def send(path: str, body: dict[str, object]):
        return api.post(f"/api/v1/{path}/", body, content_type="application/json")

    option = send(
        "product-options", {"product": campaign.product_id, "position": 1, "name": "Size"}
    )
    assert option.status_code == 201, option.content
    m = send("product-variants", {"product": campaign.product_id, "sku": "TEE-M", "option1": "M"})
    l_ = send("product-variants", {"product": campaign.product_id, "sku": "TEE-L", "option1": "L"})
    assert (m.status_code, l_.status_code) == (201, 201)
    for variant, units in ((m, 4), (l_, 6)):
        stock = send(
            "campaign-variant-stocks",
            {"campaign": campaign.pk, "variant": variant.json()["id"], "stock_total": units},
        )
        assert stock.status_code == 201, stock.content
    assert Campaign.objects.get(pk=campaign.pk).stock_total == 10

    stolen = send(
        "campaign-variant-stocks",
        {"campaign": campaign.pk, "variant": foreign.pk, "stock_total": 1},
    )
    assert stolen.status_code == 400
    assert not CampaignVariantStock.objects.filter(variant=foreign).exists()
    assert api.get(f"/api/v1/product-variants/{foreign.pk}/").status_code == 404
    duplicate_sku = send(
        "product-variants", {"product": campaign.product_id, "sku": "TEE-M", "option1": "S"}
    )
    assert duplicate_sku.status_code == 400
    in_use = api.delete(f"/api/v1/product-options/{option.json()['id']}/")
    assert in_use.status_code == 400  # the variants name a value for it
    assert ProductOption.objects.filter(pk=option.json()["id"]).exists()
    assert "/api/v1/campaign-variant-stocks/" in Client().get("/api/schema/").content.decode()


def test_a_cardholder_saves_their_usual_size_on_the_settings_page(client):
    alice = buyer_ready("alice")
    client.force_login(alice.cardholder.user)
    url = reverse("accounts:settings_action", args=["preferences"])

    client.post(url, {"name_1": "Size", "value_1": "M", "name_2": "", "value_2": ""})
    assert dict(
        OptionPreference.objects.filter(cardholder=alice.cardholder).values_list("name", "value")
    ) == {"Size": "M"}
    page = client.get(reverse("accounts:settings")).content.decode()
    assert 'value="Size"' in page

    client.post(url, {"name_1": "Size", "value_1": ""})  # half a pair is refused
    assert OptionPreference.objects.get(cardholder=alice.cardholder).value == "M"


def test_staff_set_a_campaigns_stock_per_variant_on_its_page(client):
    from django.utils import timezone

    tees = tee_shop({"S": 1, "M": 1})
    campaign = tees.shop.campaign
    client.force_login(_staff(campaign.merchant_id))
    local = timezone.localtime
    stocks = list(CampaignVariantStock.objects.filter(campaign=campaign).order_by("id"))
    data = {
        "product": campaign.product_id,
        "platform": campaign.platform,
        "hashtag": campaign.hashtag,
        "confirm_prefix": campaign.confirm_prefix,
        "price": "20.00",
        "currency": "USD",
        "stock_total": 999,  # not this: the sum of the variants' stock
        "per_buyer_limit": 3,
        "starts_at_0": local(campaign.starts_at).strftime("%Y-%m-%d"),
        "starts_at_1": local(campaign.starts_at).strftime("%H:%M:%S"),
        "ends_at_0": local(campaign.ends_at).strftime("%Y-%m-%d"),
        "ends_at_1": local(campaign.ends_at).strftime("%H:%M:%S"),
        "variant_stocks-TOTAL_FORMS": 2,
        "variant_stocks-INITIAL_FORMS": 2,
        "variant_stocks-MIN_NUM_FORMS": 0,
        "variant_stocks-MAX_NUM_FORMS": 1000,
    }
    for n, (stock, units) in enumerate(zip(stocks, (4, 6), strict=True)):
        data |= {
            f"variant_stocks-{n}-id": stock.pk,
            f"variant_stocks-{n}-campaign": campaign.pk,
            f"variant_stocks-{n}-variant": stock.variant_id,
            f"variant_stocks-{n}-stock_total": units,
        }

    response = client.post(reverse("admin:catalog_campaign_change", args=[campaign.pk]), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert tees.stock("S").stock_total == 4
    assert tees.stock("M").stock_total == 6
    assert Campaign.objects.get(pk=campaign.pk).stock_total == 10
