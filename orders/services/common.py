"""Small writes shared by the order services. Each runs in the caller's transaction."""

from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.html import escape
from django.utils.module_loading import import_string

from accounts.models import Cardholder
from catalog.services import stock_release
from core.fsm import transition_save
from core.lengths import EMAIL_SUBJECT_MAX_LENGTH, fit
from orders.messages import order_page_line, order_page_url
from orders.models import Notification, Order, OrderEvent, OrderStatus, PaymentOperation
from orders.models.order import STAGE_OF_TRANSITION
from orders.services.webhooks.events import order_events_record

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


def events_save(*, events: list[OrderEvent], now: datetime) -> None:
    """Save audit rows and record the webhook events they are (``orders.services.webhooks``:
    order, return and dispute events), in the caller's transaction: the change, its audit row
    and its webhook commit or roll back together. Every writer of an audit row of a kind that
    is a webhook event (``ORDER_EVENT_KINDS``) saves it here, or, for a batch's bulk insert,
    hands the saved rows to ``order_events_record``."""
    if len(events) == 1:
        events[0].save()
    else:
        OrderEvent.objects.bulk_create(events)
    order_events_record(events=events, now=now)


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
    subject (it names the product) is cut with an ellipsis. ``html``: an HTML alternative part.

    An e-mail about an ``order`` always links the buyer's page of it: the link is added at the
    end of the text (and of the HTML part) unless the message already carries it."""
    subject, body = message
    if order is not None:
        url = order_page_url(order.pk)
        if url not in body:
            body = body.rstrip("\n") + "\n" + order_page_line(order.pk)
        if html and url not in html:
            link = f'<p><a href="{escape(url)}">Your order\'s page</a> (sign in to see it)</p>'
            at = html.rfind("</body>")
            html = html[:at] + link + html[at:] if at >= 0 else html + link
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
    changing nothing, if it already happened, another one did, or another worker won. A
    transition that reaches a stage of the sale (paid, shipped, delivered) records it in the
    same UPDATE (``Order.furthest_stage``)."""
    stage = STAGE_OF_TRANSITION.get(transition)
    if stage is not None:
        fields = {**fields, "furthest_stage": stage}
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
    give its units back (its quantity, of its variant): exactly once, because only the call that
    wins the compare-and-set on the status releases. The caller holds the campaign's row lock
    (campaign before order).

    Returns the audit row to save (unsaved, so batches can bulk-create), or None if the order
    had already left that state.
    """
    previous = order.status
    if not order_transition(order=order, transition=transition, fields={}):
        return None
    unit_released(campaign_id=order.campaign_id, units=order.quantity, variant_id=order.variant_id)
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


def unit_released(*, campaign_id: int, units: int = 1, variant_id: int | None = None) -> None:
    """Give an order's ``units`` (of its ``variant_id``) back to the campaign
    (``catalog.services.stock_release``: the caller won the order's transition out of a
    stock-holding state, or its restock) and ask for the first waitlisters to be promoted once
    the transaction commits. Every release of orders comes here, so none is missed by the
    waitlist."""
    stock_release(campaign_id=campaign_id, units=units, variant_id=variant_id)
    waitlist_promote_soon(campaign_ids=[campaign_id])


def waitlist_promote_soon(*, campaign_ids: list[int]) -> None:
    """Ask for a promotion on these campaigns (``WAITLIST_PROMOTE_HANDLER``: a task) once the
    caller's transaction commits, so that promoting never fails or slows the release itself;
    a lost request is made good by the expiry stage's sweep (``waitlists_promote_due``)."""
    handler = import_string(settings.HASHCART["WAITLIST_PROMOTE_HANDLER"])
    transaction.on_commit(partial(handler, campaign_ids=sorted(set(campaign_ids))))


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
