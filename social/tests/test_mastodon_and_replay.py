"""The Mastodon adapter on Mastodon.py's recordings, and ``replay_posts`` on every fixture
(issue 6)."""

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.tests.factories import CampaignFactory
from social.credentials import account_credentials_set
from social.models import PlatformAccount, PostKind
from social.platforms.base import RateLimited
from social.platforms.mastodon import MastodonAdapter, inbound_from_notifications
from tests.shop import BRAND, buyer_ready, shop_open

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures"
MASTODON = "http://localhost:3000"
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def interactions(name: str) -> list[dict]:
    return json.loads((FIXTURES / "mastodon" / f"{name}.json").read_text())["interactions"]


@pytest.fixture
def mastodon_account():
    account = PlatformAccount.objects.create(
        platform="mastodon", platform_user_id="117020565693913442", handle="mastodonpy_test"
    )
    account_credentials_set(
        account_id=account.pk, credentials={"access_token": "t", "api_base_url": MASTODON}
    )
    account.refresh_from_db()
    return account


# --- Mastodon ----------------------------------------------------------------------------------
def test_a_recorded_mention_is_keyed_on_the_authors_uri():
    recorded = next(
        i
        for i in interactions("test_notifications_mentions_only")
        if "types" in i["request"]["uri"]
    )
    (post,) = inbound_from_notifications(recorded["response"]["body"])
    notification = recorded["response"]["body"][0]
    assert post.author_id == notification["status"]["account"]["uri"]
    assert post.author_handle == "admin"
    assert post.text == "@mastodonpy_test hello!"
    assert post.kind == PostKind.ORIGINAL


def test_a_reblog_is_a_repost():
    recorded = interactions("test_status_reblog_unreblog")
    reblog = next(
        i["response"]["body"] for i in recorded if i["request"]["uri"].endswith("/reblog")
    )
    notification = {"id": "99", "type": "mention", "status": reblog}
    (post,) = inbound_from_notifications([notification])
    assert (post.kind, post.hashtags) == (PostKind.REPOST, ())


@responses.activate
def test_the_adapter_reads_mentions_with_min_id_and_replies_with_a_key(mastodon_account):
    recorded = next(
        i
        for i in interactions("test_notifications_mentions_only")
        if "types" in i["request"]["uri"]
    )
    url = f"{MASTODON}/api/v1/notifications"
    responses.get(url, json=recorded["response"]["body"])
    result = MastodonAdapter().fetch_mentions(
        account=mastodon_account, cursor="20", now=NOW, limit=100
    )
    assert [p.text for p in result.posts] == ["@mastodonpy_test hello!"]
    assert result.cursor == "21"
    query = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert query["min_id"] == ["20"]
    assert query["types[]"] == ["mention"]

    reply = next(
        i
        for i in interactions("test_status_reply")
        if "in_reply_to_id" in (i["request"]["body"] or "")
    )
    responses.post(f"{MASTODON}/api/v1/statuses", json=reply["response"]["body"])
    reply_id = MastodonAdapter().send_reply(
        account=mastodon_account,
        in_reply_to_post_id="117020583245459824",
        text="@mastodonpy_test_2 same!",
        idempotency_key="reply-7",
    )
    assert reply_id == str(reply["response"]["body"]["id"])
    sent = responses.calls[-1].request
    assert sent.headers["Idempotency-Key"] == "reply-7"
    assert "in_reply_to_id=117020583245459824" in sent.body


@responses.activate
def test_a_mastodon_rate_limit_is_reported_with_its_reset(mastodon_account):
    responses.get(
        f"{MASTODON}/api/v1/notifications",
        status=429,
        json={"error": "Too many requests"},
        headers={"X-RateLimit-Reset": "2026-12-01T15:05:00.000Z"},
    )
    with pytest.raises(RateLimited) as limited:
        MastodonAdapter().fetch_mentions(account=mastodon_account, cursor="", now=NOW, limit=10)
    assert limited.value.reset_at == datetime(2026, 12, 1, 15, 5, tzinfo=UTC)


# --- replay_posts ------------------------------------------------------------------------------
def replay(platform: str, path: Path) -> dict[str, int]:
    out = io.StringIO()
    call_command(
        "replay_posts", str(path), "--platform", platform, stdout=out, stderr=io.StringIO()
    )
    counts = {}
    for line in out.getvalue().splitlines()[1:]:
        outcome, count = line.strip().split(": ")
        counts[outcome] = int(count)
    return counts


def with_authors(name: str, tmp_path: Path) -> Path:
    """A copy of an X recording whose posts have an author id: Hashcart asks X for
    ``author_id`` (a post without one is malformed), the recording's client did not."""
    payload = json.loads((FIXTURES / "x-api" / f"{name}.json").read_text())
    bodies = [i["response"]["body"] for i in payload.get("interactions", []) if "response" in i]
    for body in bodies or [payload]:
        for item in body.get("data") or []:
            item.setdefault("author_id", "1000")
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(payload))
    return path


def test_replaying_x_quote_tweets_ignores_retweets_with_a_truncated_hashtag(tmp_path):
    # "#Twi…" in the retweets would be a purchase of a #Twi campaign, were they not retweets.
    CampaignFactory(platform="x", hashtag="Twi")
    CampaignFactory(platform="x", hashtag="Twitter")
    counts = replay("x", with_authors("test_client_get_quote_tweets", tmp_path))
    assert counts == {"ignored_repost": 7, "not_linked": 1, "no_campaign": 1}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("test_client_get_users_mentions", {"no_campaign": 10}),
        ("test_client_search_recent_tweets", {"no_campaign": 10}),
        ("search_tweets_query", {"no_campaign": 4}),
        ("timeline_mentions", {"not_linked": 1, "no_campaign": 4}),
    ],
)
def test_replaying_the_x_recordings(name, expected, tmp_path):
    CampaignFactory(platform="x", hashtag="VoiceMessaging")
    assert replay("x", with_authors(name, tmp_path)) == expected


def test_replaying_mastodon_notifications_and_again_decides_nothing_twice():
    path = FIXTURES / "mastodon" / "test_notifications_mentions_only.json"
    assert replay("mastodon", path) == {"no_campaign": 1}
    assert replay("mastodon", path) == {}


def test_a_file_of_the_wrong_platform_is_refused_clearly(tmp_path):
    with pytest.raises(CommandError, match="No mastodon posts"):
        replay("mastodon", FIXTURES / "mastodon" / "test_hashtag_tl.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CommandError, match="is not JSON"):
        replay("x", bad)


def test_replaying_sandbox_posts_buys_through_the_real_decision(tmp_path):
    shop_open()
    buyer = buyer_ready("alice")
    posts = [
        {"id": "9001", "handle": "alice", "author_id": str(buyer.user.pk),
         "text": f"@{BRAND} #BuyKindleFireHD"},
        {"id": "9002", "handle": "bob", "text": f"RT @alice: @{BRAND} #BuyKindleFireHD"},
        {"id": "9003", "handle": "carol", "text": f"@{BRAND} hello"},
    ]  # fmt: skip
    path = tmp_path / "sandbox.json"
    path.write_text(json.dumps(posts))
    assert replay("sandbox", path) == {"order_created": 1, "ignored_repost": 1, "no_campaign": 1}
