"""Refunds: money given back on a captured order, in full or in part (DESIGN §3.4, §5.5).

Staff ask for a refund (``order_refund``, from the back office or the API): under the order's
lock the amount is reserved on the order by one conditional UPDATE (``refund_requested_total``,
backed by the ``order_refunds_within_total`` check constraint), so that refunds asked for at
once can never add up to more than was captured. The refund is a ``Refund`` row and its
payment operation, written in the same transaction with an audit row; the payment outbox runs
it (``orders.services.payments``: claim, lease, backoff, a lost answer looked up by its key)
and applies the gateway's answer here: ``refund_apply`` (the order's refunded total and status,
its audit row, the buyer's e-mail) or ``refund_mark_failed``.

The unit goes back to stock only when staff say the goods came back (``restock``): once per
order, however many refunds say so.
"""

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.exceptions import ApplicationError
from orders import messages
from orders.models import (
    REFUNDABLE_STATUSES,
    Order,
    PaymentOperation,
    PaymentOperationKind,
    Refund,
    RefundStatus,
)
from orders.payments.base import GatewayResult
from orders.services.common import event, events_save, order_transition, unit_released
from orders.services.locks import order_lock
from orders.services.notifications import email_queue
from orders.services.receipts import credit_note_issue

REASON_MAX_LENGTH = Refund._meta.get_field("reason").max_length or 500
CENT = Decimal("0.01")


def order_refund(
    *,
    order_id: int,
    amount: Decimal,
    reason: str,
    restock: bool,
    now: datetime,
    actor_label: str,
    actor_id: int | None = None,
) -> Refund:
    """Ask for a refund of ``amount`` on a captured order (shipped, delivered or partially
    refunded) and queue it in the payment outbox (run it with ``payments_run_task`` or the
    payments sweep after the commit). With ``restock`` the unit goes back to stock now, unless
    an earlier refund put it back already.

    Raises ``ApplicationError`` (a message for staff) when the order is not refundable, the
    amount is not a positive number of cents, or it is more than is left to refund (captured
    total less every refund asked for, failed ones included: they may still be retried); and
    ``Order.DoesNotExist``. Locks the order's campaign, then reads the order (``order_lock``);
    its own transaction.
    """
    reason = reason.strip()
    if not reason or len(reason) > REASON_MAX_LENGTH:
        raise ApplicationError(f"A refund needs a reason of 1 to {REASON_MAX_LENGTH} characters.")
    with transaction.atomic():
        order = order_lock(order_id)
        if order.status not in REFUNDABLE_STATUSES:
            raise ApplicationError(messages.refund_refused_status(order=order))
        if not amount.is_finite() or amount <= 0 or amount != amount.quantize(CENT):
            raise ApplicationError(messages.refund_refused_not_positive(order=order))
        # The reservation is the rule: one conditional UPDATE, which the check constraint backs.
        reserved = Order.objects.filter(
            pk=order.pk, refund_requested_total__lte=F("total") - amount
        ).update(refund_requested_total=F("refund_requested_total") + amount, updated_at=now)
        if not reserved:
            left = order.total - order.refund_requested_total
            raise ApplicationError(
                messages.refund_refused_amount(order=order, amount=amount, left=left)
            )
        number = Refund.objects.filter(order=order).count() + 1
        refund = Refund.objects.create(
            order=order,
            number=number,
            amount=amount,
            reason=reason,
            requested_by_id=actor_id,
            actor_label=actor_label,
            restock=restock,
            idempotency_key=f"order-{order.pk}-refund-{number}",
        )
        PaymentOperation.objects.create(
            order=order,
            operation=PaymentOperationKind.REFUND,
            refund=refund,
            idempotency_key=refund.idempotency_key,
        )
        restocked = restock and _restock(order=order, now=now)
        event(
            order=order,
            kind="refund_requested",
            now=now,
            actor_label=actor_label,
            actor_id=actor_id,
            data={
                "refund": refund.number,
                "amount": str(amount),
                "reason": reason,
                "restock": restock,
                "restocked": restocked,
            },
        ).save()
    return refund


def _restock(*, order: Order, now: datetime) -> bool:
    """Give the order's unit back to stock, once per order (compare-and-set on
    ``restocked_at``); the caller holds the campaign's lock. True if this call gave it back."""
    if not Order.objects.filter(pk=order.pk, restocked_at__isnull=True).update(restocked_at=now):
        return False
    unit_released(campaign_id=order.campaign_id, units=order.quantity, variant_id=order.variant_id)
    return True


def refund_started(*, refund_id: int) -> None:
    """The payment outbox claimed the refund's operation: ``processing`` (a failed one being
    retried too)."""
    Refund.objects.filter(
        pk=refund_id, status__in=[RefundStatus.REQUESTED, RefundStatus.FAILED]
    ).update(status=RefundStatus.PROCESSING, updated_at=timezone.now())


def refund_apply(*, refund_id: int, result: GatewayResult, now: datetime) -> None:
    """The gateway gave the refund (``result`` approved): record it once, in the caller's
    transaction (compare-and-set on the refund's status: applying it again does nothing). The
    order's ``refunded_total`` grows by the amount and the order becomes ``refunded`` (all of
    the total given back) or ``partially_refunded``; an audit row; the buyer is e-mailed the
    amount and the card's last four digits. Locks the campaign, then reads the order."""
    order = order_lock(Refund.objects.values_list("order_id", flat=True).get(pk=refund_id))
    if (
        not Refund.objects.filter(pk=refund_id)
        .exclude(status=RefundStatus.SUCCEEDED)
        .update(
            status=RefundStatus.SUCCEEDED,
            reference=result.reference,
            succeeded_at=now,
            updated_at=now,
        )
    ):
        return
    refund = Refund.objects.get(pk=refund_id)
    Order.objects.filter(pk=order.pk).update(refunded_total=F("refunded_total") + refund.amount)
    order.refresh_from_db(fields=["refunded_total"])
    previous = str(order.status)
    transition = "refund_fully" if order.refunded_total >= order.total else "refund_partly"
    # Only the carrier's delivery (shipped to delivered, by compare-and-set without this lock)
    # can move the order meanwhile: then the transition starts again from delivered.
    for _ in range(2):
        if order_transition(order=order, transition=transition, fields={}):
            break
    events_save(
        events=[
            event(
                order=order,
                kind="refunded" if transition == "refund_fully" else "partially_refunded",
                now=now,
                from_status=previous,
                to_status=str(order.status),
                data={
                    "refund": refund.number,
                    "amount": str(refund.amount),
                    "refunded_total": str(order.refunded_total),
                    "reference": result.reference,
                },
            )
        ],
        now=now,
    )
    # Numbered in this transaction, as the receipt was (the sequence's lock is the last taken).
    note = credit_note_issue(refund=refund, order=order, now=now)
    # A return waiting for this refund is done. (Imported here: returns ask refunds for money.)
    from orders.services.returns import return_refunded

    return_refunded(refund=refund, now=now)
    email_queue(
        key=f"refunded:{order.pk}:{refund.number}",
        cardholder=order.cardholder,
        kind="refunded",
        order=order,
        message=messages.email_refunded(
            order=order,
            cardholder=order.cardholder,
            amount=refund.amount,
            last4=order.card.last4,
            refunded_total=order.refunded_total,
            credit_note=note.reference,
        ),
    )


def refund_mark_failed(*, refund_id: int, error: str, now: datetime) -> None:
    """The refund's operation failed (refused by the gateway, or retries gave up): ``failed``
    with an audit row, in the caller's transaction. Its amount stays reserved on the order:
    ``retry_payments`` may still run it."""
    refund = Refund.objects.select_related("order").get(pk=refund_id)
    if (
        not Refund.objects.filter(pk=refund_id)
        .exclude(status=RefundStatus.SUCCEEDED)
        .update(status=RefundStatus.FAILED, updated_at=now)
    ):
        return
    event(
        order=refund.order,
        kind="refund_failed",
        now=now,
        data={"refund": refund.number, "amount": str(refund.amount), "error": error[:500]},
    ).save()
