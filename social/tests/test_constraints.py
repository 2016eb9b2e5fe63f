"""The inbox and outbox reject duplicates and inconsistent rows at the database."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from social.models import Post, Reply, ReplyStatus
from social.tests.factories import PostFactory

pytestmark = pytest.mark.django_db


def test_a_post_is_stored_once_per_platform():
    post = PostFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        PostFactory(post_id=post.post_id)


def test_the_same_post_id_on_another_platform_is_another_post():
    post = PostFactory()
    PostFactory(post_id=post.post_id, platform="x")
    assert Post.objects.count() == 2


@pytest.mark.parametrize(
    "changes",
    [{"outcome": "order_created"}, {"decided_at": "2026-01-01T00:00:00Z"}],
    ids=["outcome without time", "time without outcome"],
)
def test_an_outcome_and_its_time_go_together(changes):
    post = PostFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Post.objects.filter(pk=post.pk).update(**changes)


def test_one_reply_of_a_kind_per_post():
    post = PostFactory()
    Reply.objects.create(account=post.account, in_reply_to=post, kind="order_created", text="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        Reply.objects.create(account=post.account, in_reply_to=post, kind="order_created", text="b")


def test_a_sent_reply_carries_its_platform_id():
    post = PostFactory()
    reply = Reply.objects.create(account=post.account, in_reply_to=post, kind="x", text="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        Reply.objects.filter(pk=reply.pk).update(status=ReplyStatus.SENT, sent_at=timezone.now())
