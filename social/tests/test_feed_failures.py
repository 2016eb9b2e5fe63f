"""A feed whose reads the platform refuses shows it at once (issue 10, item 5): recorded on the
feed, its lease released, in ``pipeline_status``, the admin and /healthz, and ``poll_feeds``
exits 1 with one line per failed feed. No network: ``responses`` plays X and Mastodon."""

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
import responses
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from social.admin import PlatformAccountAdmin
from social.credentials import account_credentials_set
from social.models import FeedCursor, FeedKind, PlatformAccount, Post
from social.services import feed_poll
from tests.shop import post, shop_open

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures"
BASE = "https://api.x.com"
MENTIONS = f"{BASE}/2/users/783214/mentions"
MASTODON = "http://localhost:3000"
# X's answer to a parameter it does not accept (a v2 problem body, see fixtures/x-api/SOURCES).
INVALID_REQUEST = json.loads((FIXTURES / "x-api" / "delete_error.json").read_text())


@pytest.fixture
def x_account():
    account = PlatformAccount.objects.create(
        platform="x", platform_user_id="783214", handle="Twitter"
    )
    account_credentials_set(
        account_id=account.pk,
        credentials={
            "access_token": "live-token",
            "refresh_token": "refresh-1",
            "expires_at": (timezone.now() + timedelta(hours=1)).isoformat(),
        },
    )
    return account


def _health() -> tuple[int, str]:
    response = Client().get("/healthz", {"format": "json"})
    return response.status_code, json.dumps(response.json())


def _read_once_ok(account: PlatformAccount) -> None:
    responses.get(MENTIONS, json={"meta": {"result_count": 0}})
    assert not feed_poll(account_id=account.pk, now=timezone.now()).error
    responses.reset()


@responses.activate
def test_a_refused_read_is_recorded_released_and_unhealthy_at_once(x_account):
    _read_once_ok(x_account)  # a feed read a moment ago: the lag alone is fine
    assert _health()[0] == 200
    responses.get(MENTIONS, status=400, json=INVALID_REQUEST)
    now = timezone.now()

    first = feed_poll(account_id=x_account.pk, now=now)

    cursor = FeedCursor.objects.get(account=x_account, feed=FeedKind.MENTIONS)
    assert "read refused" in first.error
    assert "Invalid Request" in first.error
    assert (cursor.lease_token, cursor.lease_until) == ("", None)
    assert cursor.failing_since == now
    assert "400" in cursor.last_error
    status, body = _health()
    assert status == 500
    assert "@Twitter (x) is failing to read its mentions feed" in body
    assert "api.twitter.com" not in body  # the platform's error text stays out of /healthz
    # The next poll asks X again (the lease was released) and fails as visibly.
    again = feed_poll(account_id=x_account.pk, now=now + timedelta(seconds=2))
    assert not again.busy
    assert "read refused" in again.error
    assert len(responses.calls) == 2
    assert FeedCursor.objects.get(pk=cursor.pk).failing_since == now  # since the first one

    out = io.StringIO()
    call_command("pipeline_status", stdout=out)
    assert f"FAILING since {now:%Y-%m-%d %H:%M:%S}" in out.getvalue()
    assert "last error: read refused: X refused: 400" in out.getvalue()
    admin_state = PlatformAccountAdmin(PlatformAccount, None).feed_state(x_account)
    assert admin_state.startswith("mentions: FAILING since")


@responses.activate
def test_a_read_that_succeeds_again_clears_the_failure(x_account):
    responses.get(MENTIONS, status=400, json=INVALID_REQUEST)
    feed_poll(account_id=x_account.pk, now=timezone.now())
    responses.replace(responses.GET, MENTIONS, json={"meta": {"result_count": 0}})
    assert not feed_poll(account_id=x_account.pk, now=timezone.now()).error
    cursor = FeedCursor.objects.get(account=x_account)
    assert (cursor.failing_since, cursor.last_error) == (None, "")
    assert _health()[0] == 200


@responses.activate
def test_poll_feeds_prints_one_line_per_failed_feed_and_exits_1(x_account, settings):
    settings.HASHCART = {**settings.HASHCART, "SANDBOX_SETTLE_MS": 0}
    shop = shop_open()
    post("alice", f"@{shop.brand.handle} #BuyKindleFireHD")
    responses.get(MENTIONS, status=400, json=INVALID_REQUEST)
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError) as failed:
        call_command("poll_feeds", stdout=out, stderr=err)

    assert failed.value.returncode == 1
    assert out.getvalue() == "stored 1 new post(s)\n"  # the other feed was read all the same
    (line,) = err.getvalue().splitlines()
    assert line.startswith("error: @Twitter (x mentions): read refused: X refused: 400")
    assert "Traceback" not in err.getvalue()
    assert Post.objects.filter(platform="sandbox").count() == 1
    # pipeline_tick goes on to the other stages, and fails at the end.
    with pytest.raises(CommandError):
        call_command("pipeline_tick", stdout=out, stderr=io.StringIO())
    assert "== expire_orders" in out.getvalue()


@responses.activate
def test_a_refused_mastodon_read_fails_the_feed_visibly():
    account = PlatformAccount.objects.create(
        platform="mastodon", platform_user_id="1", handle="brand"
    )
    account_credentials_set(
        account_id=account.pk, credentials={"access_token": "t", "api_base_url": MASTODON}
    )
    responses.get(
        f"{MASTODON}/api/v1/notifications",
        status=422,
        json={"error": "Validation failed: types is not accepted"},
    )
    result = feed_poll(account_id=account.pk, now=timezone.now())
    cursor = FeedCursor.objects.get(account=account)
    assert "read refused: Mastodon refused" in result.error
    assert cursor.failing_since is not None
    assert cursor.lease_until is None


@responses.activate
def test_a_page_without_newest_id_moves_the_cursor_to_the_greatest_id_read(x_account):
    page = {
        "data": [
            {"id": "1600000000000000009", "text": "@Twitter hi", "author_id": "7"},
            {"id": "1600000000000000010", "text": "@Twitter hello", "author_id": "7"},
            {"id": "999", "text": "@Twitter an old one", "author_id": "7"},
        ],
        "meta": {"result_count": 3},
    }
    responses.get(MENTIONS, json=page)
    feed_poll(account_id=x_account.pk, now=timezone.now())
    assert FeedCursor.objects.get(account=x_account).cursor == "1600000000000000010"
