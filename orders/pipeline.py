"""The purchase pipeline's stages, each a sweep over stored state (DESIGN §5).

poll (feeds into the inbox) -> decide (inbox posts into outcomes, orders and outbox rows) ->
send (replies within the rate budget; then confirmation windows open, payments run, e-mails go)
-> expire (pending orders whose window closed behind the feed, and orders whose card
authentication lapsed; then waitlist promotions and closings).

The management commands run these stages by hand; Celery tasks do the same work on events and
on the beat schedule (``social.tasks`` poll and send replies, ``orders.tasks`` the rest). Social
state is read through ``social.selectors`` and written through ``social.services``. Every
stage is idempotent: running one twice, or two at once, does each piece of work once.
"""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings

from orders.models import Order, OutboxStatus, PaymentOperation
from orders.services import (
    CONFIRMATION_REQUEST,
    notifications_send_due,
    order_windows_open,
    orders_authentication_lapse,
    orders_expire_due,
    orders_expire_unrequested,
    orders_remind_due,
    orders_request_privately,
    payment_operation_run,
    payment_operations_due,
    posts_decide,
)
from orders.services.waitlist import waitlists_close_due, waitlists_promote_due
from social.platforms.base import TransientError
from social.selectors import accounts_to_poll, accounts_with_due_replies, feeds_of, posts_undecided
from social.services import feed_poll, replies_reclaim, replies_send_due

PAYMENTS_PAGE = 100


def chunks(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def batch_size() -> int:
    return int(settings.HASHCART["DECIDE_BATCH_SIZE"])


@dataclass
class PollSummary:
    """``errors``: one line per failed feed; ``waiting``: one per feed held by a rate limit."""

    stored: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)


def stage_poll(*, now: datetime, max_pages: int = 100) -> PollSummary:
    """Read every enabled brand account's feed, page after page, into the inbox.

    A feed that fails (refused, failing, unreachable after its own retries are up to the caller)
    is one line in ``errors`` and the other feeds are read all the same."""
    summary = PollSummary()
    for account in accounts_to_poll():
        for feed, hashtags in feeds_of(account, now=now):
            name = f"@{account.handle} ({account.platform} {feed})"
            for _ in range(max_pages):
                try:
                    result = feed_poll(account_id=account.pk, now=now, feed=feed, hashtags=hashtags)
                except TransientError as exc:  # recorded on the feed by feed_poll
                    summary.errors.append(f"{name}: {exc}")
                    break
                summary.stored.extend(result.stored)
                if result.error:
                    summary.errors.append(f"{name}: {result.error}")
                elif result.waiting_until is not None:
                    summary.waiting.append(f"{name}: rate limited until {result.waiting_until}")
                if not result.more or result.busy:
                    break
    return summary


def stage_decide(*, now: datetime) -> Counter[str]:
    """Decide every undecided inbox post, a batch per transaction."""
    outcomes: Counter[str] = Counter()
    for ids in chunks(posts_undecided(), batch_size()):
        outcomes += posts_decide(post_ids=ids, now=now)
    return outcomes


@dataclass
class SendSummary:
    """``private_requests``: confirmation requests sent privately (their e-mails are sent as
    they are switched, and counted in ``emails`` only if a retry sent them)."""

    replies: int = 0
    windows_opened: int = 0
    payments: Counter[str] = field(default_factory=Counter)
    emails: int = 0
    private_requests: int = 0


def stage_send(*, now: datetime) -> SendSummary:
    """Run due payment operations (their results queue replies), send due replies of every
    account within its budget, open the confirmation windows of the requests just posted, send
    privately the requests the budget cannot post in time (after the senders, so a budget with
    room posts them publicly first), and send due e-mails."""
    summary = SendSummary()
    summary.payments = stage_payments(now=now)
    replies_reclaim(now=now)  # every account's, even one that queues nothing else
    requests = []
    for account_id in accounts_with_due_replies():
        while True:
            result = replies_send_due(account_id=account_id, now=now)
            summary.replies += len(result.sent)
            requests += [r.in_reply_to_id for r in result.sent if r.kind == CONFIRMATION_REQUEST]
            if not result.more:
                break
    # Each request posted opened its order's window as it was marked sent (REPLY_SENT_HANDLER).
    summary.windows_opened = (
        Order.objects.filter(purchase_post_id__in=requests, reply_posted_at__isnull=False).count()
        + order_windows_open()
    )
    summary.private_requests = orders_request_privately(now=now)
    summary.emails = notifications_send_due(now=now)
    return summary


def stage_payments(*, now: datetime) -> Counter[str]:
    """Run every due payment operation, a page at a time; returns their statuses after."""
    results: Counter[str] = Counter()
    while due := payment_operations_due(now=now):
        for operation_id in due:
            results[payment_operation_run(operation_id=operation_id, now=now)] += 1
        if len(due) < PAYMENTS_PAGE:
            break
    return results


def stage_expire(*, now: datetime) -> int:
    """Expire pending orders whose window closed behind the feed, and decline orders whose
    time to authenticate their card ran out; then give the units that came back to the first
    waitlisters (the sweep behind the promotion tasks) and close the waitlists of campaigns
    that ended. Returns how many orders and entries changed."""
    order_windows_open()  # a window not yet open for a posted request opens before any expiry
    return (
        orders_expire_due(now=now)
        + orders_expire_unrequested(now=now)
        + orders_authentication_lapse(now=now)
        + waitlists_promote_due(now=now)
        + waitlists_close_due(now=now)
    )


def stage_remind(*, now: datetime) -> int:
    """Queue the one reminder of each pending order whose window closes soon, and send due
    e-mails; returns how many reminders were found due."""
    reminded = orders_remind_due(now=now)
    if reminded:
        notifications_send_due(now=now)
    return reminded


def stale_work(*, now: datetime) -> tuple[list[int], bool]:
    """For the recovery sweep: inbox posts left undecided for a while (their task was lost), and
    whether any payment operation waits (so it is run). Replies have their own recovery sweep
    (``social.services.replies_recover``)."""
    stale = posts_undecided(received_before=now - timedelta(seconds=10))
    waiting = PaymentOperation.objects.filter(status=OutboxStatus.PENDING).exists()
    return stale, waiting
