"""Order transitions after the decision: the confirmation window, expiry, cancellation.

Each transition is a compare-and-set on the status (``order_transition``), with its audit row,
its stock release and its outbox rows in the same transaction; doing it twice does nothing the
second time. Campaign rows are locked before order rows, as in ``orders.services.decide``.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Min, OuterRef, Subquery

from accounts.models import PurchaseControls
from catalog.models import Campaign
from orders import messages
from orders.models import (
    Notification,
    Order,
    OrderStatus,
    PaymentOperationKind,
)
from orders.services.common import notification, order_release, payment_operation
from social.models import FeedCursor, FeedKind, Post, Reply, ReplyStatus


def order_windows_open() -> int:
    """Start the confirmation window of pending orders whose confirmation request is now posted:
    ``expires_at`` = the reply's ``sent_at`` + the window (DESIGN §3.3). Returns how many.

    Idempotent, and safe to run as a sweep: it only fills ``expires_at`` where it is empty.
    """
    window = timedelta(minutes=settings.HASHCART["CONFIRMATION_WINDOW_MINUTES"])
    sent = Reply.objects.filter(
        in_reply_to_id=OuterRef("purchase_post_id"),
        kind="confirmation_request",
        status=ReplyStatus.SENT,
    ).values("sent_at")[:1]
    opened = 0
    candidates = (
        Order.objects.filter(status=OrderStatus.PENDING, expires_at__isnull=True)
        .annotate(sent_at=Subquery(sent))
        .exclude(sent_at=None)
    )
    for order_id, sent_at in candidates.values_list("pk", "sent_at"):
        opened += Order.objects.filter(
            pk=order_id, status=OrderStatus.PENDING, expires_at__isnull=True
        ).update(reply_posted_at=sent_at, expires_at=sent_at + window)
    return opened


def expiry_horizon(*, account_id: int, now: datetime) -> datetime:
    """Pending orders of this account's posts whose ``expires_at`` is before this may expire.

    The later of: the feed's high-water mark, held back to the oldest post not yet decided (a
    confirmation read but undecided must still count), and now minus the maximum feed lag.
    """
    lag_floor = now - timedelta(minutes=settings.HASHCART["MAX_FEED_LAG_MINUTES"])
    cursor = FeedCursor.objects.filter(account_id=account_id, feed=FeedKind.MENTIONS).first()
    mark = cursor.high_water_mark if cursor else None
    undecided = Post.objects.filter(account_id=account_id, outcome="").aggregate(
        oldest=Min("posted_at")
    )["oldest"]
    if mark is not None and undecided is not None:
        mark = min(mark, undecided - timedelta(microseconds=1))
    return max(mark, lag_floor) if mark is not None else lag_floor


def orders_expire_due(*, now: datetime, limit: int = 1000) -> int:
    """Expire pending orders whose window closed behind the feed's horizon; release their units.

    Returns how many expired. A confirmation that arrives late is never lost: the horizon waits
    for the feed (``expiry_horizon``). Running it twice expires nothing more.
    """
    expired = 0
    accounts = (
        Post.objects.filter(order__status=OrderStatus.PENDING, order__expires_at__isnull=False)
        .values_list("account_id", flat=True)
        .distinct()
    )
    for account_id in list(accounts):
        horizon = expiry_horizon(account_id=account_id, now=now)
        due = list(
            Order.objects.filter(
                status=OrderStatus.PENDING,
                expires_at__lt=horizon,
                purchase_post__account_id=account_id,
            )
            .order_by("campaign_id", "id")
            .values_list("pk", flat=True)[:limit]
        )
        for order_id in due:
            expired += order_expire(order_id=order_id, now=now, reason="window closed")
    return expired


def order_expire(*, order_id: int, now: datetime, reason: str) -> int:
    """Expire one pending order and release its unit; 1 if this call expired it, else 0."""
    with transaction.atomic():
        order = Order.objects.select_related("cardholder__user").get(pk=order_id)
        Campaign.objects.select_for_update().filter(pk=order.campaign_id).first()
        released = order_release(order=order, transition="expire", now=now, data={"reason": reason})
        if released is None:
            return 0
        released.save()
        notification(
            key=f"expired:{order.pk}",
            cardholder=order.cardholder,
            kind="expired",
            order=order,
            message=messages.email_expired(order=order, cardholder=order.cardholder),
        ).save()
    return 1


def order_cancel(
    *,
    order_id: int,
    now: datetime,
    actor_label: str,
    pause_purchasing: bool,
    actor_id: int | None = None,
) -> bool:
    """Cancel an order that is pending, confirmed or paid; True if this call cancelled it.

    Releases its unit; a paid order's authorization is voided through the payment outbox. With
    ``pause_purchasing`` (the "Not me" link) the cardholder's buying by post is paused too.
    Locks: purchase controls, then the campaign, then the order.
    """
    with transaction.atomic():
        order = Order.objects.select_related("cardholder__user").get(pk=order_id)
        if pause_purchasing:
            PurchaseControls.objects.select_for_update().filter(
                cardholder_id=order.cardholder_id
            ).update(paused=True, paused_reason=f"'Not me' on order #{order.confirmation_code}")
        Campaign.objects.select_for_update().filter(pk=order.campaign_id).first()
        released = order_release(
            order=order,
            transition="cancel",
            now=now,
            actor_label=actor_label,
            actor_id=actor_id,
            data={"paused_purchasing": pause_purchasing},
        )
        if released is None:
            return False
        released.save()
        if released.from_status == OrderStatus.PAID:
            payment_operation(order=order, operation=PaymentOperationKind.VOID).save()
        Notification.objects.bulk_create(
            [
                notification(
                    key=f"cancelled:{order.pk}",
                    cardholder=order.cardholder,
                    kind="cancelled",
                    order=order,
                    message=messages.email_cancelled(order=order, cardholder=order.cardholder),
                )
            ],
            ignore_conflicts=True,
        )
    return True
