"""``seed_demo``: the 2013 catalogue, the logins, the brand account and a buyer ready to buy."""

import io
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from accounts.models import Card, Cardholder, Consent, SocialIdentity, User
from catalog.models import Campaign, Merchant, Product
from social.models import PlatformAccount

pytestmark = pytest.mark.django_db

CATALOGUE = {
    "BuyKindleFireHD": ("Kindle Fire HD", Decimal("149.00")),
    "BuyActionCamPack": ("Sony Action Cam with waterproof headband mount", Decimal("179.00")),
    "BuyUrbanZenBracelet": ("Urban Zen bracelet designed by Donna Karan", Decimal("80.00")),
    "BuyXbox360Bundle": ("Microsoft Xbox 360 bundle", Decimal("179.00")),
}


def _seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", "--force", stdout=out)
    return out.getvalue()


def _counts():
    return [
        m.objects.count()
        for m in (
            Merchant,
            Product,
            Campaign,
            User,
            Cardholder,
            SocialIdentity,
            Card,
            Consent,
            PlatformAccount,
        )
    ]


def test_seeds_the_four_campaigns_live_until_3_march_next_year():
    _seed()
    campaigns = {c.hashtag: c for c in Campaign.objects.select_related("product")}
    assert {tag: (c.product.name, c.price) for tag, c in campaigns.items()} == CATALOGUE
    now = timezone.now()
    end = datetime(now.year + 1, 3, 3, 23, 59, 59, tzinfo=ZoneInfo("America/New_York"))
    for campaign in campaigns.values():
        assert campaign.starts_at <= now < campaign.ends_at == end
        assert 0 < campaign.stock_total <= 100  # limited stock
        assert campaign.merchant == campaign.product.merchant


def test_running_it_again_changes_nothing():
    _seed()
    before = _counts()
    Campaign.objects.filter(hashtag="BuyKindleFireHD").update(stock_reserved=3)
    _seed()
    assert _counts() == before
    assert Campaign.objects.get(hashtag="BuyKindleFireHD").stock_reserved == 3


def test_prints_the_logins_and_the_brand_and_buyer_handles_for_scripts():
    lines = _seed().splitlines()
    assert "brand: @HashcartDeals" in lines
    assert "buyer: @alice" in lines
    assert sum(line.startswith("login: ") and "(staff of" in line for line in lines) == 4
    assert any(line.startswith("login: ops@example.com /") for line in lines)


def test_the_demo_buyer_is_linked_carded_addressed_and_consenting():
    _seed()
    buyer = Cardholder.objects.get(user__email="alice@example.com")
    identity = buyer.identities.get()
    assert (identity.platform, identity.handle) == ("sandbox", "alice")
    card = buyer.cards.get()
    assert (card.gateway, card.last4, card.country) == ("sandbox", "4242", "US")
    assert buyer.consents.filter(withdrawn_at__isnull=True).exists()
    assert not buyer.controls.paused
    assert PlatformAccount.objects.get(platform="sandbox").handle == "HashcartDeals"


def test_each_merchant_login_sees_its_own_campaign_only(client, settings):
    # As in the local demo, where TOTP for staff is optional (config.settings.local).
    settings.HASHCART = {**settings.HASHCART, "STAFF_MFA_REQUIRED": False}
    _seed()
    client.login(username="amazon-staff", password="hashcart-demo")
    response = client.get(reverse("admin:catalog_campaign_changelist"))
    assert [str(c) for c in response.context["cl"].result_list] == ["#BuyKindleFireHD"]


def test_refuses_to_seed_known_passwords_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo")


def test_the_landing_page_shows_the_offers_ending_on_3_march_in_new_york(client):
    _seed()
    page = client.get("/").content.decode()
    assert page.count("(until 3 March ") == 4
    assert "#BuyUrbanZenBracelet" in page
