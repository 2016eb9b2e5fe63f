"""Reminders: one private e-mail before a confirmation window closes (DESIGN §3.7).

A periodic sweep (``orders_remind_due``, the beat's ``remind-orders`` and the ``remind_orders``
command) queues, for each pending order whose window closes within
``HASHCART["REMINDER_MINUTES"]`` (when windows last longer than that), an e-mail with the code and
the time left. Never twice: the e-mail's key (``reminder:<order id>``) is unique, so sweeps
running at once queue it once.
Never for an order that is no longer pending: the sweep reads only pending ones, and the
sender checks again before sending (``reminder_still_due``), so an order confirmed, cancelled
or expired after its reminder was queued gets none.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef

from orders import messages
from orders.models import Notification, Order, OrderStatus
from orders.services.common import notification

REMINDER = "reminder"  # the e-mail's kind


def orders_remind_due(*, now: datetime, limit: int = 1000) -> int:
    """Queue the reminders of pending orders whose window closes after ``now`` and within
    ``REMINDER_MINUTES``, not reminded yet (at most ``limit``, the soonest first); returns how
    many it found (those a concurrent sweep queued meanwhile are not queued again). Locks
    nothing: one INSERT that ignores the keys already queued."""
    minutes = settings.HASHCART["REMINDER_MINUTES"]
    if settings.HASHCART["CONFIRMATION_WINDOW_MINUTES"] <= minutes:
        return 0  # a window no longer than the reminder's lead: the request is as recent
    horizon = now + timedelta(minutes=minutes)
    reminded = Notification.objects.filter(order=OuterRef("pk"), kind=REMINDER)
    due = list(
        Order.objects.filter(
            ~Exists(reminded),
            status=OrderStatus.PENDING,
            expires_at__gt=now,
            expires_at__lte=horizon,
        )
        .select_related("campaign", "cardholder__user")
        .order_by("expires_at", "id")[:limit]
    )
    if not due:
        return 0
    created = Notification.objects.bulk_create(
        [
            notification(
                key=f"{REMINDER}:{order.pk}",
                cardholder=order.cardholder,
                kind=REMINDER,
                order=order,
                message=messages.email_reminder(
                    order=order,
                    cardholder=order.cardholder,
                    prefix=order.campaign.confirm_prefix,
                    now=now,
                ),
            )
            for order in due
        ],
        ignore_conflicts=True,
    )
    return len(created)


def reminder_still_due(message: Notification) -> bool:
    """False for a reminder whose order is no longer pending (the sender then drops it)."""
    if message.kind != REMINDER or message.order_id is None:
        return True
    return Order.objects.filter(pk=message.order_id, status=OrderStatus.PENDING).exists()
