"""Small writes shared by the order services. Each runs in the caller's transaction."""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from accounts.models import Cardholder
from catalog.services import stock_release
from core.fsm import transition_save
from core.lengths import EMAIL_SUBJECT_MAX_LENGTH, fit
from orders.models import Notification, Order, OrderEvent, OrderStatus, PaymentOperation

# The e-mail kind of a confirmation request sent privately (``orders.services.private``): its
# sending opens the order's window (``order_private_window_open``).
PRIVATE_REQUEST = "private_request"


def event(
    *,
    order: Order,
    kind: str,
    now: datetime,
    from_status: str = "",
    to_status: str = "",
    actor_label: str = "pipeline",
    actor_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> OrderEvent:
    """An unsaved audit row; callers save it or bulk-create many."""
    return OrderEvent(
        order=order,
        created_at=now,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        actor_label=actor_label,
        actor_id=actor_id,
        data=data or {},
    )


def notification(
    *,
    key: str,
    cardholder: Cardholder,
    kind: str,
    message: tuple[str, str],
    order: Order | None = None,
    html: str = "",
) -> Notification:
    """An unsaved e-mail to the cardholder's address. Queue one with
    ``orders.services.notifications.email_queue``; a batch bulk-creates many with
    ``ignore_conflicts``, so that a repeated decision e-mails once (``key`` is unique). A long
    subject (it names the product) is cut with an ellipsis. ``html``: an HTML alternative part."""
    subject, body = message
    return Notification(
        key=key,
        cardholder=cardholder,
        order=order,
        kind=kind,
        to_email=cardholder.user.email,
        subject=fit(subject, EMAIL_SUBJECT_MAX_LENGTH),
        body=body,
        html_body=html,
    )


def payment_operation(*, order: Order, operation: str) -> PaymentOperation:
    """An unsaved payment outbox row with its idempotency key."""
    return PaymentOperation(
        order=order, operation=operation, idempotency_key=f"order-{order.pk}-{operation}"
    )


def payment_operation_queue(*, order: Order, operation: str) -> None:
    """Queue the order's ``operation`` in the payment outbox once: a second call (a retried
    task, a second worker) finds the row its idempotency key already holds and adds nothing."""
    PaymentOperation.objects.bulk_create(
        [payment_operation(order=order, operation=operation)], ignore_conflicts=True
    )


def order_transition(*, order: Order, transition: str, fields: dict[str, Any]) -> bool:
    """Run an order's ``transition`` by compare-and-set (``core.fsm.transition_save``); False,
    changing nothing, if it already happened, another one did, or another worker won."""
    return transition_save(instance=order, transition=transition, fields=fields)


def order_release(
    *,
    order: Order,
    transition: str,
    now: datetime,
    data: dict[str, Any] | None = None,
    actor_label: str = "pipeline",
    actor_id: int | None = None,
) -> OrderEvent | None:
    """Take ``order`` off the stock-holding path by ``transition`` (expire, decline, cancel) and
    give its unit back: exactly once, because only the call that wins the compare-and-set on the
    status releases. The caller holds the campaign's row lock (campaign before order).

    Returns the audit row to save (unsaved, so batches can bulk-create), or None if the order
    had already left that state.
    """
    previous = order.status
    if not order_transition(order=order, transition=transition, fields={}):
        return None
    stock_release(campaign_id=order.campaign_id)
    return event(
        order=order,
        kind=str(order.status),
        now=now,
        from_status=previous,
        to_status=order.status,
        actor_label=actor_label,
        actor_id=actor_id,
        data=data,
    )


def order_confirm(
    *, order: Order, now: datetime, data: dict[str, Any]
) -> tuple[OrderEvent, PaymentOperation] | None:
    """Confirm a pending order (the caller holds its campaign's lock): returns its audit row and
    its authorization, unsaved, or None if it was no longer pending."""
    if not order_transition(order=order, transition="confirm", fields={"confirmed_at": now}):
        return None
    return (
        event(
            order=order,
            kind="confirmed",
            now=now,
            from_status="pending",
            to_status="confirmed",
            data=data,
        ),
        payment_operation(order=order, operation="authorize"),
    )


def confirmation_window() -> timedelta:
    return timedelta(minutes=settings.HASHCART["CONFIRMATION_WINDOW_MINUTES"])


def order_private_window_open(*, order_id: int, sent_at: datetime) -> int:
    """The order's confirmation request went out privately at ``sent_at`` (its e-mail was
    sent): its window runs from then (``expires_at``). Returns 1 if this call opened it.

    Compare-and-set: only a pending order whose request went privately and whose window is not
    open yet; the public request's posting never opens such an order's window
    (``orders.services.lifecycle.order_window_open``), so no window opens twice."""
    return Order.objects.filter(
        pk=order_id,
        status=OrderStatus.PENDING,
        request_private_at__isnull=False,
        expires_at__isnull=True,
    ).update(expires_at=sent_at + confirmation_window())
