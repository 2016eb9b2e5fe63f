"""One offer on every network (issue 13, item 7): a campaign on the sandbox and Mastodon sells
one stock pool to buyers posting on either, through the real decider and reply sender."""

import itertools
from datetime import timedelta
from decimal import Decimal
from typing import cast

import pytest
import responses
from django.utils import timezone

from accounts.services import identity_link
from catalog.models import Campaign, Product
from catalog.services import campaign_save
from catalog.tests.factories import ProductFactory
from orders.models import Notification, Order, OrderStatus
from orders.pipeline import stage_decide
from social.credentials import account_credentials_set
from social.models import PlatformAccount, Post, Reply
from social.platforms.base import InboundPost
from social.services import inbox_store
from tests.shop import BRAND, buyer_ready, code_in, post, replies_to, tick

pytestmark = pytest.mark.django_db
MASTODON = "http://localhost:3000"
TAG = "BuyKindleFireHD"


@pytest.fixture
def mastodon():
    """The brand's Mastodon account, its server answering every reply with a new status id."""
    account = PlatformAccount.objects.create(
        platform="mastodon", platform_user_id="https://m.example/users/hashcart", handle="hc"
    )
    account_credentials_set(
        account_id=account.pk, credentials={"access_token": "t", "api_base_url": MASTODON}
    )
    ids = itertools.count(1000)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as server:
        server.get(f"{MASTODON}/api/v1/notifications", json=[])
        server.add_callback(
            responses.POST,
            f"{MASTODON}/api/v1/statuses",
            callback=lambda request: (200, {}, f'{{"id": "{next(ids)}"}}'),
            content_type="application/json",
        )
        yield account


def campaign_on(*platforms: str, stock: int, **values: object) -> Campaign:
    now = timezone.now()
    return campaign_save(
        campaign=Campaign(
            product=cast(Product, ProductFactory(name="Kindle Fire HD")),
            hashtag=TAG,
            price=Decimal("149.00"),
            stock_total=stock,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(days=3),
            **values,
        ),
        now=now,
        platforms=list(platforms),
    )


def on_mastodon(account: PlatformAccount, handle: str, text: str) -> Post:
    """A mention of the brand on Mastodon by ``handle`` (keyed on its account URI), stored in
    the inbox as the poller would."""
    n = Post.objects.count() + 1
    inbox_store(
        account=account,
        posts=[
            InboundPost(
                platform="mastodon",
                post_id=f"m{n}",
                root_id=f"m{n}",
                author_id=f"https://m.example/users/{handle}",
                author_handle=handle,
                text=text,
                hashtags=tuple(w[1:] for w in text.split() if w.startswith("#")),
                kind="original",
                created_at=timezone.now(),
            )
        ],
    )
    return Post.objects.get(platform="mastodon", post_id=f"m{n}")


def link_mastodon(buyer, handle: str) -> None:
    identity_link(
        cardholder=buyer.cardholder,
        platform="mastodon",
        platform_user_id=f"https://m.example/users/{handle}",
        handle=handle,
        now=timezone.now() - timedelta(days=3),
    )


def mastodon_replies(post: Post) -> list[Reply]:
    return list(Reply.objects.filter(in_reply_to=post).order_by("id"))


def test_one_stock_pool_sells_to_buyers_on_both_networks_and_each_confirms_where_they_posted(
    mastodon,
):
    from tests.shop import shop_open  # the sandbox brand account, and an unrelated campaign

    shop_open(hashtag="BuyOtherThing")
    campaign = campaign_on("sandbox", "mastodon", stock=2)
    buyer_ready("alice")
    link_mastodon(buyer_ready("bob"), "bob")
    buyer_ready("carol")

    post("alice", f"@{BRAND} #{TAG}")
    bobs = on_mastodon(mastodon, "bob", f"@hc #{TAG}")
    tick()

    # Alice is answered on the sandbox, Bob on Mastodon: one unit each from one pool.
    alice = Order.objects.get(author_handle="alice")
    bob = Order.objects.get(author_handle="bob")
    assert (alice.platform, bob.platform) == ("sandbox", "mastodon")
    assert alice.campaign_id == bob.campaign_id == campaign.pk
    campaign.refresh_from_db()
    assert campaign.stock_reserved == 2
    [request] = mastodon_replies(bobs)
    assert request.account_id == mastodon.pk
    assert request.sent_at is not None
    assert f"#Confirm{bob.confirmation_code}" in request.text

    # The pool is empty for a third buyer, whatever network: she waits for a unit.
    post("carol", f"@{BRAND} #{TAG}")
    tick()
    assert Post.objects.get(author_handle="carol", platform="sandbox").outcome == "waitlisted"

    # The confirmation prefix works on both networks.
    post("alice", f"@{BRAND} #Confirm{code_in(replies_to('alice')[-1])}")
    on_mastodon(mastodon, "bob", f"@hc #Confirm{bob.confirmation_code}")
    tick()
    tick()
    alice.refresh_from_db()
    bob.refresh_from_db()
    assert (alice.status, bob.status) == (OrderStatus.PAID, OrderStatus.PAID)


def test_the_per_buyer_limit_counts_one_cardholders_orders_on_every_network(mastodon):
    from tests.shop import shop_open

    shop_open(hashtag="BuyOtherThing")
    campaign_on("sandbox", "mastodon", stock=5)
    dana = buyer_ready("dana")
    link_mastodon(dana, "dana_m")
    link_mastodon(buyer_ready("erin"), "erin")

    post("dana", f"@{BRAND} #{TAG}")
    tick()
    again = on_mastodon(mastodon, "dana_m", f"@hc #{TAG}")
    erins = on_mastodon(mastodon, "erin", f"@hc #{TAG}")
    stage_decide(now=timezone.now())

    # Dana's pending sandbox order makes her Mastodon post a duplicate: one cardholder, one
    # campaign, whatever network; Erin, another cardholder, buys.
    again.refresh_from_db()
    erins.refresh_from_db()
    assert (again.outcome, erins.outcome) == ("duplicate", "order_created")
    assert Order.objects.filter(cardholder=dana.cardholder).count() == 1

    # Once confirmed, her one unit is the most she may hold: blocked on Mastodon too.
    post("dana", f"@{BRAND} #Confirm{code_in(replies_to('dana')[-1])}")
    tick()
    assert Order.objects.get(cardholder=dana.cardholder).status == OrderStatus.PAID
    later = on_mastodon(mastodon, "dana_m", f"@hc #{TAG} please")
    stage_decide(now=timezone.now())
    later.refresh_from_db()
    assert later.outcome == "blocked"
    reason = Notification.objects.get(cardholder=dana.cardholder, kind="blocked").body
    assert "the most units of this offer allowed per buyer" in reason
    assert Order.objects.filter(cardholder=dana.cardholder).count() == 1


def test_a_post_on_a_network_the_campaign_is_not_on_finds_no_campaign(mastodon):
    from tests.shop import shop_open

    shop_open(hashtag="BuyOtherThing")
    campaign_on("sandbox", stock=5)
    link_mastodon(buyer_ready("bob"), "bob")
    bobs = on_mastodon(mastodon, "bob", f"@hc #{TAG}")
    stage_decide(now=timezone.now())
    bobs.refresh_from_db()
    assert bobs.outcome == "no_campaign"
