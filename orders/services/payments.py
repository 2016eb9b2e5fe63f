"""Running the payment outbox: authorize after confirmation, capture, void (DESIGN §5.5).

An operation is claimed by compare-and-set (``pending`` to ``processing``, with a lease that
lapses if the worker dies), the gateway is called outside any transaction with the operation's
idempotency key, and the result is applied in one transaction. A retried call is charged once.

An order can be cancelled while its authorization is on the way. So an authorization is only
sent for an order still ``confirmed``, and one approved for an order that meanwhile left that
state is voided, never left holding the buyer's money.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.models import Card
from catalog.models import Campaign
from orders import messages
from orders.models import (
    CancelReason,
    Notification,
    Order,
    OrderStatus,
    OutboxStatus,
    PaymentOperation,
    PaymentOperationKind,
)
from orders.payments import gateway
from orders.payments.base import GatewayError, GatewayResult
from orders.services.common import (
    event,
    notification,
    order_release,
    order_transition,
    payment_operation,
)
from orders.services.lifecycle import order_cancel
from social.models import ReplyPriority
from social.services import ReplyDraft, replies_queue

logger = logging.getLogger(__name__)
CLAIM_SECONDS = 120
MAX_ATTEMPTS = 10


def payment_operations_due(*, now: datetime, limit: int = 100) -> list[int]:
    """Ids of operations to run now: pending and due, or processing with a lapsed claim."""
    return list(
        PaymentOperation.objects.filter(
            Q(status=OutboxStatus.PENDING, next_attempt_at__isnull=True)
            | Q(status=OutboxStatus.PENDING, next_attempt_at__lte=now)
            | Q(status=OutboxStatus.PROCESSING, claimed_until__lt=now)
        )
        .order_by("id")
        .values_list("pk", flat=True)[:limit]
    )


def payment_operation_run(*, operation_id: int, now: datetime) -> str:
    """Run one payment operation; returns its status afterwards (``done``, ``pending`` for a
    retry with backoff, ``failed``, or ``busy`` when another worker holds it).

    An authorization for an order that is no longer ``confirmed`` is not sent (``done``, result
    ``skipped``). One that still fails after ``MAX_ATTEMPTS`` declines the order, releasing its
    unit and telling the buyer, rather than holding the unit forever.
    """
    # The lease is stamped with the clock at claim time: ``now`` may be a stage's start, and a
    # long stage would otherwise hand out leases that have already lapsed.
    claimed_at = timezone.now()
    claimed = PaymentOperation.objects.filter(
        Q(status=OutboxStatus.PENDING)
        | Q(status=OutboxStatus.PROCESSING, claimed_until__lt=claimed_at),
        pk=operation_id,
    ).update(
        status=OutboxStatus.PROCESSING, claimed_until=claimed_at + timedelta(seconds=CLAIM_SECONDS)
    )
    if not claimed:
        return "busy"
    op = PaymentOperation.objects.select_related("order__card").get(pk=operation_id)
    order = op.order
    if op.operation == PaymentOperationKind.AUTHORIZE and not _authorization_sendable(
        order_id=order.pk, now=now
    ):
        _finish(op=op, result="skipped", reference="")
        return str(OutboxStatus.DONE)
    try:
        if op.operation == PaymentOperationKind.AUTHORIZE:
            result = gateway().authorize(
                token=order.card.token,
                amount=order.total,
                currency=order.currency,
                idempotency_key=op.idempotency_key,
            )
        elif op.operation == PaymentOperationKind.CAPTURE:
            result = gateway().capture(
                reference=order.payment_reference,
                amount=order.total,
                currency=order.currency,
                idempotency_key=op.idempotency_key,
            )
        else:
            result = gateway().void(
                reference=order.payment_reference, idempotency_key=op.idempotency_key
            )
    except GatewayError as exc:
        return _retry_later(op=op, error=str(exc), now=now)
    except Exception as exc:  # a gateway bug must not hold the unit: retried, then given up
        logger.exception("payment operation %s failed unexpectedly", op.pk)
        return _retry_later(op=op, error=f"unexpected {type(exc).__name__}", now=now)
    if op.operation == PaymentOperationKind.CAPTURE and not result.approved:
        # Money not taken for a shipped order (an expired or cancelled authorization): loud.
        logger.error("capture of order %s refused: %s", order.pk, result.decline_code)
        event(
            order=order,
            kind="capture_failed",
            now=now,
            data={"code": result.decline_code},
        ).save()
    with transaction.atomic():
        if op.operation == PaymentOperationKind.AUTHORIZE:
            _apply_authorization(order_id=order.pk, result=result, now=now)
        _finish(
            op=op,
            result="approved" if result.approved else result.decline_code or "declined",
            reference=result.reference,
        )
    return str(OutboxStatus.DONE)


def _authorization_sendable(*, order_id: int, now: datetime) -> bool:
    """Whether an order's authorization may go to the gateway: the order is still confirmed and
    its card still on file. The card row is locked for the check, so a card removal that is
    committing (it cancels the order in its transaction) is waited for and seen; a card taken
    off file without one (by an operator) cancels the order here, releasing its unit. A
    lockdown that commits after this check, while the call is on its way, cancels the order and
    the approval is voided (``_apply_authorization``). Locks: the card, then the campaign."""
    with transaction.atomic():
        card_id = Order.objects.values_list("card_id", flat=True).get(pk=order_id)
        # NO KEY: deciders inserting orders that reference the card are not held up.
        on_file = Card.objects.select_for_update(no_key=True).filter(
            pk=card_id, removed_at__isnull=True
        )
        card_on_file = bool(list(on_file.values_list("pk", flat=True)))
        if Order.objects.values_list("status", flat=True).get(pk=order_id) != (
            OrderStatus.CONFIRMED
        ):
            return False
        if card_on_file:
            return True
        order_cancel(
            order_id=order_id, now=now, actor_label="pipeline", reason=CancelReason.CARD_REMOVED
        )
    return False


def _finish(*, op: PaymentOperation, result: str, reference: str) -> None:
    # Only while still ours: a worker whose lease lapsed and was taken over writes nothing.
    PaymentOperation.objects.filter(pk=op.pk, status=OutboxStatus.PROCESSING).update(
        status=OutboxStatus.DONE,
        attempts=op.attempts + 1,
        reference=reference,
        result=result,
        last_error="",
    )


def _retry_later(*, op: PaymentOperation, error: str, now: datetime) -> str:
    """Back off exponentially (capped at an hour); after the last attempt, give up, and for an
    authorization decline the order so that its unit and the buyer are not kept waiting."""
    attempts = op.attempts + 1
    status = OutboxStatus.FAILED if attempts >= MAX_ATTEMPTS else OutboxStatus.PENDING
    with transaction.atomic():
        ours = PaymentOperation.objects.filter(pk=op.pk, status=OutboxStatus.PROCESSING).update(
            status=status,
            attempts=attempts,
            last_error=error[:500],
            next_attempt_at=now + timedelta(seconds=min(3600, 2**attempts)),
        )
        if not ours:
            return "busy"  # the claim lapsed and another worker holds the operation now
        if status == OutboxStatus.FAILED and op.operation == PaymentOperationKind.AUTHORIZE:
            _apply_authorization(
                order_id=op.order_id,
                result=GatewayResult(
                    approved=False, reference="", decline_code=messages.GATEWAY_UNAVAILABLE
                ),
                now=now,
            )
    return str(status)


def _apply_authorization(*, order_id: int, result: GatewayResult, now: datetime) -> None:
    """Approved: the order is paid and its shipment scheduled; declined: the order is declined,
    its unit released and the buyer told. An approval for an order no longer confirmed (it was
    cancelled meanwhile) is voided through the outbox; a decline for one changes nothing."""
    # Campaign before order, as everywhere: the order's status cannot change under this lock.
    campaign_id = Order.objects.values_list("campaign_id", flat=True).get(pk=order_id)
    Campaign.objects.select_for_update().filter(pk=campaign_id).first()
    order = Order.objects.select_related("cardholder__user", "merchant").get(pk=order_id)
    cardholder = order.cardholder
    if result.approved:
        if not order_transition(
            order=order, transition="pay", fields={"payment_reference": result.reference}
        ):
            if order.status not in (OrderStatus.CANCELLED, OrderStatus.DECLINED):
                return  # applied already (another worker took over the lapsed claim)
            # Cancelled while the authorization was on its way: give the hold back.
            Order.objects.filter(pk=order.pk).update(payment_reference=result.reference)
            PaymentOperation.objects.bulk_create(
                [payment_operation(order=order, operation=PaymentOperationKind.VOID)],
                ignore_conflicts=True,
            )
            return
        schedule = import_string(settings.HASHCART["ORDER_PAID_HANDLER"])
        shipment = schedule(order=order, now=now)
        event(
            order=order,
            kind="paid",
            now=now,
            from_status=OrderStatus.CONFIRMED,
            to_status=OrderStatus.PAID,
            data={
                "ship_by": shipment.ship_by.isoformat(),
                "promised_delivery": shipment.promised_delivery.isoformat(),
            },
        ).save()
        reply_text = messages.reply_paid(order=order)
        message = messages.email_paid(
            order=order, cardholder=cardholder, promised=shipment.promised_delivery
        )
        kind = "paid"
    else:
        released = order_release(
            order=order, transition="decline", now=now, data={"code": result.decline_code}
        )
        if released is None:
            return
        released.save()
        reply_text = messages.reply_declined(order=order)
        message = messages.email_declined(
            order=order, cardholder=cardholder, code=result.decline_code
        )
        kind = "declined"
    if order.purchase_post is not None:
        replies_queue(
            drafts=[
                ReplyDraft(
                    in_reply_to=order.purchase_post,
                    kind=kind,
                    text=reply_text,
                    priority=ReplyPriority.RESULT,
                )
            ]
        )
    Notification.objects.bulk_create(
        [
            notification(
                key=f"{kind}:{order.pk}",
                cardholder=cardholder,
                kind=kind,
                order=order,
                message=message,
            )
        ],
        ignore_conflicts=True,
    )
