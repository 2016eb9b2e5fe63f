"""The database itself rejects bad campaigns, whoever writes them (no forms involved)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from catalog.models import Campaign
from catalog.tests.factories import CampaignFactory
from social.models import Platform

pytestmark = pytest.mark.django_db


def _rejected(**changes):
    campaign = CampaignFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(**changes)


def test_reserved_stock_cannot_exceed_total():
    _rejected(stock_reserved=11)


def test_reserved_stock_cannot_go_below_zero():
    _rejected(stock_reserved=-1)


def test_a_reservation_past_the_last_unit_is_refused_by_the_check():
    campaign = CampaignFactory(stock_total=1)
    Campaign.objects.filter(pk=campaign.pk).update(stock_reserved=F("stock_reserved") + 1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(stock_reserved=F("stock_reserved") + 1)
    campaign.refresh_from_db()
    assert campaign.stock_reserved == 1


def test_campaign_must_end_after_it_starts():
    campaign = CampaignFactory()
    _rejected(ends_at=campaign.starts_at)


def test_price_must_be_positive():
    _rejected(price=Decimal("0.00"))


def test_per_buyer_limit_must_be_positive():
    _rejected(per_buyer_limit=0)


def test_hashtag_key_must_be_present():
    _rejected(hashtag_key="")


def test_two_campaigns_cannot_hold_one_key_at_overlapping_times():
    first = CampaignFactory(hashtag="BuyKindleFireHD")
    with pytest.raises(IntegrityError), transaction.atomic():
        CampaignFactory(
            hashtag="buykindlefirehd",
            starts_at=first.ends_at - timedelta(hours=1),
            ends_at=first.ends_at + timedelta(days=1),
        )


def test_moving_a_campaign_onto_another_ones_dates_is_refused():
    first = CampaignFactory(hashtag="BuyKindleFireHD")
    later = CampaignFactory(
        hashtag="BuyKindleFireHD",
        starts_at=first.ends_at,
        ends_at=first.ends_at + timedelta(days=9),
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=later.pk).update(starts_at=first.starts_at)


def test_the_same_key_may_follow_on_later_dates_or_another_platform():
    first = CampaignFactory(hashtag="BuyKindleFireHD")
    CampaignFactory(
        hashtag="BuyKindleFireHD",
        starts_at=first.ends_at,
        ends_at=first.ends_at + timedelta(days=9),
    )
    CampaignFactory(hashtag="BuyKindleFireHD", platform=Platform.X)
    assert Campaign.objects.filter(hashtag_key="buykindlefirehd").count() == 3
