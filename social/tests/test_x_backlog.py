"""A backlog never stops an X feed (issue 10, item 6): more posts than one read takes are read
over several reads, each committed with its posts, paging back with ``until_id``; the cursor
moves to the newest post, and the high-water mark past what was read, only once everything
down to the old cursor is read. No network: a fake X serves pages (``responses`` callback)."""

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.utils import timezone

from social.credentials import account_credentials_set
from social.models import FeedCursor, FeedKind, PlatformAccount, Post
from social.platforms.x import ReadProgress
from social.services import feed_poll

pytestmark = pytest.mark.django_db
BASE = "https://api.x.com"
SEARCH = f"{BASE}/2/tweets/search/recent"
MENTIONS = f"{BASE}/2/users/783214/mentions"
FIRST_ID = 1_600_000_000_000_000_000
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class FakeX:
    """X's paging as documented: newest first, ``since_id`` < id < ``until_id``, pages of
    ``max_results`` chained by an opaque token (``next_token`` in ``meta``; sent back as
    ``next_token`` to search, ``pagination_token`` to mentions)."""

    def __init__(self, count: int) -> None:
        self.ids = list(range(FIRST_ID + 1, FIRST_ID + count + 1))
        self.requests: list[dict[str, list[str]]] = []

    def add(self, count: int) -> None:
        self.ids.extend(range(self.ids[-1] + 1, self.ids[-1] + count + 1))

    def page(self, request):
        query = parse_qs(urlsplit(request.url).query)
        self.requests.append(query)
        since = int(query.get("since_id", ["0"])[0])
        until = int(query.get("until_id", [str(10**20)])[0])
        token = query.get("next_token", query.get("pagination_token", ["0"]))[0]
        offset, size = int(token.removeprefix("tok")), int(query["max_results"][0])
        matching = [i for i in reversed(self.ids) if since < i < until]
        page = matching[offset : offset + size]
        meta: dict[str, object] = {"result_count": len(page)}
        if page:
            meta |= {"newest_id": str(page[0]), "oldest_id": str(page[-1])}
        if offset + size < len(matching):
            meta["next_token"] = f"tok{offset + size}"
        data = [
            {
                "id": str(i),
                "text": f"@Twitter #BuyKindleFireHD {i - FIRST_ID}",
                "author_id": "7",
                "created_at": "2026-12-01T11:00:00.000Z",
                "edit_history_tweet_ids": [str(i)],
            }
            for i in page
        ]
        return 200, {}, json.dumps({"data": data, "meta": meta})


@pytest.fixture
def x_account():
    account = PlatformAccount.objects.create(
        platform="x", platform_user_id="783214", handle="Twitter", feed_mode="search"
    )
    account_credentials_set(
        account_id=account.pk,
        credentials={
            "access_token": "live-token",
            "refresh_token": "refresh-1",
            "expires_at": (timezone.now() + timedelta(days=30)).isoformat(),
        },
    )
    return account


def _poll(account, feed, now, hashtags=("BuyKindleFireHD",)):
    return feed_poll(account_id=account.pk, now=now, feed=feed, hashtags=hashtags)


@responses.activate
def test_a_backlog_of_20000_search_posts_is_read_in_full_over_several_polls(x_account, settings):
    fake = FakeX(20_000)
    responses.add_callback(responses.GET, SEARCH, callback=fake.page)
    before = T0 - timedelta(hours=1)
    FeedCursor.objects.create(
        account=x_account, feed=FeedKind.SEARCH, cursor=str(FIRST_ID), high_water_mark=before
    )
    polls, result = 1, _poll(x_account, FeedKind.SEARCH, T0)
    cursor = FeedCursor.objects.get(account=x_account, feed=FeedKind.SEARCH)
    # Part-way: what was read is stored with the round's progress, and the mark has not moved
    # (older posts of the backlog are not read yet; pending orders expire behind the mark).
    assert result.more
    assert len(result.stored) == settings.HASHCART["FEED_PAGE_SIZE"]
    assert ReadProgress.decode(cursor.cursor).since == str(FIRST_ID)
    assert cursor.high_water_mark == before
    while result.more and polls < 1000:
        result = _poll(x_account, FeedKind.SEARCH, T0 + timedelta(seconds=polls))
        polls += 1

    cursor = FeedCursor.objects.get(account=x_account, feed=FeedKind.SEARCH)
    assert Post.objects.filter(platform="x").count() == 20_000
    assert cursor.cursor == str(FIRST_ID + 20_000)
    assert cursor.high_water_mark == T0 - timedelta(seconds=settings.X_INDEX_DELAY_SECONDS)
    assert polls == 20_000 // settings.HASHCART["FEED_PAGE_SIZE"]
    resumed = [q for q in fake.requests if "until_id" in q]
    assert resumed  # later reads page on back from the oldest post read
    assert all(q["since_id"] == [str(FIRST_ID)] for q in fake.requests)


@responses.activate
def test_posts_newer_than_a_round_are_read_by_the_next_one(x_account, settings):
    settings.HASHCART = {**settings.HASHCART, "FEED_PAGE_SIZE": 200}
    fake = FakeX(1_000)
    responses.add_callback(responses.GET, SEARCH, callback=fake.page)
    FeedCursor.objects.create(account=x_account, feed=FeedKind.SEARCH, cursor=str(FIRST_ID))
    assert _poll(x_account, FeedKind.SEARCH, T0).more
    fake.add(150)  # posted while the round reads its backlog
    later = T0 + timedelta(minutes=1)
    while _poll(x_account, FeedKind.SEARCH, later).more:
        pass
    cursor = FeedCursor.objects.get(account=x_account, feed=FeedKind.SEARCH)
    # The round covered what was there when it began, and the mark says no more than that.
    assert cursor.cursor == str(FIRST_ID + 1_000)
    assert cursor.high_water_mark == T0 - timedelta(seconds=settings.X_INDEX_DELAY_SECONDS)
    while _poll(x_account, FeedKind.SEARCH, later + timedelta(minutes=1)).more:
        pass
    assert Post.objects.filter(platform="x").count() == 1_150
    assert FeedCursor.objects.get(pk=cursor.pk).cursor == str(FIRST_ID + 1_150)


@responses.activate
def test_a_round_reads_every_query_again_when_the_live_hashtags_change(x_account, settings):
    settings.HASHCART = {**settings.HASHCART, "FEED_PAGE_SIZE": 200}
    fake = FakeX(500)
    responses.add_callback(responses.GET, SEARCH, callback=fake.page)
    FeedCursor.objects.create(account=x_account, feed=FeedKind.SEARCH, cursor=str(FIRST_ID))
    assert _poll(x_account, FeedKind.SEARCH, T0).more
    hashtags = ("BuyKindleFireHD", "BuyXbox360Bundle")  # a campaign went live meanwhile
    while _poll(x_account, FeedKind.SEARCH, T0, hashtags=hashtags).more:
        pass
    assert Post.objects.filter(platform="x").count() == 500
    assert FeedCursor.objects.get(account=x_account).cursor == str(FIRST_ID + 500)
    assert "#BuyXbox360Bundle" in fake.requests[-1]["query"][0]


@responses.activate
def test_a_mentions_backlog_beyond_fifty_pages_is_read_in_full(x_account, settings):
    fake = FakeX(6_000)
    responses.add_callback(responses.GET, MENTIONS, callback=fake.page)
    FeedCursor.objects.create(account=x_account, feed=FeedKind.MENTIONS, cursor=str(FIRST_ID))
    polls = 0
    while _poll(x_account, FeedKind.MENTIONS, T0, hashtags=()).more:
        polls += 1
        assert polls < 100
    assert Post.objects.filter(platform="x").count() == 6_000
    assert FeedCursor.objects.get(account=x_account).cursor == str(FIRST_ID + 6_000)
    assert any("pagination_token" in q for q in fake.requests)
