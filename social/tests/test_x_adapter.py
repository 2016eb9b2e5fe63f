"""The X adapter on recorded payloads, its requests against X's OpenAPI specifications, rate
limits and the token refresh (issue 6). No network: ``responses`` plays X."""

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
import time_machine
from django.db import connection
from django.utils import timezone

from social.credentials import account_credentials_set, credentials_decrypt
from social.models import PlatformAccount, PostKind
from social.platforms.base import RateLimited, RejectedError, TransientError, UsageCapped
from social.platforms.x import (
    XAdapter,
    mentions_request,
    reply_request,
    search_queries,
    search_request,
)
from social.platforms.x_posts import inbound_from_page

FIXTURES = Path(__file__).parent / "fixtures" / "x-api"
BASE = "https://api.x.com"
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def recorded(name: str) -> dict:
    """The response body of a recorded interaction (tweepy's cassettes, decoded)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())["interactions"][0]["response"]


def authored(body: dict) -> dict:
    """``body`` with an author id on each post: Hashcart asks X for ``author_id`` (a post without
    one is malformed), tweepy's recordings did not."""
    for item in body.get("data") or []:
        item.setdefault("author_id", "1000")
    return body


def spec(version: str) -> dict:
    return json.loads((FIXTURES / f"x-openapi-v{version}.json").read_text())


@pytest.fixture
def account(db):
    acct = PlatformAccount.objects.create(platform="x", platform_user_id="783214", handle="Twitter")
    account_credentials_set(
        account_id=acct.pk,
        credentials={
            "access_token": "live-token",
            "refresh_token": "refresh-1",
            "expires_at": (timezone.now() + timedelta(hours=1)).isoformat(),
        },
    )
    acct.refresh_from_db()
    return acct


# --- Recorded payloads -----------------------------------------------------------------------
@responses.activate
def test_the_recorded_mentions_replay_through_the_adapter(account):
    body = recorded("test_client_get_users_mentions")["body"]
    url = f"{BASE}/2/users/783214/mentions"
    responses.get(url, json=body)
    responses.get(url, json={"meta": {"result_count": 0}})  # the page after next_token
    result = XAdapter().fetch_mentions(account=account, cursor="", now=NOW, limit=500)
    assert len(result.posts) == 10
    assert result.cursor == body["meta"]["newest_id"]  # the first page's, after every page
    assert [p.post_id for p in result.posts] == sorted(
        (d["id"] for d in body["data"]), key=lambda i: (len(i), i)
    )
    first, second = responses.calls
    assert "pagination_token" not in first.request.url
    assert parse_qs(urlsplit(second.request.url).query)["pagination_token"] == [
        body["meta"]["next_token"]
    ]
    assert first.request.headers["Authorization"] == "Bearer live-token"


def test_retweets_carrying_rt_text_and_a_truncated_hashtag_are_reposts():
    body = authored(recorded("test_client_get_quote_tweets")["body"])
    posts = inbound_from_page(body, fetched_at=NOW)
    retweets = [p for p in posts if p.text.startswith("RT @TwitterAPI")]
    assert retweets
    assert {p.kind for p in retweets} == {PostKind.REPOST}
    assert all(p.hashtags == () for p in retweets)


def test_a_search_page_with_expansions_gives_authors_replies_and_hashtags():
    body = json.loads((FIXTURES / "search_tweets_query.json").read_text())
    posts = inbound_from_page(body, fetched_at=NOW)
    by_id = {p.post_id: p for p in posts}
    item = body["data"][0]
    post = by_id[item["id"]]
    users = {u["id"]: u["username"] for u in body["includes"]["users"]}
    assert post.author_handle == users[item["author_id"]]
    assert post.kind == PostKind.REPLY
    assert post.created_at == datetime.fromisoformat(item["created_at"].replace("Z", "+00:00"))


def _post_spelling(value):
    """A response rewritten in X's new spelling (referenced_posts, edit_history_post_ids)."""
    text = json.dumps(value)
    for old, new in (
        ("referenced_tweets", "referenced_posts"),
        ("edit_history_tweet_ids", "edit_history_post_ids"),
        ('"tweets"', '"posts"'),
    ):
        text = text.replace(old, new)
    return json.loads(text)


@pytest.mark.parametrize(
    "name",
    ["test_client_get_users_mentions", "test_client_get_quote_tweets", "search_tweets_query"],
)
def test_both_spellings_read_the_same(name):
    path = FIXTURES / f"{name}.json"
    data = json.loads(path.read_text())
    body = data["interactions"][0]["response"]["body"] if "interactions" in data else data
    old = inbound_from_page(body, fetched_at=NOW)
    new = inbound_from_page(_post_spelling(body), fetched_at=NOW)

    def strip(posts):
        return [(p.post_id, p.root_id, p.kind, p.hashtags, p.author_handle) for p in posts]

    assert strip(old) == strip(new)


def test_an_edit_has_its_first_version_as_root():
    body = {
        "data": [
            {
                "id": "20",
                "author_id": "7",
                "text": "@brand #BuyThing",
                "edit_history_post_ids": ["10", "20"],
            },
        ]
    }
    (post,) = inbound_from_page(body, fetched_at=NOW)
    assert (post.post_id, post.root_id) == ("20", "10")


def test_a_quote_of_someone_elses_purchase_post_carries_its_hashtags_apart():
    body = {
        "data": [
            {
                "id": "30",
                "text": "look at this",
                "author_id": "7",
                "referenced_tweets": [{"type": "quoted", "id": "29"}],
            }
        ],
        "includes": {
            "tweets": [{"id": "29", "text": "@brand #BuyKindleFireHD"}],
            "users": [{"id": "7", "username": "eve"}],
        },
    }
    (post,) = inbound_from_page(body, fetched_at=NOW)
    assert (post.kind, post.hashtags, post.quoted_hashtags) == (
        PostKind.QUOTE,
        (),
        ("BuyKindleFireHD",),
    )


# --- Requests against X's OpenAPI specifications ---------------------------------------------
def _operation(document: dict, template: str, method: str) -> dict:
    operation = document["paths"][template][method.lower()]
    return operation


def _parameters(document: dict, operation: dict) -> dict[str, dict]:
    found = {}
    for parameter in operation.get("parameters", []):
        if "$ref" in parameter:
            parameter = document["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
        found[parameter["name"]] = parameter
    return found


@pytest.mark.parametrize(("spelling", "version"), [("tweet", "2.159"), ("post", "2.167")])
def test_the_mentions_request_is_valid_for_its_specification(spelling, version):
    document = spec(version)
    for page in ("", "7140dibdnow9c7btw4"):
        request = mentions_request(
            user_id="783214", since_id="1578516", page=page, spelling=spelling
        )
        operation = _operation(document, request.template, request.method)
        declared = _parameters(document, operation)
        assert set(request.params) <= set(declared), set(request.params) - set(declared)
        for name, value in request.params.items():
            schema = declared[name]["schema"]
            if schema.get("type") == "array":
                allowed = set(schema["items"].get("enum", []))
                assert set(value.split(",")) <= allowed, (name, set(value.split(",")) - allowed)
        assert declared["id"]["in"] == "path"


@pytest.mark.parametrize("version", ["2.159", "2.167"])
def test_the_reply_request_is_valid_for_both_specifications(version):
    document = spec(version)
    request = reply_request(in_reply_to="1578516295611748353", text="@alice Thanks!")
    operation = _operation(document, request.template, request.method)
    reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body_schema = document["components"]["schemas"][reference.rsplit("/", 1)[1]]
    assert set(request.json) <= set(body_schema["properties"])
    reply = body_schema["properties"]["reply"]
    if "$ref" in reply:
        reply = document["components"]["schemas"][reply["$ref"].rsplit("/", 1)[1]]
    assert set(request.json["reply"]) == set(reply["required"])


# --- Replies, errors and rate limits ------------------------------------------------------------
@responses.activate
def test_a_reply_is_posted_and_a_duplicate_is_final(account):
    created = recorded("test_client_create_and_delete_tweet")
    responses.post(f"{BASE}/2/tweets", json=created["body"], status=created["status"])
    reply_id = XAdapter().send_reply(
        account=account, in_reply_to_post_id="1", text="@alice hi", idempotency_key="reply-1"
    )
    assert reply_id == created["body"]["data"]["id"]
    assert json.loads(responses.calls[0].request.body) == {
        "text": "@alice hi",
        "reply": {"in_reply_to_tweet_id": "1"},
    }
    errors = json.loads((FIXTURES / "synthetic_error_bodies_observed.json").read_text())
    duplicate = errors["duplicate_content_403"]
    responses.post(f"{BASE}/2/tweets", json=duplicate["body"], status=403)
    with pytest.raises(RejectedError, match="duplicate content"):
        XAdapter().send_reply(
            account=account, in_reply_to_post_id="1", text="@alice hi", idempotency_key="r-2"
        )


@responses.activate
def test_no_request_is_sent_before_the_rate_limit_resets(account):
    errors = json.loads((FIXTURES / "synthetic_error_bodies_observed.json").read_text())
    reset = int((timezone.now() + timedelta(minutes=7)).timestamp())
    url = f"{BASE}/2/users/783214/mentions"
    responses.get(
        url,
        json=errors["rate_limited_429"]["body"],
        status=429,
        headers={"x-rate-limit-reset": str(reset)},
    )
    with pytest.raises(RateLimited) as first:
        XAdapter().fetch_mentions(account=account, cursor="", now=NOW, limit=100)
    assert int(first.value.reset_at.timestamp()) == reset
    with pytest.raises(RateLimited):
        XAdapter().fetch_mentions(account=account, cursor="", now=NOW, limit=100)
    assert len(responses.calls) == 1  # the second read sent nothing
    responses.replace(responses.GET, url, json={"meta": {"result_count": 0}})
    with time_machine.travel(datetime.fromtimestamp(reset + 2, tz=UTC)):
        XAdapter().fetch_mentions(account=account, cursor="", now=NOW, limit=100)
    assert len(responses.calls) == 2


@responses.activate
def test_a_usage_cap_stops_and_server_errors_are_transient(account):
    errors = json.loads((FIXTURES / "synthetic_error_bodies_observed.json").read_text())
    url = f"{BASE}/2/users/783214/mentions"
    responses.get(url, json=errors["usage_capped_429"]["body"], status=429)
    with pytest.raises(UsageCapped):
        XAdapter().fetch_mentions(account=account, cursor="", now=NOW, limit=100)
    responses.replace(responses.GET, url, status=503, body="upstream timeout")
    with pytest.raises(TransientError):
        XAdapter().fetch_mentions(account=account, cursor="", now=NOW, limit=100)


def test_credentials_are_encrypted_at_rest(account):
    stored = PlatformAccount.objects.get(pk=account.pk).credentials_encrypted
    assert "live-token" not in stored
    assert "refresh-1" not in stored
    assert credentials_decrypt(stored)["access_token"] == "live-token"


# --- The token refresh race ------------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_callers_with_an_expired_token_refresh_it_once():
    from social.platforms.x_auth import x_access_token

    acct = PlatformAccount.objects.create(platform="x", platform_user_id="1", handle="Brand")
    account_credentials_set(
        account_id=acct.pk,
        credentials={
            "access_token": "old",
            "refresh_token": "single-use",
            "expires_at": (timezone.now() - timedelta(minutes=1)).isoformat(),
        },
    )
    refreshes: list[str] = []

    def token_endpoint(request):
        form = parse_qs(request.body)
        refreshes.append(form["refresh_token"][0])
        if form["refresh_token"] != ["single-use"]:
            return 400, {}, '{"error": "invalid_request"}'  # X burns used refresh tokens
        body = {"access_token": "new", "refresh_token": "next", "expires_in": 7200}
        return 200, {}, json.dumps(body)

    barrier = threading.Barrier(2)
    tokens: list[str] = []
    errors: list[BaseException] = []

    def caller() -> None:
        import requests

        try:
            barrier.wait(timeout=10)
            tokens.append(
                x_access_token(account_id=acct.pk, now=timezone.now(), session=requests.Session())
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    with responses.RequestsMock() as mocked:
        mocked.add_callback(responses.POST, f"{BASE}/2/oauth2/token", callback=token_endpoint)
        threads = [threading.Thread(target=caller) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    assert refreshes == ["single-use"]
    assert tokens == ["new", "new"]
    stored = credentials_decrypt(PlatformAccount.objects.get(pk=acct.pk).credentials_encrypted)
    assert stored["refresh_token"] == "next"


# --- The recent-search feed ---------------------------------------------------------------------
def test_search_queries_exclude_retweets_and_split_at_512_characters():
    tags = tuple(f"BuyProductNumber{n:03d}" for n in range(60))
    queries = search_queries(tags)
    assert len(queries) > 1
    assert all(len(q) <= 512 for q in queries)
    assert all(q.endswith(" -is:retweet") for q in queries)
    covered = {t.lstrip("#") for q in queries for t in q[1 : q.index(")")].split(" OR ")}
    assert covered == set(tags)
    assert search_queries(("BuyKindleFireHD",)) == ["(#BuyKindleFireHD) -is:retweet"]
    assert search_queries(()) == []


@pytest.mark.parametrize(("spelling", "version"), [("tweet", "2.159"), ("post", "2.167")])
def test_the_search_request_is_valid_for_its_specification(spelling, version):
    document = spec(version)
    request = search_request(
        query="(#BuyKindleFireHD) -is:retweet",
        since_id="1",
        page="b26v89c19zqg8o3f",
        spelling=spelling,
    )
    operation = _operation(document, request.template, request.method)
    declared = _parameters(document, operation)
    assert set(request.params) <= set(declared), set(request.params) - set(declared)
    assert len(request.params["query"]) <= declared["query"]["schema"]["maxLength"]
    for name, value in request.params.items():
        schema = declared[name]["schema"]
        if schema.get("type") == "array":
            assert set(value.split(",")) <= set(schema["items"].get("enum", []))


@responses.activate
def test_the_recorded_search_feeds_the_inbox_through_the_poller(account, settings):
    from social.models import FeedCursor, FeedKind, Post
    from social.services import feed_poll

    body = authored(recorded("test_client_search_recent_tweets")["body"])
    url = f"{BASE}/2/tweets/search/recent"
    responses.get(url, json=body)
    responses.get(url, json={"meta": {"result_count": 0}})
    result = feed_poll(
        account_id=account.pk, now=NOW, feed=FeedKind.SEARCH, hashtags=("BuyKindleFireHD",)
    )
    assert len(result.stored) == len(body["data"])
    cursor = FeedCursor.objects.get(account=account, feed=FeedKind.SEARCH)
    assert cursor.cursor == body["meta"]["newest_id"]
    query = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert query["query"] == ["(#BuyKindleFireHD) -is:retweet"]
    assert Post.objects.filter(platform="x").count() == len(body["data"])


# --- A purchase on X, end to end through the pipeline -------------------------------------------
@responses.activate
def test_a_purchase_posted_on_x_is_read_decided_and_answered_on_x(account):
    from accounts.models import SocialIdentity
    from catalog.tests.factories import CampaignFactory
    from orders.models import Order
    from orders.pipeline import stage_decide, stage_poll, stage_send
    from tests.shop import buyer_ready

    CampaignFactory(platform="x", hashtag="BuyKindleFireHD", product__name="Kindle Fire HD")
    buyer = buyer_ready("alice")
    SocialIdentity.objects.filter(pk=buyer.identity.pk).update(
        platform="x", platform_user_id="2244994945", handle="alice_x"
    )
    now = timezone.now()
    page = {
        "data": [
            {
                "id": "1600000000000000001",
                "text": "@Twitter #BuyKindleFireHD",
                "author_id": "2244994945",
                "created_at": now.isoformat().replace("+00:00", "Z"),
                "edit_history_tweet_ids": ["1600000000000000001"],
            }
        ],
        "includes": {"users": [{"id": "2244994945", "username": "alice_x", "name": "Alice"}]},
        "meta": {"newest_id": "1600000000000000001", "result_count": 1},
    }
    responses.get(f"{BASE}/2/users/783214/mentions", json=page)
    responses.post(f"{BASE}/2/tweets", json={"data": {"id": "1600000000000000002", "text": "x"}})
    stage_poll(now=now)
    stage_decide(now=now)
    stage_send(now=now)
    order = Order.objects.get()
    assert (order.platform, order.author_handle) == ("x", "alice_x")
    reply = json.loads(responses.calls[-1].request.body)
    assert reply["reply"] == {"in_reply_to_tweet_id": "1600000000000000001"}
    assert f"#Confirm{order.confirmation_code}" in reply["text"]
    assert reply["text"].startswith("@alice_x ")


# --- Authorisation failures are the account's, not any one reply's -------------------------------
@responses.activate
def test_a_revoked_token_holds_replies_and_the_feed_instead_of_failing_them(account):
    from social.models import FeedCursor, Reply, ReplyPriority, ReplyStatus
    from social.services import ReplyDraft, feed_poll, replies_queue, replies_send_due
    from social.tests.factories import PostFactory

    responses.post(f"{BASE}/2/tweets", status=401, json={"title": "Unauthorized"})
    responses.get(f"{BASE}/2/users/783214/mentions", status=401, json={"title": "Unauthorized"})
    post = PostFactory(account=account, platform="x")
    replies_queue(
        drafts=[
            ReplyDraft(
                in_reply_to=post,
                kind="confirmation_request",
                text="@alice post #ConfirmABCDE",
                priority=ReplyPriority.CONFIRMATION_REQUEST,
            )
        ]
    )
    now = timezone.now()
    result = replies_send_due(account_id=account.pk, now=now)
    reply = Reply.objects.get()
    assert (reply.status, reply.attempts) == (ReplyStatus.QUEUED, 0)
    assert reply.next_attempt_at > now
    assert result.sent == []
    polled = feed_poll(account_id=account.pk, now=now)
    assert "refused the account's token" in polled.error
    assert FeedCursor.objects.get(account=account).lease_until > now
    assert "Unauthorized" in PlatformAccount.objects.get(pk=account.pk).last_error


@responses.activate
def test_a_confidential_client_refreshes_with_basic_auth(account, settings):
    import base64

    from social.platforms.x_auth import x_access_token

    settings.SOCIALACCOUNT_PROVIDERS = {
        "twitter_oauth2": {"APPS": [{"client_id": "cid", "secret": "csecret"}]}
    }
    account_credentials_set(
        account_id=account.pk,
        credentials={"refresh_token": "r1", "expires_at": "2000-01-01T00:00:00+00:00"},
    )
    responses.post(
        f"{BASE}/2/oauth2/token",
        json={"access_token": "fresh", "refresh_token": "r2", "expires_in": 7200},
    )
    import requests

    assert x_access_token(account_id=account.pk, now=timezone.now(), session=requests.Session())
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"cid:csecret").decode()
    assert "client_id" not in parse_qs(sent.body)
