"""Celery tasks of the pipeline: thin wrappers that take ids and run a stage or a service.

At-least-once delivery is assumed everywhere (acks late, requeue on worker loss): each task is
idempotent, so a redelivered message only repeats a no-op. Follow-up tasks are sent after the
work they depend on has committed (the services commit before returning).
"""

from typing import Any

from celery import shared_task
from django.core.cache import cache
from django.db import OperationalError
from django.utils import timezone

from orders import pipeline
from orders.services import notifications_send_due, order_windows_open, posts_decide
from social.models import PlatformAccount, Reply, ReplyStatus
from social.platforms.base import TransientError
from social.services import feed_poll, replies_send_due

RETRY: dict[str, Any] = {
    "autoretry_for": (TransientError, OperationalError),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 8,
}


@shared_task(name="orders.feeds_poll", **RETRY)
def feeds_poll_task() -> None:
    """Beat: poll every enabled brand account's feed."""
    now = timezone.now()
    for account in PlatformAccount.objects.filter(enabled=True):
        for feed, _ in pipeline.feeds_of(account, now=now):
            feed_poll_task.delay(account.pk, feed)


@shared_task(name="orders.feed_poll", **RETRY)
def feed_poll_task(account_id: int, feed: str = "mentions") -> None:
    now = timezone.now()
    account = PlatformAccount.objects.get(pk=account_id)
    hashtags = dict(pipeline.feeds_of(account, now=now)).get(feed, ())
    result = feed_poll(account_id=account_id, now=now, feed=feed, hashtags=hashtags)
    for ids in pipeline.chunks(result.stored, pipeline.batch_size()):
        posts_decide_task.delay(ids)
    if result.more:
        feed_poll_task.delay(account_id, feed)


# Outcomes after which a reply or an e-mail may be waiting in the outbox.
_REPLYING = {
    "order_created",
    "sold_out",
    "blocked",
    "campaign_closed",
    "confirm_late",
    "confirm_awaiting_email",
}
_MAILING = {"order_created", "blocked", "confirm_late"}
KICK_SECONDS = 1.0


def kick(task: Any) -> None:
    """Run a sweep task soon, once for all the kicks within ``KICK_SECONDS``.

    Deciding a flash sale's batches back to back would otherwise send one sender task per batch;
    the first kick schedules the sweep a moment later and the rest ride along with it. The cache
    (Redis in production) makes ``add`` atomic across workers.
    """
    if cache.add(f"hashcart:kick:{task.name}", 1, timeout=KICK_SECONDS):
        task.apply_async(countdown=KICK_SECONDS)


@shared_task(name="orders.posts_decide", **RETRY)
def posts_decide_task(post_ids: list[int]) -> dict[str, int]:
    outcomes = posts_decide(post_ids=post_ids, now=timezone.now())
    if _REPLYING.intersection(outcomes):
        kick(replies_send_all_task)
    if _MAILING.intersection(outcomes):
        kick(notifications_send_task)
    if outcomes.get("confirmed"):
        payments_run_task.delay()
    return dict(outcomes)


@shared_task(name="orders.replies_send_all", **RETRY)
def replies_send_all_task() -> None:
    """Send due replies of every account, then open the windows of requests just posted."""
    accounts = set(
        Reply.objects.filter(status=ReplyStatus.QUEUED)
        .values_list("account_id", flat=True)
        .distinct()
    )
    for account_id in sorted(accounts):
        replies_send_task.delay(account_id)


@shared_task(name="orders.replies_send", **RETRY)
def replies_send_task(account_id: int) -> None:
    now = timezone.now()
    result = replies_send_due(account_id=account_id, now=now)
    if result.sent:
        order_windows_open()
    if result.more:
        # Due replies left and budget to send them: go on now. When the budget is spent, the
        # beat's sweep comes back for them (no self-rescheduling chains to pile up).
        replies_send_task.delay(account_id)


@shared_task(name="orders.payments_run", **RETRY)
def payments_run_task() -> None:
    counts = pipeline.stage_payments(now=timezone.now())
    if counts:
        kick(replies_send_all_task)
        kick(notifications_send_task)


@shared_task(name="orders.notifications_send", **RETRY)
def notifications_send_task() -> None:
    notifications_send_due(now=timezone.now())


@shared_task(name="orders.orders_expire", **RETRY)
def orders_expire_task() -> None:
    if pipeline.stage_expire(now=timezone.now()):
        notifications_send_task.delay()


@shared_task(name="orders.recover", **RETRY)
def recover_task() -> None:
    """Beat: re-enqueue undecided posts whose task was lost, and kick the outbox senders."""
    stale, waiting = pipeline.stale_work(now=timezone.now())
    for ids in pipeline.chunks(stale, pipeline.batch_size()):
        posts_decide_task.delay(ids)
    if waiting:
        replies_send_all_task.delay()
        payments_run_task.delay()
