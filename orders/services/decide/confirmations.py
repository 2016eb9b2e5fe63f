"""Confirmation posts (``#<prefix><CODE>``, DESIGN §3.3).

``orders_for_confirmation`` reads, before any lock, the orders a batch's candidate codes may
refer to; ``decide_confirmations`` runs under the locks of those orders' campaigns (taken by
``orders.services.decide.purchases``), which every writer of an order's status takes first:
an order read under them cannot change status until the batch commits. Confirming is a
compare-and-set on the order's status; an order confirmed or cancelled by another worker
between the read and the lock gets no public answer.
"""

from collections import defaultdict
from datetime import datetime

from orders import messages
from orders.models import Order, OrderStatus
from orders.outcomes import PostOutcome
from orders.selectors import orders_still_buyable
from orders.services.common import notification, order_confirm, order_release
from orders.services.decide.batch import Batch
from social.hashtags import hashtag_key
from social.models import Post, ReplyPriority


def orders_for_confirmation(confirmations: list[tuple[Post, set[str]]]) -> list[Order]:
    """Orders a batch's candidate confirmations may refer to: the authors' pending ones with
    their codes, and their expired ones (to answer that the time has passed)."""
    if not confirmations:
        return []
    codes = {code for _, post_codes in confirmations for code in post_codes}
    authors = {post.author_id for post, _ in confirmations}
    return list(
        Order.objects.filter(
            confirmation_code__in=codes,
            author_id__in=authors,
            status__in=(OrderStatus.PENDING, OrderStatus.EXPIRED),
        )
        .select_related("campaign", "cardholder__user")
        .order_by("-id")
    )


def decide_confirmations(
    batch: Batch, confirmations: list[tuple[Post, set[str]]], orders: list[Order]
) -> None:
    """``confirmed`` only from the order's own author, with the campaign's prefix, posted at or
    before ``expires_at`` (the window is open while the reply is unsent); ``confirm_late`` after
    it (the order is expired now); ``confirm_unknown`` for anything else, including an order
    that another worker confirmed or cancelled while this batch ran."""
    if not confirmations:
        return
    by_code: dict[str, list[Order]] = defaultdict(list)
    for candidate in orders:
        by_code[candidate.confirmation_code].append(candidate)
    may_buy = orders_still_buyable(orders=orders)
    for post, codes in confirmations:
        keys = {hashtag_key(tag) for tag in post.hashtags}
        mine = [
            o
            for code in codes
            for o in by_code.get(code, ())
            if o.author_id == post.author_id
            and o.platform == post.platform
            and hashtag_key(o.campaign.confirm_prefix + code) in keys
        ]
        order = next((o for o in mine if o.status == OrderStatus.PENDING), None)
        if order is not None and order.pk not in may_buy:
            order = None  # the buyer locked the account down: nothing to confirm, no answer
        on_time = order is not None and (
            order.expires_at is None or post.posted_at <= order.expires_at
        )
        if on_time and order is not None and _awaits_email(order, posted_at=post.posted_at):
            batch.decide(
                post,
                PostOutcome.CONFIRM_AWAITING_EMAIL,
                reply=messages.reply_confirm_email_pending(order=order),
                priority=ReplyPriority.RESULT,
            )
            continue
        confirmed = (
            order_confirm(order=order, now=batch.now, data={"post": post.post_id})
            if on_time and order is not None
            else None
        )
        if confirmed is not None:
            batch.decide(post, PostOutcome.CONFIRMED)
            batch.events.append(confirmed[0])
            batch.payments.append(confirmed[1])
            continue
        if order is not None and order.status == OrderStatus.PENDING:
            _expire(batch, order, reason="confirmation after the window")
        # "Too late" only for an order that did expire: one that another worker confirmed or
        # that was cancelled meanwhile (a lost race above) gets no public answer.
        expired = next((o for o in mine if o.status == OrderStatus.EXPIRED), None)
        if expired is not None:
            batch.decide(
                post,
                PostOutcome.CONFIRM_LATE,
                reply=messages.reply_confirm_late(
                    handle=post.author_handle, code=expired.confirmation_code
                ),
                priority=ReplyPriority.RESULT,
            )
        else:
            batch.decide(post, PostOutcome.CONFIRM_UNKNOWN)


def _awaits_email(order: Order, *, posted_at: datetime) -> bool:
    """For an order above the buyer's e-mail threshold, record its public confirmation; True if
    the private link was not clicked yet, so the order waits for it.

    The record is a conditional UPDATE, as is the click's (``order_email_confirm``): the row
    lock orders the two, so whichever comes second sees the other and confirms.
    """
    if not order.email_confirm_required:
        return False
    recorded = Order.objects.filter(
        pk=order.pk, status=OrderStatus.PENDING, email_confirmed_at__isnull=True
    ).update(post_confirmed_at=posted_at)
    if recorded:
        return True
    order.refresh_from_db()  # clicked meanwhile (or no longer pending): confirm or refuse now
    return False


def _expire(batch: Batch, order: Order, *, reason: str) -> None:
    """Expire a pending order now (its campaign row is already locked) and release its unit."""
    released = order_release(
        order=order, transition="expire", now=batch.now, data={"reason": reason}
    )
    if released is not None:
        batch.events.append(released)
        batch.notifications.append(
            notification(
                key=f"expired:{order.pk}",
                cardholder=order.cardholder,
                kind="expired",
                order=order,
                message=messages.email_expired(order=order, cardholder=order.cardholder),
            )
        )
