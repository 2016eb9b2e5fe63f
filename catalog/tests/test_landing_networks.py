"""The landing page names the brand account on each network an offer runs on (issue 13,
item 7)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.models import Campaign
from catalog.services import campaign_save
from catalog.tests.factories import ProductFactory
from social.models import PlatformAccount

pytestmark = pytest.mark.django_db


def test_each_offer_names_the_brand_account_on_every_network_it_runs_on(client):
    PlatformAccount.objects.create(platform="sandbox", platform_user_id="1", handle="HcSandbox")
    PlatformAccount.objects.create(
        platform="mastodon", platform_user_id="2", handle="<b>hc</b>@m.example"
    )
    PlatformAccount.objects.create(platform="x", platform_user_id="3", handle="Old", enabled=False)
    now = timezone.now()
    campaign_save(
        campaign=Campaign(
            product=ProductFactory(name="Kindle Fire HD"),
            hashtag="BuyKindleFireHD",
            price=Decimal("149"),
            stock_total=5,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(days=2),
        ),
        now=now,
        platforms=["sandbox", "x", "mastodon"],
    )
    page = client.get(reverse("landing")).content.decode()
    assert "Post it on Sandbox: @HcSandbox · X · Mastodon: @&lt;b&gt;hc&lt;/b&gt;@m.example" in page
    assert "@Old" not in page  # a disabled account is not where to post
