"""Confirmation posts (``#<prefix><CODE>``, DESIGN §3.3).

``orders_for_confirmation`` reads, before any lock, the orders a batch's candidate codes may
refer to; ``decide_confirmations`` runs under the locks of those orders' campaigns (taken by
``orders.services.decide.purchases``), which every writer of an order's status takes first,
and reads the orders again under them: an order confirmed or cancelled by another worker
between the two reads gets no public answer. Confirming is one compare-and-set on the status
for the whole batch; expiring a late one (rare) is the order's own transition.
"""

from collections import defaultdict
from datetime import datetime

from django.db import DatabaseError
from django.db.models import Case, DateTimeField, Value, When
from django.utils import timezone

from orders import messages
from orders.models import Order, OrderEvent, OrderStatus
from orders.outcomes import PostOutcome
from orders.selectors import orders_still_buyable
from orders.services.common import event, notification, order_release, payment_operation
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
    that another worker confirmed or cancelled while this batch ran.

    The orders are read again under their campaigns' locks (and locked themselves), so what
    happened to them since ``orders_for_confirmation`` is seen; then every confirmation and
    every public confirmation of an order awaiting its e-mail click is one UPDATE each."""
    if not confirmations:
        return
    fresh = _orders_lock(orders)
    by_code: dict[str, list[Order]] = defaultdict(list)
    for candidate in fresh:
        by_code[candidate.confirmation_code].append(candidate)
    may_buy = orders_still_buyable(orders=fresh)
    confirming: dict[int, Order] = {}
    awaiting: dict[int, datetime] = {}
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
        order = next(
            (o for o in mine if o.status == OrderStatus.PENDING and o.pk not in confirming), None
        )
        if order is not None and order.pk not in may_buy:
            order = None  # the buyer locked the account down: nothing to confirm, no answer
        if order is not None and (order.expires_at is None or post.posted_at <= order.expires_at):
            if order.email_confirm_required and order.email_confirmed_at is None:
                # Recorded; the click (``order_email_confirm``, under the same lock) confirms.
                awaiting[order.pk] = post.posted_at
                batch.decide(
                    post,
                    PostOutcome.CONFIRM_AWAITING_EMAIL,
                    reply=messages.reply_confirm_email_pending(order=order),
                    priority=ReplyPriority.RESULT,
                )
            else:
                confirming[order.pk] = order
                batch.decide(post, PostOutcome.CONFIRMED)
                batch.events.append(confirmed_event(order, now=batch.now, post=post))
                batch.payments.append(payment_operation(order=order, operation="authorize"))
            continue
        if order is not None:
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
    _confirm_all(confirming, now=batch.now)
    _record_public_confirmations(awaiting)


def _orders_lock(orders: list[Order]) -> list[Order]:
    """``orders`` read again and locked (after their campaigns, DESIGN §5): their status cannot
    change until the batch commits."""
    if not orders:
        return []
    return list(
        Order.objects.select_for_update(of=("self",))
        .filter(pk__in=[o.pk for o in orders])
        .select_related("campaign", "cardholder__user")
        .order_by("-id")
    )


def confirmed_event(order: Order, *, now: datetime, post: Post) -> OrderEvent:
    return event(
        order=order,
        kind="confirmed",
        now=now,
        from_status=OrderStatus.PENDING,
        to_status=OrderStatus.CONFIRMED,
        data={"post": post.post_id},
    )


def _confirm_all(orders: dict[int, Order], *, now: datetime) -> None:
    """The ``confirm`` transition (pending to confirmed, declared on ``Order``) of locked
    pending orders, by compare-and-set on the status in one UPDATE."""
    if not orders:
        return
    done = Order.objects.filter(pk__in=list(orders), status=OrderStatus.PENDING).update(
        status=OrderStatus.CONFIRMED, confirmed_at=now, updated_at=timezone.now()
    )
    if done != len(orders):  # they are locked: only a writer that skipped the locks gets here
        raise DatabaseError(f"confirmed {done} of {len(orders)} locked pending orders")


def _record_public_confirmations(posted_at: dict[int, datetime]) -> None:
    """Record when each order above its buyer's e-mail threshold was confirmed by post, while
    its e-mail link is unclicked; the click sees it and confirms (``order_email_confirm``)."""
    if not posted_at:
        return
    Order.objects.filter(
        pk__in=list(posted_at), status=OrderStatus.PENDING, email_confirmed_at__isnull=True
    ).update(
        post_confirmed_at=Case(
            *(When(pk=pk, then=Value(at)) for pk, at in posted_at.items()),
            output_field=DateTimeField(),
        )
    )


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
