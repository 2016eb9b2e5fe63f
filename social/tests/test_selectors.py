"""What other apps read of social (``social.selectors``) and the withdrawal of replies not yet
posted (``social.services.replies_withdraw``)."""

from datetime import datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import pytest

from social.models import FeedCursor, FeedKind, PlatformAccount, Post, Reply, ReplyStatus
from social.selectors import (
    FeedHorizon,
    feed_horizons,
    feeds_of,
    posts_unanswered,
    replies_sent_at,
)
from social.services import replies_withdraw
from social.tests.factories import PlatformAccountFactory, PostFactory

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=ZoneInfo("UTC"))
KIND = "confirmation_request"


def live_tags(*, platform, now):
    return ("BuyThing",) if now >= T0 else ()


def _replies(**statuses) -> dict[str, Post]:
    """A post per name, each with a reply of ``KIND`` in the given status (None: no reply)."""
    posts: dict[str, Post] = {}
    for name, status in statuses.items():
        post: Post = cast(Post, PostFactory())
        posts[name] = post
        if status is not None:
            Reply.objects.create(
                account=post.account,
                in_reply_to=post,
                kind=KIND,
                text=f"reply {name}",
                status=status,
                claimed_until=T0 + timedelta(seconds=30) if name == "live" else T0 - timedelta(1),
                sent_at=T0 if status == ReplyStatus.SENT else None,
                platform_reply_id="r" if status == ReplyStatus.SENT else "",
            )
    return posts


def test_withdrawing_skips_queued_and_lapsed_replies_and_names_those_out_of_reach():
    posts = _replies(
        queued=ReplyStatus.QUEUED,
        lapsed=ReplyStatus.SENDING,
        live=ReplyStatus.SENDING,
        sent=ReplyStatus.SENT,
    )
    out_of_reach = replies_withdraw(
        post_ids=[p.pk for p in posts.values()], kinds=[KIND], now=T0, reason="order expired"
    )
    assert out_of_reach == {posts["live"].pk, posts["sent"].pk}
    status = dict(Reply.objects.values_list("in_reply_to_id", "status"))
    assert status[posts["queued"].pk] == status[posts["lapsed"].pk] == ReplyStatus.SKIPPED
    assert (status[posts["live"].pk], status[posts["sent"].pk]) == (
        ReplyStatus.SENDING,
        ReplyStatus.SENT,
    )
    assert Reply.objects.get(in_reply_to=posts["queued"]).last_error == "order expired"


def test_withdrawing_leaves_replies_of_other_kinds_alone():
    posts = _replies(queued=ReplyStatus.QUEUED)
    replies_withdraw(post_ids=[posts["queued"].pk], kinds=["other"], now=T0, reason="x")
    assert Reply.objects.get().status == ReplyStatus.QUEUED


def test_posts_unanswered_are_those_whose_reply_will_never_be_posted():
    posts = _replies(
        none=None,
        failed=ReplyStatus.FAILED,
        skipped=ReplyStatus.SKIPPED,
        queued=ReplyStatus.QUEUED,
        live=ReplyStatus.SENDING,
        sent=ReplyStatus.SENT,
    )
    # A query of ids is read as a subquery, as a list is.
    ids = Post.objects.filter(pk__in=[p.pk for p in posts.values()]).values("pk")
    assert posts_unanswered(post_ids=ids, kind=KIND) == sorted(
        posts[name].pk for name in ("none", "failed", "skipped")
    )
    assert replies_sent_at(post_ids=ids, kind=KIND) == {posts["sent"].pk: T0}


def test_the_feed_horizon_of_each_account():
    read, unread = (
        PlatformAccountFactory(platform_user_id="1"),
        PlatformAccountFactory(platform_user_id="2"),
    )
    FeedCursor.objects.create(account=read, feed=FeedKind.MENTIONS, high_water_mark=T0)
    FeedCursor.objects.create(account=read, feed=FeedKind.SEARCH, high_water_mark=T0 + timedelta(1))
    PostFactory(account=read, posted_at=T0 - timedelta(minutes=5))
    PostFactory(account=read, posted_at=T0 - timedelta(minutes=9))
    PostFactory(
        account=read, posted_at=T0 - timedelta(minutes=20), outcome="ignored_own", decided_at=T0
    )
    assert feed_horizons(account_ids=[read.pk, unread.pk]) == {
        read.pk: FeedHorizon(high_water_mark=T0, oldest_undecided=T0 - timedelta(minutes=9)),
        unread.pk: FeedHorizon(),
    }


def test_a_search_feed_looks_for_the_hashtags_its_source_names(settings):
    settings.HASHCART = {**settings.HASHCART, "SEARCH_HASHTAGS_SOURCE": f"{__name__}.live_tags"}
    account = PlatformAccount.objects.create(
        platform="sandbox", platform_user_id="1", handle="b", feed_mode="search"
    )
    assert feeds_of(account, now=T0) == [(FeedKind.MENTIONS, ()), (FeedKind.SEARCH, ("BuyThing",))]
    assert feeds_of(account, now=T0 - timedelta(1)) == [(FeedKind.MENTIONS, ())]
