"""The poller (one per feed, cursor with the posts) and the reply outbox (priorities, rate
budget, no identical texts, retries), against the sandbox and a scripted adapter."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from sandbox.services import sandbox_post_create, sandbox_user_ensure
from social.models import FeedCursor, PlatformAccount, Post, Reply, ReplyPriority, ReplyStatus
from social.platforms.base import (
    FetchResult,
    InboundPost,
    PlatformAdapter,
    RateLimited,
    RejectedError,
    TransientError,
    UsageCapped,
)
from social.services import ReplyDraft, feed_poll, replies_queue, replies_send_due
from social.tests.factories import PostFactory

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=ZoneInfo("UTC"))


class Scripted(PlatformAdapter):
    """An adapter whose next answers the test sets."""

    platform = "scripted"
    fetches: list = []
    sends: list = []
    sent: list = []

    def fetch_mentions(self, *, account, cursor, now, limit):
        answer = Scripted.fetches.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def send_reply(self, *, account, in_reply_to_post_id, text, idempotency_key):
        answer = Scripted.sends.pop(0) if Scripted.sends else "ok"
        if isinstance(answer, Exception):
            raise answer
        Scripted.sent.append((text, idempotency_key))
        return f"r{len(Scripted.sent)}"


@pytest.fixture
def scripted(settings):
    settings.HASHCART = {
        **settings.HASHCART,
        "PLATFORM_ADAPTERS": {
            **settings.HASHCART["PLATFORM_ADAPTERS"],
            "scripted": f"{__name__}.Scripted",
        },
    }
    Scripted.fetches, Scripted.sends, Scripted.sent = [], [], []
    return PlatformAccount.objects.create(
        platform="scripted",
        platform_user_id="1",
        handle="brand",
        reply_budget=3,
        reply_budget_seconds=900,
    )


def _inbound(post_id: str, when: datetime = T0) -> InboundPost:
    return InboundPost(
        platform="scripted",
        post_id=post_id,
        root_id=post_id,
        author_id="9",
        author_handle="alice",
        text="@brand #BuyThing",
        hashtags=("BuyThing",),
        kind="original",
        created_at=when,
    )


# --- Polling -------------------------------------------------------------------------------------
def test_poll_stores_posts_and_advances_the_cursor_with_them(scripted):
    Scripted.fetches = [
        FetchResult(posts=[_inbound("1"), _inbound("2")], cursor="2", high_water_mark=T0)
    ]
    result = feed_poll(account_id=scripted.pk, now=T0)
    cursor = FeedCursor.objects.get(account=scripted)
    assert len(result.stored) == 2
    assert (cursor.cursor, cursor.high_water_mark, cursor.lease_token) == ("2", T0, "")


def test_a_post_delivered_twice_is_stored_once(scripted):
    page = FetchResult(posts=[_inbound("1"), _inbound("1")], cursor="1", high_water_mark=T0)
    Scripted.fetches = [page, FetchResult(posts=[_inbound("1")], cursor="1", high_water_mark=T0)]
    feed_poll(account_id=scripted.pk, now=T0)
    feed_poll(account_id=scripted.pk, now=T0)
    assert Post.objects.filter(post_id="1").count() == 1


def test_one_poller_per_feed(scripted):
    FeedCursor.objects.create(
        account=scripted, lease_token="other", lease_until=T0 + timedelta(seconds=30)
    )
    assert feed_poll(account_id=scripted.pk, now=T0).busy
    assert Scripted.fetches == []  # the platform was not called


def test_a_dead_pollers_lease_lapses(scripted):
    FeedCursor.objects.create(
        account=scripted, lease_token="dead", lease_until=T0 - timedelta(seconds=1)
    )
    Scripted.fetches = [FetchResult(posts=[], cursor="", high_water_mark=T0)]
    assert not feed_poll(account_id=scripted.pk, now=T0).busy


def test_a_poller_that_lost_its_lease_stores_nothing(scripted, monkeypatch):
    class Slow(Scripted):
        def fetch_mentions(self, **kwargs):
            # Another poller takes over while this one waits on the platform.
            FeedCursor.objects.filter(account=scripted).update(lease_token="thief")
            return FetchResult(posts=[_inbound("1")], cursor="1", high_water_mark=T0)

    monkeypatch.setattr("social.services.adapter_for", lambda platform: Slow())
    assert feed_poll(account_id=scripted.pk, now=T0).busy
    assert not Post.objects.exists()
    assert FeedCursor.objects.get(account=scripted).cursor == ""


def test_no_poll_before_a_rate_limit_resets(scripted):
    reset = T0 + timedelta(minutes=5)
    Scripted.fetches = [RateLimited("429", reset_at=reset)]
    feed_poll(account_id=scripted.pk, now=T0)
    assert feed_poll(account_id=scripted.pk, now=reset - timedelta(seconds=1)).busy
    Scripted.fetches = [FetchResult(posts=[], cursor="", high_water_mark=reset)]
    assert not feed_poll(account_id=scripted.pk, now=reset + timedelta(seconds=1)).busy


def test_a_usage_cap_stops_the_feed(scripted):
    Scripted.fetches = [UsageCapped("monthly cap")]
    feed_poll(account_id=scripted.pk, now=T0)
    cursor = FeedCursor.objects.get(account=scripted)
    assert cursor.stopped
    assert "usage cap" in cursor.last_error
    assert feed_poll(account_id=scripted.pk, now=T0 + timedelta(hours=1)).error


def test_a_transient_error_is_recorded_and_raised_for_retry(scripted):
    Scripted.fetches = [TransientError("503")]
    with pytest.raises(TransientError):
        feed_poll(account_id=scripted.pk, now=T0)
    cursor = FeedCursor.objects.get(account=scripted)
    assert (cursor.last_error, cursor.lease_token) == ("503", "")


def test_the_high_water_mark_never_moves_back(scripted):
    Scripted.fetches = [
        FetchResult(posts=[], cursor="5", high_water_mark=T0),
        FetchResult(posts=[], cursor="5", high_water_mark=T0 - timedelta(1)),
    ]
    feed_poll(account_id=scripted.pk, now=T0)
    feed_poll(account_id=scripted.pk, now=T0)
    assert FeedCursor.objects.get(account=scripted).high_water_mark == T0


def test_sandbox_feed_reads_mentions_once_they_settle(settings):
    settings.HASHCART = {**settings.HASHCART, "SANDBOX_SETTLE_MS": 1000}
    brand = sandbox_user_ensure(handle="Brand")
    account = PlatformAccount.objects.create(
        platform="sandbox", platform_user_id=str(brand.pk), handle="Brand"
    )
    sandbox_post_create(handle="alice", text="@Brand #BuyThing", now=T0)
    sandbox_post_create(handle="alice", text="not addressed to the brand", now=T0)
    assert feed_poll(account_id=account.pk, now=T0).stored == []  # too fresh
    assert len(feed_poll(account_id=account.pk, now=T0 + timedelta(seconds=2)).stored) == 1


def test_sandbox_feed_never_moves_its_cursor_past_an_unsettled_post(settings):
    # Ids are handed out in insert order, times by the writer: a post can carry a later id than
    # one that is still settling. The cursor must stop before the unsettled one, not skip it.
    settings.HASHCART = {**settings.HASHCART, "SANDBOX_SETTLE_MS": 1000}
    brand = sandbox_user_ensure(handle="Brand")
    account = PlatformAccount.objects.create(
        platform="sandbox", platform_user_id=str(brand.pk), handle="Brand"
    )
    sandbox_post_create(handle="alice", text="@Brand #BuyThing", now=T0)
    unsettled = sandbox_post_create(handle="bob", text="@Brand #BuyThing", now=T0 + timedelta(1))
    settled = sandbox_post_create(handle="carol", text="@Brand #BuyThing", now=T0)
    assert len(feed_poll(account_id=account.pk, now=T0 + timedelta(seconds=2)).stored) == 1
    cursor = FeedCursor.objects.get(account=account)
    assert cursor.high_water_mark < unsettled.created_at
    later = feed_poll(account_id=account.pk, now=T0 + timedelta(days=1, seconds=2))
    read = Post.objects.filter(pk__in=later.stored).values_list("post_id", flat=True)
    assert sorted(read) == sorted([str(unsettled.pk), str(settled.pk)])


# --- The reply outbox ----------------------------------------------------------------------------
def _queue(account, count, priority=ReplyPriority.OTHER, text="hello {n}"):
    posts = PostFactory.create_batch(count, account=account, platform=account.platform)
    replies_queue(
        drafts=[
            ReplyDraft(in_reply_to=p, kind="k", text=text.format(n=n), priority=priority)
            for n, p in enumerate(posts)
        ]
    )


def test_replies_go_most_urgent_first_within_the_budget(scripted):
    _queue(scripted, 3, ReplyPriority.OTHER, "other {n}")
    _queue(scripted, 2, ReplyPriority.CONFIRMATION_REQUEST, "request {n}")
    result = replies_send_due(account_id=scripted.pk, now=timezone.now())
    assert [text for text, _ in Scripted.sent] == ["request 0", "request 1", "other 0"]
    assert len(result.sent) == 3
    assert result.wait_until is not None
    # The bucket refills at 3 per 15 minutes: one more after 5 minutes.
    replies_send_due(account_id=scripted.pk, now=timezone.now() + timedelta(minutes=5))
    assert len(Scripted.sent) == 4


def test_replies_are_sent_with_an_idempotency_key(scripted):
    _queue(scripted, 1)
    replies_send_due(account_id=scripted.pk, now=timezone.now())
    reply = Reply.objects.get()
    assert Scripted.sent == [("hello 0", f"reply-{reply.pk}")]
    assert (reply.status, reply.platform_reply_id) == (ReplyStatus.SENT, "r1")


def test_identical_texts_are_never_queued_twice(scripted):
    _queue(scripted, 2, text="@alice Sorry, it is sold out.")
    assert Reply.objects.count() == 1


def test_stale_low_priority_replies_are_skipped(scripted):
    _queue(scripted, 1, ReplyPriority.OTHER)
    _queue(scripted, 1, ReplyPriority.CONFIRMATION_REQUEST, "request {n}")
    later = timezone.now() + timedelta(minutes=31)
    replies_send_due(account_id=scripted.pk, now=later)
    assert dict(Reply.objects.values_list("priority", "status")) == {
        ReplyPriority.OTHER: ReplyStatus.SKIPPED,
        ReplyPriority.CONFIRMATION_REQUEST: ReplyStatus.SENT,
    }


def test_a_transient_error_retries_with_backoff_and_a_refusal_is_final(scripted):
    _queue(scripted, 2)
    Scripted.sends = [TransientError("timeout"), RejectedError("duplicate content")]
    now = timezone.now()
    replies_send_due(account_id=scripted.pk, now=now)
    first, second = Reply.objects.order_by("id")
    assert (first.status, first.attempts, first.next_attempt_at) == (
        ReplyStatus.QUEUED,
        1,
        now + timedelta(seconds=2),
    )
    assert second.status == ReplyStatus.FAILED
    replies_send_due(account_id=scripted.pk, now=now + timedelta(seconds=1))
    assert Reply.objects.get(pk=first.pk).status == ReplyStatus.QUEUED  # not yet due
    replies_send_due(account_id=scripted.pk, now=now + timedelta(seconds=3))
    assert Reply.objects.get(pk=first.pk).status == ReplyStatus.SENT


def test_a_rate_limit_holds_every_reply_until_the_reset_without_spending_attempts(scripted):
    _queue(scripted, 3)
    now = timezone.now()
    reset = now + timedelta(minutes=7)
    Scripted.sends = ["ok", RateLimited("429", reset_at=reset)]
    result = replies_send_due(account_id=scripted.pk, now=now)
    assert (len(result.sent), result.wait_until) == (1, reset)
    waiting = Reply.objects.filter(status=ReplyStatus.QUEUED)
    assert sorted(waiting.values_list("attempts", "next_attempt_at")) == [(0, reset), (0, reset)]
    # Before the reset nothing is sent, even with budget left over by the refill clock.
    replies_send_due(account_id=scripted.pk, now=reset - timedelta(seconds=1))
    assert len(Scripted.sent) == 1
    # The bucket refills from the reset (3 per 15 minutes: one every 5 minutes), not before.
    replies_send_due(account_id=scripted.pk, now=reset + timedelta(minutes=5, seconds=1))
    assert len(Scripted.sent) == 2


def test_a_claim_whose_sender_died_is_taken_back(scripted):
    _queue(scripted, 1)
    Reply.objects.update(
        status=ReplyStatus.SENDING, claimed_until=timezone.now() - timedelta(seconds=1)
    )
    replies_send_due(account_id=scripted.pk, now=timezone.now())
    assert Reply.objects.get().status == ReplyStatus.SENT


def test_low_priority_replies_beyond_what_the_budget_can_send_in_time_are_not_queued(scripted):
    # 3 per 15 minutes, stale after 30: at most 6 low-priority replies can ever be sent.
    _queue(scripted, 10, ReplyPriority.OTHER, "sold out {n}")
    _queue(scripted, 3, ReplyPriority.CONFIRMATION_REQUEST, "request {n}")
    queued = Reply.objects.values_list("priority", flat=True)
    assert sorted(queued) == [ReplyPriority.CONFIRMATION_REQUEST] * 3 + [ReplyPriority.OTHER] * 6
