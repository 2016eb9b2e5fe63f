"""Social's tasks hand their results to orders only through the settings hooks: the posts a
feed read stored (``POSTS_STORED_HANDLER``) and each reply as it is recorded posted
(``REPLY_SENT_HANDLER``, in the transaction that records it)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from sandbox.services import sandbox_post_create, sandbox_user_ensure
from social.models import PlatformAccount, Post, Reply, ReplyPriority, ReplyStatus
from social.platforms.base import PlatformAdapter
from social.services import ReplyDraft, replies_queue, replies_send_due
from social.tasks import feed_poll_task
from social.tests.factories import PostFactory

pytestmark = pytest.mark.django_db
handed: list = []


def record_posts(*, post_ids):
    handed.append(list(post_ids))


def record_reply(*, post_id, kind, sent_at):
    reply = Reply.objects.get(in_reply_to_id=post_id, kind=kind)
    handed.append((post_id, kind, sent_at, reply.status, connection.in_atomic_block))


def refuse_reply(**kwargs):
    raise RuntimeError("the window could not be opened")


class Posting(PlatformAdapter):
    platform = "posting"

    def fetch_mentions(self, **kwargs):
        raise NotImplementedError

    def send_reply(self, **kwargs):
        return "r1"


@pytest.fixture
def hooks(settings):
    handed.clear()
    settings.HASHCART = {
        **settings.HASHCART,
        "POSTS_STORED_HANDLER": f"{__name__}.record_posts",
        "REPLY_SENT_HANDLER": f"{__name__}.record_reply",
        "PLATFORM_ADAPTERS": {
            **settings.HASHCART["PLATFORM_ADAPTERS"],
            "posting": f"{__name__}.Posting",
        },
    }
    return settings


def _queued_reply(kind="confirmation_request"):
    account = PlatformAccount.objects.create(platform="posting", platform_user_id="1", handle="b")
    post = PostFactory(account=account, platform="posting")
    replies_queue(
        drafts=[
            ReplyDraft(
                in_reply_to=post,
                kind=kind,
                text="hello",
                priority=ReplyPriority.CONFIRMATION_REQUEST,
            )
        ]
    )
    return account, post


def test_a_feed_read_hands_the_posts_it_stored_to_the_posts_stored_handler(hooks):
    hooks.HASHCART = {**hooks.HASHCART, "SANDBOX_SETTLE_MS": 0}
    brand = sandbox_user_ensure(handle="Brand")
    account = PlatformAccount.objects.create(
        platform="sandbox", platform_user_id=str(brand.pk), handle="Brand"
    )
    sandbox_post_create(
        handle="alice", text="@Brand #BuyThing", now=timezone.now() - timedelta(seconds=1)
    )
    feed_poll_task(account.pk)
    assert handed == [list(Post.objects.values_list("pk", flat=True))]
    feed_poll_task(account.pk)  # nothing new: nothing handed on
    assert len(handed) == 1


def test_a_sent_reply_is_handed_over_in_the_transaction_that_records_it(hooks):
    account, post = _queued_reply()
    replies_send_due(account_id=account.pk, now=timezone.now())
    reply = Reply.objects.get()
    assert handed == [(post.pk, "confirmation_request", reply.sent_at, ReplyStatus.SENT, True)]


def test_a_reply_whose_handover_fails_is_not_recorded_sent(hooks):
    hooks.HASHCART = {**hooks.HASHCART, "REPLY_SENT_HANDLER": f"{__name__}.refuse_reply"}
    account, _ = _queued_reply()
    with pytest.raises(RuntimeError):
        replies_send_due(account_id=account.pk, now=timezone.now())
    # Still claimed: the claim lapses and the reply is sent again (its idempotency key holds).
    assert Reply.objects.get().status == ReplyStatus.SENDING
