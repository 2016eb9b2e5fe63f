"""Campaign checks: the rules every writer of a campaign meets (admin, API, seed)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone

from catalog.models import Campaign
from catalog.services import campaign_save, campaign_set_paused
from catalog.tests.factories import CampaignFactory, ProductFactory
from social.models import Platform

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
    assert "unavailable" in _errors(_new(hashtag="\uff22\uff35\uff39kindlefirehd"), "hashtag")[0]


def test_the_same_hashtag_is_free_on_another_platform_and_for_its_merchant_at_later_dates():
    held = CampaignFactory(hashtag="BuyKindleFireHD")
    campaign_save(campaign=_new(platform=Platform.X), now=timezone.now())
    campaign_save(
        campaign=_new(
            product=held.product, starts_at=held.ends_at, ends_at=held.ends_at + timedelta(days=1)
        ),
        now=timezone.now(),
    )


def test_a_merchant_is_told_the_dates_of_its_own_campaign_holding_the_hashtag():
    held = CampaignFactory(hashtag="BuyKindleFireHD")
    message = _errors(_new(product=held.product), "hashtag")[0]
    assert f"{held.starts_at:%Y-%m-%d %H:%M}" in message


# --- No oracle, no squatting (issue 10, item 8) -------------------------------------------------
def _staff(merchant):
    from accounts.services import staff_user_upsert

    return staff_user_upsert(
        username=f"staff-{merchant.slug}",
        email=f"{merchant.slug}@example.com",
        password="pw",
        merchant_id=merchant.pk,
    )


def _refusal(campaign, actor):
    with pytest.raises(ValidationError) as caught:
        campaign_save(campaign=campaign, now=timezone.now(), actor=actor)
    return caught.value.message_dict


def test_a_competitors_hashtag_is_refused_alike_at_any_dates_so_bisection_learns_nothing():
    now = timezone.now()
    rival = CampaignFactory(
        hashtag="BuyKindleFireHD", starts_at=now + timedelta(days=10), ends_at=now + timedelta(20)
    )
    mine = ProductFactory()
    actor = _staff(mine.merchant)
    windows = [
        (now, now + timedelta(days=5)),  # before the rival's launch
        (now + timedelta(days=12), now + timedelta(days=13)),  # inside its window
        (now + timedelta(days=25), now + timedelta(days=30)),  # after it
    ]
    answers = [_refusal(_new(product=mine, starts_at=s, ends_at=e), actor) for s, e in windows]
    assert answers[0] == answers[1] == answers[2]
    message = " ".join(answers[0]["hashtag"])
    assert "unavailable" in message
    for leak in (rival.merchant.name, str(rival.starts_at.year), f"{rival.starts_at:%m-%d}"):
        assert leak not in message


def test_a_hashtag_race_lost_to_the_constraint_reads_like_any_clash(monkeypatch):
    from catalog import services

    rival = CampaignFactory(hashtag="BuyKindleFireHD")
    mine = ProductFactory()
    actor = _staff(mine.merchant)
    in_check = _refusal(_new(product=mine), actor)
    # The check passes (the rival's row was written after it) and the database refuses.
    monkeypatch.setattr(services, "campaign_validate", lambda **kwargs: None)
    in_race = _refusal(_new(product=mine, starts_at=rival.starts_at), actor)
    assert in_race == in_check


def test_clash_refusals_are_throttled_per_login_and_audited():
    from django.contrib.admin.models import LogEntry
    from django.core.cache import cache

    rival = CampaignFactory(hashtag="BuyKindleFireHD")
    mine = ProductFactory()
    actor, other_login = _staff(mine.merchant), _staff(ProductFactory().merchant)
    cache.clear()
    for _ in range(10):
        assert "unavailable" in _refusal(_new(product=mine), actor)["hashtag"][0]
    # The eleventh try within the hour learns nothing, even of a free hashtag.
    assert "Too many" in _refusal(_new(product=mine, hashtag="BuyFreeThing"), actor)["hashtag"][0]
    assert "unavailable" in _refusal(_new(), other_login)["hashtag"][0]
    entries = LogEntry.objects.filter(user=actor)
    assert entries.count() == 11
    assert all(e.object_repr.startswith("#Buy") for e in entries)
    assert str(rival.pk) in entries.order_by("id").first().change_message


def test_a_campaign_lasts_at_most_the_configured_days(settings):
    now = timezone.now()
    assert "at most 366 days" in _errors(_new(ends_at=now + timedelta(days=367)), "ends_at")[0]
    far = _new(starts_at=now + timedelta(days=300), ends_at=now + timedelta(days=400))
    assert "at most 366 days" in _errors(far, "ends_at")[0]
    settings.HASHCART = {**settings.HASHCART, "MAX_CAMPAIGN_DAYS": 30}
    assert "at most 30 days" in _errors(_new(ends_at=now + timedelta(days=31)), "ends_at")[0]
    campaign_save(campaign=_new(ends_at=now + timedelta(days=29)), now=now)


# --- Confirmation prefixes (issue 10, item 7) ---------------------------------------------------
@pytest.mark.parametrize("prefix", ["BuyKindleF", "buykindlef", "LinkA", "Link2", "linkz"])
def test_a_prefix_that_can_make_a_hashtag_in_use_or_the_link_tag_is_refused(prefix):
    CampaignFactory(hashtag="BuyKindleFireHD", starts_at=timezone.now() + timedelta(days=3))
    errors = _errors(_new(hashtag="BuyOtherThing", confirm_prefix=prefix), "confirm_prefix")
    assert "could be mistaken" in errors[0]


def test_a_hashtag_that_a_prefix_in_use_can_make_is_refused():
    CampaignFactory(hashtag="BuyRivalThing", confirm_prefix="BuyKindleF")
    assert "unavailable" in _errors(_new(hashtag="BuyKindleFireHD"), "hashtag")[0]
    # Its own prefix too.
    own = _new(hashtag="BuyActionCamPack", confirm_prefix="BuyActionCa")
    assert "unavailable" in _errors(own, "hashtag")[0]


def test_prefixes_that_make_no_hashtag_in_use_are_accepted():
    CampaignFactory(hashtag="BuyKindleFireHD")
    for n, prefix in enumerate(["Confirm", "BuyKindle", "BuyKindleFi", "Linked", "Lin"]):
        campaign_save(
            campaign=_new(hashtag=f"BuyOther{n}x", confirm_prefix=prefix), now=timezone.now()
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
