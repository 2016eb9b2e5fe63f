"""A reply that was posted counts as posted (issue 10, item 16): when its answer was lost and the
retry is refused as a duplicate (X's 403), the reply is looked up among the brand's own recent
posts and marked sent with its id and time; X's 403 reasons are told apart. No network."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import responses
import time_machine
from django.utils import timezone

from sandbox.adapter import SandboxAdapter
from sandbox.services import sandbox_post_create, sandbox_user_ensure
from social.credentials import account_credentials_set
from social.models import PlatformAccount, Reply, ReplyPriority, ReplyStatus
from social.platforms.base import AccountAuthError, DuplicateReply, RejectedError
from social.platforms.x import XAdapter, timeline_request
from social.services import ReplyDraft, replies_queue, replies_send_due
from social.tests.factories import PostFactory

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures" / "x-api"
BASE = "https://api.x.com"
ERRORS = json.loads((FIXTURES / "synthetic_error_bodies_observed.json").read_text())
DUPLICATE = ERRORS["duplicate_content_403"]["body"]
T0 = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
PURCHASE = "1600000000000000001"
TEXT = "@alice_x To buy Kindle Fire HD for $149.00 (+tax & free shipping) post #ConfirmK7Q2M"


def spec(version: str) -> dict:
    return json.loads((FIXTURES / f"x-openapi-v{version}.json").read_text())


@pytest.fixture
def account():
    acct = PlatformAccount.objects.create(platform="x", platform_user_id="783214", handle="Twitter")
    account_credentials_set(
        account_id=acct.pk,
        credentials={
            "access_token": "live-token",
            "refresh_token": "refresh-1",
            "expires_at": (timezone.now() + timedelta(days=30)).isoformat(),
        },
    )
    return acct


def _forbidden(detail: str, problem: str = "about:blank") -> dict:
    return {"detail": detail, "type": problem, "title": "Forbidden", "status": 403}


def _send(account):
    return XAdapter().send_reply(
        account=account, in_reply_to_post_id=PURCHASE, text=TEXT, idempotency_key="reply-1"
    )


@responses.activate
@pytest.mark.parametrize(
    ("body", "error", "final"),
    [
        (DUPLICATE, DuplicateReply, False),
        (_forbidden(ERRORS["reply_to_deleted_or_invisible_403_detail"]), RejectedError, True),
        (
            _forbidden(
                "Reply to this conversation is not allowed because you have not been mentioned "
                "or otherwise engaged by the author of the post you are replying to."
            ),
            RejectedError,
            True,
        ),
        (
            _forbidden(
                "When authenticating requests to the Twitter API v2 endpoints, you must use keys "
                "and tokens from a Twitter developer App that is attached to a Project.",
                "https://api.twitter.com/2/problems/client-forbidden",
            ),
            AccountAuthError,
            False,
        ),
    ],
    ids=["duplicate", "deleted-target", "reply-not-permitted", "app-not-permitted"],
)
def test_x_403_reasons_are_told_apart(account, body, error, final):
    responses.post(f"{BASE}/2/tweets", json=body, status=403)
    with pytest.raises(error) as raised:
        _send(account)
    final_for_the_reply = isinstance(raised.value, RejectedError) and not isinstance(
        raised.value, DuplicateReply
    )
    assert final_for_the_reply == final


@pytest.mark.parametrize(("spelling", "version"), [("tweet", "2.159"), ("post", "2.167")])
def test_the_timeline_request_is_valid_for_its_specification(spelling, version):
    document = spec(version)
    for page in ("", "7140dibdnow9c7btw4"):
        request = timeline_request(user_id="783214", start_time=T0, page=page, spelling=spelling)
        operation = document["paths"][request.template][request.method.lower()]
        declared = {}
        for parameter in operation["parameters"]:
            if "$ref" in parameter:
                name = parameter["$ref"].rsplit("/", 1)[1]
                parameter = document["components"]["parameters"][name]
            declared[parameter["name"]] = parameter
        assert set(request.params) <= set(declared), set(request.params) - set(declared)
        for name, value in request.params.items():
            schema = declared[name]["schema"]
            if schema.get("type") == "array":
                allowed = set(schema["items"].get("enum", []))
                assert set(value.split(",")) <= allowed, (name, set(value.split(",")) - allowed)
        assert declared["id"]["in"] == "path"
        assert declared["start_time"]["schema"]["format"] == "date-time"


def _queue(account):
    purchase = PostFactory(account=account, platform="x", post_id=PURCHASE)
    replies_queue(
        drafts=[
            ReplyDraft(
                in_reply_to=purchase,
                kind="confirmation_request",
                text=TEXT,
                priority=ReplyPriority.CONFIRMATION_REQUEST,
            )
        ]
    )
    return Reply.objects.get()


def _timeline(posted_at: datetime) -> dict:
    """The brand's timeline as X gives it: entities escaped, replies with what they reply to."""
    return {
        "data": [
            {  # the same text to another post (X refuses that too, but it is not this reply)
                "id": "1600000000000000007",
                "text": TEXT.replace("&", "&amp;"),
                "created_at": "2026-12-01T14:59:00.000Z",
                "referenced_tweets": [{"type": "replied_to", "id": "1600000000000000003"}],
            },
            {
                "id": "1600000000000000005",
                "text": TEXT.replace("&", "&amp;"),
                "created_at": posted_at.isoformat().replace("+00:00", "Z"),
                "referenced_tweets": [{"type": "replied_to", "id": PURCHASE}],
            },
        ],
        "meta": {"result_count": 2},
    }


@responses.activate
def test_a_retry_refused_as_a_duplicate_is_found_and_marked_sent_with_its_id_and_time(account):
    with time_machine.travel(T0, tick=False):
        reply = _queue(account)
    posted_at = T0 + timedelta(seconds=3)
    # The first attempt was posted at T0 + 3 s, but its answer never came back.
    responses.post(f"{BASE}/2/tweets", body=requests.ConnectionError("reset by peer"))
    with time_machine.travel(T0 + timedelta(seconds=2), tick=False):
        replies_send_due(account_id=account.pk, now=timezone.now())
    reply.refresh_from_db()
    assert (reply.status, reply.attempts) == (ReplyStatus.QUEUED, 1)
    responses.replace(responses.POST, f"{BASE}/2/tweets", json=DUPLICATE, status=403)
    responses.get(f"{BASE}/2/users/783214/tweets", json=_timeline(posted_at))

    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        result = replies_send_due(account_id=account.pk, now=timezone.now())

    reply.refresh_from_db()
    assert (reply.status, reply.platform_reply_id) == (ReplyStatus.SENT, "1600000000000000005")
    assert reply.sent_at == posted_at  # the buyer's window starts when it was really posted
    assert [r.pk for r in result.sent] == [reply.pk]
    lookup = responses.calls[-1].request
    assert lookup.url.startswith(f"{BASE}/2/users/783214/tweets?")
    assert "start_time=2026-12-01T14%3A55%3A00Z" in lookup.url  # from before it was queued


@responses.activate
def test_a_duplicate_not_found_yet_is_retried_not_failed(account):
    reply = _queue(account)
    responses.post(f"{BASE}/2/tweets", json=DUPLICATE, status=403)
    responses.get(f"{BASE}/2/users/783214/tweets", json={"meta": {"result_count": 0}})
    replies_send_due(account_id=account.pk, now=timezone.now())
    reply.refresh_from_db()
    assert (reply.status, reply.attempts) == (ReplyStatus.QUEUED, 1)
    assert "duplicate content" in reply.last_error


@responses.activate
def test_a_reply_to_a_deleted_post_fails_for_good(account):
    reply = _queue(account)
    detail = ERRORS["reply_to_deleted_or_invisible_403_detail"]
    responses.post(f"{BASE}/2/tweets", json=_forbidden(detail), status=403)
    replies_send_due(account_id=account.pk, now=timezone.now())
    reply.refresh_from_db()
    assert reply.status == ReplyStatus.FAILED
    assert "deleted or not visible" in reply.last_error


def test_the_sandbox_refuses_a_duplicate_text_and_finds_the_reply_posted():
    brand = sandbox_user_ensure(handle="Brand")
    account = PlatformAccount.objects.create(
        platform="sandbox", platform_user_id=str(brand.pk), handle="Brand"
    )
    purchase = sandbox_post_create(handle="alice", text="@Brand #BuyThing", now=T0)
    adapter = SandboxAdapter()
    kwargs = {"account": account, "in_reply_to_post_id": str(purchase.pk), "text": "@alice hi"}
    first = adapter.send_reply(**kwargs, idempotency_key="reply-1")
    assert adapter.send_reply(**kwargs, idempotency_key="reply-1") == first  # a retry, keyed
    with pytest.raises(DuplicateReply):
        adapter.send_reply(**kwargs, idempotency_key="reply-2")
    found = adapter.find_reply(**kwargs, since=timezone.now() - timedelta(minutes=5))
    assert found is not None
    assert found.platform_id == first
    since = timezone.now() - timedelta(minutes=5)
    assert adapter.find_reply(**{**kwargs, "text": "@alice other"}, since=since) is None


# --- End to end: the buyer's on-time confirmation counts ----------------------------------------
def _mention(post_id: str, text: str, when: datetime) -> dict:
    return {
        "data": [
            {
                "id": post_id,
                "text": text,
                "author_id": "2244994945",
                "created_at": when.isoformat().replace("+00:00", "Z"),
                "edit_history_tweet_ids": [post_id],
            }
        ],
        "includes": {"users": [{"id": "2244994945", "username": "alice_x", "name": "Alice"}]},
        "meta": {"newest_id": post_id, "result_count": 1},
    }


@responses.activate
def test_a_request_posted_whose_answer_was_lost_still_lets_the_buyer_confirm_in_time(account):
    from accounts.models import SocialIdentity
    from catalog.tests.factories import CampaignFactory
    from orders.models import Order, OrderStatus
    from orders.pipeline import stage_decide, stage_expire, stage_poll, stage_send
    from social.models import Post
    from tests.shop import buyer_ready

    mentions = f"{BASE}/2/users/783214/mentions"
    CampaignFactory(platform="x", hashtag="BuyKindleFireHD", product__name="Kindle Fire HD")
    buyer = buyer_ready("alice")
    SocialIdentity.objects.filter(pk=buyer.identity.pk).update(
        platform="x", platform_user_id="2244994945", handle="alice_x"
    )
    now = timezone.now()
    responses.get(mentions, json=_mention(PURCHASE, "@Twitter #BuyKindleFireHD", now))
    responses.post(f"{BASE}/2/tweets", body=requests.ConnectionError("reset by peer"))
    stage_poll(now=now)
    stage_decide(now=now)
    stage_send(now=now)  # posted on X at `now`, but the answer was lost
    order = Order.objects.get()
    assert order.expires_at is None
    sent_text = json.loads(responses.calls[-1].request.body)["text"]
    timeline = {
        "data": [
            {
                "id": "1600000000000000002",
                "text": sent_text,
                "created_at": now.isoformat().replace("+00:00", "Z"),
                "referenced_tweets": [{"type": "replied_to", "id": PURCHASE}],
            }
        ]
    }
    responses.replace(responses.POST, f"{BASE}/2/tweets", json=DUPLICATE, status=403)
    responses.get(f"{BASE}/2/users/783214/tweets", json=timeline)
    with time_machine.travel(now + timedelta(minutes=5), tick=False):
        stage_send(now=timezone.now())
    order.refresh_from_db()
    assert order.expires_at == now + timedelta(minutes=15)  # from when it was really posted
    confirm_at = now + timedelta(minutes=14)
    code = order.confirmation_code
    responses.replace(
        responses.GET,
        mentions,
        json=_mention("1600000000000000009", f"@Twitter #Confirm{code}", confirm_at),
    )
    with time_machine.travel(confirm_at + timedelta(seconds=40), tick=False):
        stage_poll(now=timezone.now())
        stage_decide(now=timezone.now())
        stage_expire(now=timezone.now())
    assert Post.objects.get(post_id="1600000000000000009").outcome == "confirmed"
    order.refresh_from_db()
    assert order.status != OrderStatus.EXPIRED
