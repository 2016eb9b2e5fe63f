"""A campaign on several networks (issue 13, item 7): one listing per network, each holding the
hashtag's key on its platform, refused by the database and by validation alike when another
campaign holds it there at overlapping times."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from catalog.models import Campaign, CampaignListing
from catalog.selectors import campaign_indexes, campaign_networks, live_hashtags
from catalog.services import campaign_save
from catalog.tests.factories import ProductFactory

UNAVAILABLE = "#BuyKindleFireHD is unavailable on this platform. Choose another hashtag."


def _campaign(*platforms, product=None, starts_in=timedelta(0), days=9, **values):
    now = timezone.now()
    return campaign_save(
        campaign=Campaign(
            product=product or ProductFactory(),
            hashtag="BuyKindleFireHD",
            price=Decimal("149"),
            stock_total=5,
            starts_at=now + starts_in,
            ends_at=now + starts_in + timedelta(days=days),
            **values,
        ),
        now=now,
        platforms=list(platforms) if platforms else None,
    )


def _listed(campaign):
    return sorted(
        CampaignListing.objects.filter(campaign=campaign).values_list("platform", flat=True)
    )


@pytest.mark.django_db
def test_a_campaign_is_listed_once_on_each_of_its_networks_the_first_being_its_platform():
    campaign = _campaign("mastodon", "sandbox", "mastodon")
    assert campaign.platform == "mastodon"
    assert _listed(campaign) == ["mastodon", "sandbox"]
    assert campaign_networks(campaign_ids=[campaign.pk]) == {campaign.pk: ("mastodon", "sandbox")}
    listing = CampaignListing.objects.get(campaign=campaign, platform="sandbox")
    assert listing.hashtag_key == "buykindlefirehd"
    assert (listing.starts_at, listing.ends_at) == (campaign.starts_at, campaign.ends_at)


@pytest.mark.django_db
def test_the_database_refuses_a_second_listing_of_one_key_on_one_platform_at_overlapping_times():
    first = _campaign("sandbox", "mastodon")
    other = _campaign("x", starts_in=timedelta(days=30))
    with pytest.raises(IntegrityError), transaction.atomic():
        CampaignListing.objects.create(
            campaign=other,
            platform="mastodon",
            hashtag_key="buykindlefirehd",
            starts_at=first.starts_at + timedelta(days=1),
            ends_at=first.ends_at + timedelta(days=1),
        )
    # Later dates, or another platform, are free.
    CampaignListing.objects.create(
        campaign=other,
        platform="mastodon",
        hashtag_key="buykindlefirehd",
        starts_at=first.ends_at,
        ends_at=first.ends_at + timedelta(days=1),
    )
    CampaignListing.objects.create(
        campaign=other,
        platform="bluesky",
        hashtag_key="buykindlefirehd",
        starts_at=first.starts_at,
        ends_at=first.ends_at,
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "asked",
    [["mastodon"], ["x", "mastodon"], ["bluesky", "x", "sandbox"]],
    ids=["its-second-network-first", "its-second-network-second", "its-first-network-last"],
)
def test_a_clash_on_any_chosen_network_is_refused_with_the_usual_message(asked):
    _campaign("sandbox", "mastodon")
    with pytest.raises(ValidationError) as refused:
        _campaign(*asked, starts_in=timedelta(days=1))
    assert refused.value.message_dict == {"hashtag": [UNAVAILABLE]}
    assert Campaign.objects.count() == 1


@pytest.mark.django_db
def test_networks_the_campaign_is_not_on_stay_free():
    _campaign("sandbox", "mastodon")
    other = _campaign("x", "bluesky")
    assert _listed(other) == ["bluesky", "x"]


@pytest.mark.django_db
def test_editing_changes_the_networks_and_moves_every_listing_with_the_dates():
    campaign = _campaign("sandbox", "mastodon")
    campaign.ends_at += timedelta(days=1)
    campaign_save(campaign=campaign, now=timezone.now(), platforms=["sandbox", "x"])
    assert _listed(campaign) == ["sandbox", "x"]
    assert set(CampaignListing.objects.values_list("ends_at", flat=True)) == {campaign.ends_at}
    # Without networks, a changed first network replaces the old one and the others stay.
    campaign.platform = "bluesky"
    campaign_save(campaign=campaign, now=timezone.now())
    assert _listed(campaign) == ["bluesky", "x"]
    # A network dropped is free for others.
    _campaign("sandbox", "mastodon")


@pytest.mark.django_db
def test_no_network_or_an_unknown_one_is_refused():
    with pytest.raises(ValidationError) as none:
        campaign_save(campaign=Campaign(product=ProductFactory()), now=timezone.now(), platforms=[])
    assert "platforms" in none.value.message_dict
    with pytest.raises(ValidationError) as unknown:
        _campaign("myspace")
    assert "platforms" in unknown.value.message_dict


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_campaigns_sharing_one_network_yield_exactly_one():
    """Each asks for another first network and all share Mastodon: validation passes for all
    (nothing is saved yet), and the listings' exclusion constraint lets one win."""
    asked = [["sandbox", "mastodon"], ["x", "mastodon"], ["bluesky", "mastodon"], ["mastodon"]]
    products = ProductFactory.create_batch(len(asked))
    barrier = threading.Barrier(len(asked))
    outcomes = []

    def create(product, platforms):
        try:
            barrier.wait(timeout=10)
            _campaign(*platforms, product=product)
            outcomes.append("saved")
        except ValidationError as exc:
            outcomes.append("refused" if exc.message_dict == {"hashtag": [UNAVAILABLE]} else exc)
        except Exception as exc:  # anything else is a defect: show it in the assertion
            outcomes.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=create, args=a) for a in zip(products, asked, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(map(str, outcomes)) == ["refused", "refused", "refused", "saved"]
    assert Campaign.objects.count() == 1
    assert CampaignListing.objects.filter(platform="mastodon").count() == 1
    # The losers' rolled-back inserts left no listing behind.
    assert CampaignListing.objects.exclude(campaign__in=Campaign.objects.all()).count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_migration_lists_each_existing_campaign_on_its_platform():
    executor = MigrationExecutor(connection)
    executor.migrate([("catalog", "0007_campaign_price_includes_tax")])
    old = executor.loader.project_state([("catalog", "0007_campaign_price_includes_tax")]).apps
    merchant = old.get_model("catalog", "Merchant").objects.create(name="M", slug="m")
    product = old.get_model("catalog", "Product").objects.create(
        merchant=merchant, name="P", sku="P1"
    )
    now = timezone.now()
    campaign = old.get_model("catalog", "Campaign").objects.create(
        merchant=merchant,
        product=product,
        platform="x",
        hashtag="BuyKindleFireHD",
        hashtag_key="buykindlefirehd",
        price=Decimal("149"),
        stock_total=3,
        starts_at=now,
        ends_at=now + timedelta(days=2),
    )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    [listing] = CampaignListing.objects.filter(campaign_id=campaign.pk)
    assert (listing.platform, listing.hashtag_key) == ("x", "buykindlefirehd")
    assert (listing.starts_at, listing.ends_at) == (campaign.starts_at, campaign.ends_at)


@pytest.mark.django_db
def test_the_deciders_index_and_the_search_feed_follow_a_change_of_networks():
    campaign = _campaign("sandbox")
    now = timezone.now()
    assert "buykindlefirehd" not in campaign_indexes(platforms=["mastodon"])["mastodon"].by_key
    assert live_hashtags(platform="mastodon", now=now) == ()
    campaign_save(campaign=campaign, now=now, platforms=["sandbox", "mastodon"])
    index = campaign_indexes(platforms=["mastodon", "sandbox"])
    assert [c.pk for c in index["mastodon"].by_key["buykindlefirehd"]] == [campaign.pk]
    assert [c.pk for c in index["sandbox"].by_key["buykindlefirehd"]] == [campaign.pk]
    assert index["mastodon"].prefix_keys(now=now) == ("confirm",)
    assert live_hashtags(platform="mastodon", now=now) == ("BuyKindleFireHD",)
