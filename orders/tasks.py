"""Celery tasks of orders: deciding, payments, e-mails, expiry and the recovery sweep; thin
wrappers that take ids and run a stage or a service. (Polling the feeds and sending replies are
social's tasks, ``social.tasks``: stored posts come here through ``posts_decide_enqueue``.)

At-least-once delivery is assumed everywhere (acks late, requeue on worker loss): each task is
idempotent, so a redelivered message only repeats a no-op. Follow-up tasks are sent after the
work they depend on has committed (the services commit before returning).
"""

import logging
from datetime import timedelta
from functools import partial
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from orders import pipeline
from orders.payments.base import GatewayError
from orders.services import (
    notifications_send_due,
    orders_remind_due,
    orders_request_privately,
    posts_decide,
)
from orders.services.alerts.sweep import alerts_sweep
from orders.services.reconcile import reconciliation_run
from orders.services.waitlist import waitlist_promote
from orders.services.webhooks import webhooks_send_all
from social.tasks import RETRY, replies_send_all_task

logger = logging.getLogger(__name__)


def posts_decide_enqueue(*, post_ids: list[int]) -> None:
    """``HASHCART["POSTS_STORED_HANDLER"]``: social stored these inbox posts; decide them in
    batches of ``DECIDE_BATCH_SIZE``, a task each, once the caller's transaction commits."""
    for ids in pipeline.chunks(post_ids, pipeline.batch_size()):
        transaction.on_commit(partial(posts_decide_task.delay, ids))


# Outcomes after which a reply or an e-mail may be waiting in the outbox.
_REPLYING = {
    "order_created",
    "sold_out",
    "blocked",
    "campaign_closed",
    "not_linked",
    "confirm_late",
    "confirm_awaiting_email",
    "waitlisted",
}
_MAILING = {"order_created", "blocked", "confirm_late", "waitlisted", "near_miss"}
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
    if outcomes.get("order_created"):
        kick(requests_private_task)  # a request the budget cannot post goes privately at once
    if _MAILING.intersection(outcomes):
        kick(notifications_send_task)
    if outcomes.get("confirmed"):
        payments_run_task.delay()
    return dict(outcomes)


@shared_task(name="orders.payments_run", **RETRY)
def payments_run_task() -> None:
    counts = pipeline.stage_payments(now=timezone.now())
    if counts:
        kick(replies_send_all_task)
        kick(notifications_send_task)


@shared_task(name="orders.reconcile_payments")
def reconcile_payments_task() -> None:
    """Beat, daily: the gateway's books against the orders; the result is recorded (and shown
    by ``pipeline_status``), and a mismatch or an unreadable gateway is an ERROR line."""
    now = timezone.now()
    since = now - timedelta(days=settings.HASHCART["RECONCILE_DAYS"])
    try:
        run = reconciliation_run(since=since, now=now)
    except GatewayError as exc:
        logger.error("reconciliation: the gateway could not be read: %s", exc)
        return
    if run.mismatches:
        logger.error(
            "reconciliation: %d mismatches between the gateway and the orders "
            "(reconcile_payments lists them)",
            len(run.mismatches),
        )


@shared_task(name="orders.notifications_send", **RETRY)
def notifications_send_task() -> None:
    notifications_send_due(now=timezone.now())


@shared_task(name="orders.requests_private", **RETRY)
def requests_private_task() -> None:
    """Beat, and after new orders: send privately the confirmation requests the public reply
    budget cannot post in time (``orders.services.private``; their e-mails go as they switch)."""
    orders_request_privately(now=timezone.now())


@shared_task(name="orders.orders_expire", **RETRY)
def orders_expire_task() -> None:
    if pipeline.stage_expire(now=timezone.now()):
        notifications_send_task.delay()


@shared_task(name="orders.orders_remind", **RETRY)
def orders_remind_task() -> None:
    """Beat: queue the reminders of windows closing soon (once each), then send them."""
    if orders_remind_due(now=timezone.now()):
        notifications_send_task.delay()


@shared_task(name="orders.recover", **RETRY)
def recover_task() -> None:
    """Beat: re-enqueue undecided posts whose task was lost, and run waiting payment operations.
    (Replies have their own recovery: ``social.tasks.replies_recover_task``.)"""
    stale, waiting = pipeline.stale_work(now=timezone.now())
    for ids in pipeline.chunks(stale, pipeline.batch_size()):
        posts_decide_task.delay(ids)
    if waiting:
        payments_run_task.delay()


def waitlist_promote_enqueue(*, campaign_ids: list[int]) -> None:
    """``HASHCART["WAITLIST_PROMOTE_HANDLER"]`` (and catalog's ``CAMPAIGN_STOCK_ADDED_HANDLER``),
    called after the commit that freed units or filled a waitlist: a promotion task per
    campaign. Many calls for one campaign within ``KICK_SECONDS`` ride on one task (it gives
    every unit free when it runs); the expiry stage's sweep makes good a task lost."""
    for campaign_id in campaign_ids:
        if cache.add(f"hashcart:kick:waitlist:{campaign_id}", 1, timeout=KICK_SECONDS):
            waitlist_promote_task.apply_async((campaign_id,), countdown=KICK_SECONDS)


@shared_task(name="orders.waitlist_promote", **RETRY)
def waitlist_promote_task(campaign_id: int) -> int:
    now = timezone.now()
    made = 0
    while True:
        result = waitlist_promote(campaign_id=campaign_id, now=now)
        made += len(result.promoted)
        if not result.again:
            break
    if made:
        kick(replies_send_all_task)
        kick(notifications_send_task)
    return made


@shared_task(name="orders.alerts_sweep", **RETRY)
def alerts_sweep_task() -> None:
    """Beat: raise the merchant alerts found since the last sweep (each once), then send their
    e-mails."""
    if alerts_sweep(now=timezone.now()):
        notifications_send_task.delay()


# A webhook sweep task stops taking new batches after this long (the beat sends the next).
WEBHOOK_SWEEP_SECONDS = 50


def webhooks_send_soon() -> None:
    """``HASHCART["WEBHOOKS_QUEUED_HANDLER"]``: deliveries were queued and committed; a sweep
    task soon, one for all the kicks within ``KICK_SECONDS`` (a flash sale queues many)."""
    kick(webhooks_send_task)


@shared_task(name="orders.webhooks_send", **RETRY, soft_time_limit=110, time_limit=120)
def webhooks_send_task() -> int:
    """Beat: send due webhook deliveries, batch after batch while full ones come, for at most
    ``WEBHOOK_SWEEP_SECONDS`` (``orders.services.webhooks``). Returns the attempts made."""
    return webhooks_send_all(seconds=WEBHOOK_SWEEP_SECONDS)
