"""Campaign checks: the rules every writer of a campaign meets (admin, API, seed)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone

from catalog.models import Campaign
from catalog.services import campaign_save, campaign_set_paused
from social.models import Platform
from tests.factories import CampaignFactory, ProductFactory

pytestmark = pytest.mark.django_db


def _new(product=None, **fields):
    now = timezone.now()
    values = {
        "platform": Platform.SANDBOX,
        "hashtag": "BuyKindleFireHD",
        "price": Decimal("149"),
        "stock_total": 10,
        "starts_at": now,
        "ends_at": now + timedelta(days=30),
    }
    values.update(fields)
    return Campaign(product=product or ProductFactory(), **values)


def _errors(campaign, field):
    with pytest.raises(ValidationError) as caught:
        campaign_save(campaign=campaign, now=timezone.now())
    return caught.value.message_dict[field]


def test_a_valid_campaign_is_saved_under_its_products_merchant_with_its_key():
    campaign = campaign_save(campaign=_new(hashtag=" #BuyKindleFireHD "), now=timezone.now())
    assert campaign.hashtag == "BuyKindleFireHD"
    assert campaign.hashtag_key == "buykindlefirehd"
    assert campaign.merchant == campaign.product.merchant


@pytest.mark.parametrize("tag", ["Buy Kindle", "Buy-Kindle", "Buy!", "", "#"])
def test_an_invalid_hashtag_is_refused(tag):
    assert "Not a valid hashtag" in _errors(_new(hashtag=tag), "hashtag")[0]


def test_an_all_digit_hashtag_is_refused():
    assert "all digits" in _errors(_new(hashtag="2013"), "hashtag")[0]


def test_a_confirm_prefix_that_breaks_the_hashtag_is_refused():
    assert (
        "would not be a valid hashtag" in _errors(_new(confirm_prefix="Ok!"), "confirm_prefix")[0]
    )


def test_a_campaign_must_end_after_it_starts():
    now = timezone.now()
    assert "end after it starts" in _errors(_new(starts_at=now, ends_at=now), "ends_at")[0]


def test_a_new_campaign_must_end_in_the_future():
    now = timezone.now()
    errors = _errors(
        _new(starts_at=now - timedelta(days=9), ends_at=now - timedelta(days=1)), "ends_at"
    )
    assert "future" in errors[0]


def test_a_hashtag_held_at_overlapping_dates_is_refused_in_any_case_or_width():
    CampaignFactory(hashtag="BuyKindleFireHD")
    assert "already taken" in _errors(_new(hashtag="\uff22\uff35\uff39kindlefirehd"), "hashtag")[0]


def test_the_same_hashtag_is_free_on_another_platform_and_at_later_dates():
    held = CampaignFactory(hashtag="BuyKindleFireHD")
    campaign_save(campaign=_new(platform=Platform.X), now=timezone.now())
    campaign_save(
        campaign=_new(starts_at=held.ends_at, ends_at=held.ends_at + timedelta(days=1)),
        now=timezone.now(),
    )


def test_a_look_alike_hashtag_is_another_hashtag():
    CampaignFactory(hashtag="BuyKindleFireHD")
    campaign_save(campaign=_new(hashtag="BuyKindleF\u0456reHD"), now=timezone.now())  # Ukrainian i


def test_editing_a_campaign_does_not_clash_with_itself():
    campaign = CampaignFactory(hashtag="BuyKindleFireHD")
    campaign.price = Decimal("139.00")
    campaign_save(campaign=campaign, now=timezone.now())
    campaign.refresh_from_db()
    assert campaign.price == Decimal("139.00")


def test_stock_cannot_shrink_below_what_orders_hold():
    campaign = CampaignFactory(stock_total=10)
    Campaign.objects.filter(pk=campaign.pk).update(stock_reserved=F("stock_reserved") + 6)
    campaign.stock_total = 5
    assert "already hold" in _errors(campaign, "stock_total")[0]


def test_saving_a_stale_copy_never_overwrites_reserved_stock():
    campaign = CampaignFactory(stock_total=10)
    Campaign.objects.filter(pk=campaign.pk).update(stock_reserved=F("stock_reserved") + 3)
    campaign.paused = True  # campaign.stock_reserved is a stale 0 here
    campaign_save(campaign=campaign, now=timezone.now())
    campaign.refresh_from_db()
    assert (campaign.stock_reserved, campaign.paused) == (3, True)


def test_pausing_twice_changes_each_campaign_once():
    campaigns = CampaignFactory.create_batch(2)
    ids = [c.pk for c in campaigns]
    assert campaign_set_paused(campaign_ids=ids, paused=True) == 2
    assert campaign_set_paused(campaign_ids=ids, paused=True) == 0
    assert campaign_set_paused(campaign_ids=ids, paused=False) == 2
