"""X answering 429, 5xx and 400 to the mentions read, through the poller's real path (the
adapter, the feed's lease and cursor, the inbox, the decisions); ``responses`` plays X
(issue 10 §6). After each: nothing lost or stored twice, and the failure visible in
``pipeline_status`` while it lasts."""

import io
from datetime import timedelta

import pytest
import responses
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from orders.pipeline import stage_decide
from social.credentials import account_credentials_set
from social.models import FeedCursor, PlatformAccount, Post
from social.platforms.base import TransientError
from social.services import feed_poll

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
BRAND_ID = "783214"
MENTIONS = f"https://api.x.com/2/users/{BRAND_ID}/mentions"


@pytest.fixture
def x_account():
    account = PlatformAccount.objects.create(
        platform="x", platform_user_id=BRAND_ID, handle="HashcartDeals"
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


def _page(*ids: int) -> dict:
    return {
        "data": [
            {
                "id": str(i),
                "text": "@HashcartDeals #BuyKindleFireHD",
                "author_id": str(5000 + i % 7),
                "created_at": "2026-11-29T10:00:00.000Z",
            }
            for i in ids
        ],
        "includes": {"users": [{"id": str(5000 + n), "username": f"b{n}"} for n in range(7)]},
        "meta": {"result_count": len(ids), "newest_id": str(max(ids))},
    }


def _status() -> str:
    out = io.StringIO()
    call_command("pipeline_status", stdout=out)
    return out.getvalue()


def _poll() -> str:
    out = io.StringIO()
    call_command("poll_feeds", stdout=out, stderr=out)
    return out.getvalue()


def _stored_once_and_decided(*ids: int) -> None:
    stage_decide(now=timezone.now())
    stored = sorted(Post.objects.filter(platform="x").values_list("post_id", flat=True))
    assert stored == sorted(str(i) for i in ids)
    assert not Post.objects.filter(outcome="").exists()


@responses.activate
def test_x_answering_429_waits_for_the_reset_then_reads_everything_once(x_account):
    reset = timezone.now() + timedelta(minutes=15)
    responses.get(
        MENTIONS,
        status=429,
        json={"title": "Too Many Requests"},
        headers={"x-rate-limit-reset": str(int(reset.timestamp()))},
    )
    assert _poll().startswith("stored 0 new post(s)")
    assert "rate limited until" in _status()  # visible while it lasts
    assert _poll().startswith("stored 0 new post(s)")  # nobody asks X before its reset
    assert len(responses.calls) == 1

    responses.get(MENTIONS, json=_page(11, 12, 13))
    with time_machine.travel(reset + timedelta(seconds=1), tick=False):
        assert _poll().startswith("stored 3 new post(s)")
    assert "rate limited" not in _status()
    _stored_once_and_decided(11, 12, 13)


@responses.activate
def test_x_answering_5xx_is_recorded_released_and_read_again_without_loss(x_account):
    responses.get(MENTIONS, status=503, json={"title": "Service Unavailable"})
    with pytest.raises(TransientError):  # the beat's task retries it with backoff
        feed_poll(account_id=x_account.pk, now=timezone.now())
    assert "X answered 503" in _status()
    cursor = FeedCursor.objects.get(account=x_account)
    assert cursor.lease_until is None  # released: the retry is not locked out

    responses.get(MENTIONS, json=_page(21, 22))
    assert feed_poll(account_id=x_account.pk, now=timezone.now()).stored
    assert "X answered 503" not in _status()
    _stored_once_and_decided(21, 22)


@responses.activate
def test_x_answering_400_shows_at_once_and_releases_the_feed(x_account):
    responses.get(MENTIONS, status=400, json={"title": "Invalid Request", "detail": "bad param"})
    with pytest.raises(CommandError):  # one line per failed feed, exit status 1
        _poll()
    assert "400" in _status()
    assert FeedCursor.objects.get(account=x_account).lease_until is None

    responses.get(MENTIONS, json=_page(31))
    assert _poll().startswith("stored 1 new post(s)")
    _stored_once_and_decided(31)
