"""Every length fits (issue 10, item 3): a Mastodon account whose ``acct`` and URI are as long as
a remote server makes them goes through the normalisation, the inbox and a purchase."""

import copy
import json
import random
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import responses
from django.utils import timezone

from accounts.services import identity_link
from catalog.tests.factories import CampaignFactory
from core.lengths import fit_key
from orders.models import Order
from orders.services import posts_decide
from social.credentials import account_credentials_set
from social.models import EXTERNAL_ID_MAX_LENGTH, HANDLE_MAX_LENGTH, PlatformAccount, Post, Reply
from social.platforms.mastodon import MastodonAdapter, inbound_from_notifications
from social.services import feed_poll, inbox_post_id
from tests.shop import buyer_ready

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures"
MASTODON = "http://localhost:3000"
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def _mention(*, acct: str, uri: str, status_id: str = "117020577157693549") -> dict:
    """The recorded mention notification, from an account with this ``acct`` and ``uri``."""
    recorded = json.loads(
        (FIXTURES / "mastodon" / "test_notifications_mentions_only.json").read_text()
    )["interactions"]
    body = next(i for i in recorded if "types" in i["request"]["uri"])["response"]["body"]
    notification = copy.deepcopy(body[0])
    notification["id"] = str(int(status_id) % 1000)
    notification["status"]["id"] = status_id
    notification["status"]["created_at"] = timezone.now().isoformat()
    notification["status"]["content"] = "<p>@mastodonpy_test #BuyKindleFireHD</p>"
    # Mastodon lists the hashtags it tagged; only those count (item 1).
    notification["status"]["tags"] = [
        {"name": "BuyKindleFireHD", "url": "https://remote.example/tags/BuyKindleFireHD"}
    ]
    for account in (notification["account"], notification["status"]["account"]):
        account.update(acct=acct, uri=uri, username=acct.split("@")[0])
    return notification


def _longest(prefix: str, length: int) -> str:
    return prefix + "a" * (length - len(prefix))


LONG_URI = _longest("https://remote.example/users/", EXTERNAL_ID_MAX_LENGTH)
# ``user@domain``: Mastodon counts only ``@user`` of a mention against a status's limit.
_RANDOM = random.Random(10)
# Incompressible, as a hostile server would make them (PostgreSQL compresses repetitive text).
JAPANESE = "".join(_RANDOM.choice("電子書籍端末読取専用高速大容量軽量防水") for _ in range(200))
LONG_ACCT = (
    "buyer@"
    + ".".join(
        "".join(_RANDOM.choices(string.ascii_lowercase + string.digits, k=62)) for _ in range(32)
    )[: HANDLE_MAX_LENGTH - len("buyer@") - len(".example")]
    + ".example"
)


@pytest.fixture
def mastodon_account():
    account = PlatformAccount.objects.create(
        platform="mastodon", platform_user_id="117020565693913442", handle="mastodonpy_test"
    )
    account_credentials_set(
        account_id=account.pk, credentials={"access_token": "t", "api_base_url": MASTODON}
    )
    return account


def test_the_normalisation_keeps_a_2048_character_acct_and_uri_whole():
    (post,) = inbound_from_notifications([_mention(acct=LONG_ACCT, uri=LONG_URI)])
    assert (post.author_handle, post.author_id) == (LONG_ACCT, LONG_URI)
    assert post.hashtags == ("BuyKindleFireHD",)


@responses.activate
def test_a_longest_acct_and_uri_are_stored_and_buy(mastodon_account):
    # A Japanese name of the longest kind: with the acct, the reply is past what a B-tree
    # index entry holds (2,704 bytes), and it is still queued once.
    CampaignFactory(platform="mastodon", hashtag="BuyKindleFireHD", product__name=JAPANESE)
    buyer = buyer_ready("alice")
    identity_link(
        cardholder=buyer.cardholder,
        platform="mastodon",
        platform_user_id=LONG_URI,
        handle=LONG_ACCT,
        now=timezone.now() - timedelta(days=3),
    )
    responses.get(f"{MASTODON}/api/v1/notifications", json=[_mention(acct=LONG_ACCT, uri=LONG_URI)])

    result = feed_poll(account_id=mastodon_account.pk, now=timezone.now())

    assert result.error == ""
    assert len(result.stored) == 1
    stored = Post.objects.get(pk=result.stored[0])
    assert (stored.author_handle, stored.author_id) == (LONG_ACCT, LONG_URI)
    assert posts_decide(post_ids=result.stored, now=timezone.now())["order_created"] == 1
    order = Order.objects.get()
    assert (order.author_handle, order.author_id) == (LONG_ACCT, LONG_URI)
    request = Reply.objects.get(kind="confirmation_request").text
    assert request.startswith(f"@{LONG_ACCT} To buy {JAPANESE} for ")
    assert len(request.encode()) > 2704
    assert MastodonAdapter.fits(request)


@responses.activate
def test_ids_longer_than_the_inbox_keeps_are_cut_apart_and_handles_with_an_ellipsis(
    mastodon_account,
):
    uris = [_longest(f"https://remote.example/users/{n}/", 3000) for n in "12"]
    uris = [uri[:-1] + n for uri, n in zip(uris, "12", strict=True)]  # differ at the very end
    responses.get(
        f"{MASTODON}/api/v1/notifications",
        json=[
            # ids longer than the inbox keeps, too
            _mention(acct="x" * 3000 + "@remote.example", uri=uri, status_id="9" * 299 + str(n))
            for n, uri in enumerate(uris)
        ],
    )

    result = feed_poll(account_id=mastodon_account.pk, now=timezone.now())

    assert len(result.stored) == 2  # both found again by their cut ids, to be decided now
    rows = Post.objects.filter(pk__in=result.stored).order_by("id")  # oldest (…990) first
    assert [r.post_id for r in rows] == [inbox_post_id("9" * 299 + n) for n in "01"]
    assert [r.author_id for r in rows] == [fit_key(uri, EXTERNAL_ID_MAX_LENGTH) for uri in uris]
    assert rows[0].author_id != rows[1].author_id
    assert all(len(r.author_id) <= EXTERNAL_ID_MAX_LENGTH for r in rows)
    for row in rows:  # within the column, and within an index entry's bytes
        assert len(row.author_handle.encode()) <= HANDLE_MAX_LENGTH
        assert row.author_handle.startswith("xxx")
        assert row.author_handle.endswith("…")
