"""Celery tasks of the social app: reading the feeds into the inbox and sending the reply outbox.

Thin wrappers that take ids and call one service. At-least-once delivery is assumed (acks late,
requeue on worker loss): each task is idempotent. Social knows nothing of orders: the posts a
read stored are handed on through ``HASHCART["POSTS_STORED_HANDLER"]`` (orders queues its
decider), as a sent reply is by ``HASHCART["REPLY_SENT_HANDLER"]`` (``social.services``).
"""

from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone
from django.utils.module_loading import import_string

from social.models import PlatformAccount
from social.platforms.base import TransientError
from social.selectors import accounts_to_poll, accounts_with_due_replies, feeds_of
from social.services import feed_poll, replies_recover, replies_send_due

# The retry policy of the pipeline's tasks (orders' too): a platform's transient error or a
# database that went away is retried with backoff, up to a minute apart.
RETRY: dict[str, Any] = {
    "autoretry_for": (TransientError, OperationalError),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 8,
}


@shared_task(name="social.feeds_poll", **RETRY)
def feeds_poll_task() -> None:
    """Beat: poll every enabled brand account's feeds."""
    now = timezone.now()
    for account in accounts_to_poll():
        for feed, _ in feeds_of(account, now=now):
            feed_poll_task.delay(account.pk, feed)


@shared_task(name="social.feed_poll", **RETRY)
def feed_poll_task(account_id: int, feed: str = "mentions") -> None:
    """Read a page of one feed; hand the posts stored to ``POSTS_STORED_HANDLER``, and read the
    next page at once if there is one."""
    now = timezone.now()
    account = PlatformAccount.objects.get(pk=account_id)
    hashtags = dict(feeds_of(account, now=now)).get(feed, ())
    result = feed_poll(account_id=account_id, now=now, feed=feed, hashtags=hashtags)
    if result.stored:
        import_string(settings.HASHCART["POSTS_STORED_HANDLER"])(post_ids=result.stored)
    if result.more:
        feed_poll_task.delay(account_id, feed)


@shared_task(name="social.replies_send_all", **RETRY)
def replies_send_all_task() -> None:
    """Send the due replies of every account (a task per account)."""
    for account_id in accounts_with_due_replies():
        replies_send_task.delay(account_id)


@shared_task(name="social.replies_send", **RETRY)
def replies_send_task(account_id: int) -> None:
    result = replies_send_due(account_id=account_id, now=timezone.now())
    if result.more:
        # Due replies left and budget to send them: go on now. When the budget is spent, the
        # beat's sweep comes back for them (no self-rescheduling chains to pile up).
        replies_send_task.delay(account_id)


@shared_task(name="social.replies_recover", **RETRY)
def replies_recover_task() -> None:
    """Beat: take back the replies of senders that died while sending them, and start the
    senders if replies wait."""
    if replies_recover(now=timezone.now()):
        replies_send_all_task.delay()
