"""Running the payment outbox: authorize after confirmation, capture, void, refund (DESIGN §5.5).

An operation is claimed by compare-and-set (``pending`` to ``processing``, with a lease that
lapses if the worker dies), the gateway is called outside any transaction with the operation's
idempotency key, and the result is applied in one transaction. A retried call is charged once.

An order can be cancelled while its authorization is on the way. So an authorization is only
sent for an order still ``confirmed``, and one approved for an order that meanwhile left that
state is voided, never left holding the buyer's money.

Nothing gives up silently (issue 10, item 17). An attempt whose answer was lost (a timeout, an
error, a worker killed mid-call) leaves the authorization in doubt: the next attempt first asks
the gateway what it recorded under the key (``authorization_lookup``); a refund likewise
(``refund_lookup``), so that money is never given back twice. Failed calls are retried
with backoff (``HASHCART["OUTBOX"]["payments"]``, ``core.outbox``): an authorization for a
while, after which the order is declined (or paid, if the gateway did record it) and, if the
gateway cannot say, a void is queued that finds the hold by the same key; captures and voids
until the hold lapses; refunds (each its own operation, ``orders.services.refunds``) for a
while after they were asked for, and not before the order's capture is done. An operation that
gives up, or that the gateway refuses, is ``failed``: an ERROR line with its ids, counted by
``pipeline_status``, unhealthy ``/healthz``, retried by ``retry_payments``.
"""

import logging
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.services import card_on_file_lock
from core import outbox
from core.outbox import Lease
from orders import messages
from orders.models import (
    CancelReason,
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
    events_save,
    order_release,
    order_transition,
    payment_operation,
    payment_operation_queue,
)
from orders.services.lifecycle import order_cancel
from orders.services.locks import order_lock
from orders.services.notifications import email_queue
from orders.services.receipts import receipt_issue
from orders.services.refunds import refund_apply, refund_mark_failed, refund_started
from social.models import ReplyPriority
from social.services import ReplyDraft, replies_queue

logger = logging.getLogger(__name__)


def payment_operations_due(*, now: datetime, limit: int = 100) -> list[int]:
    """Ids of operations to run now: pending and due, or processing with a lapsed claim."""
    return list(
        PaymentOperation.objects.filter(
            outbox.claimable(
                now=now,
                free=Q(status=OutboxStatus.PENDING)
                & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)),
                held=Q(status=OutboxStatus.PROCESSING),
            )
        )
        .order_by("id")
        .values_list("pk", flat=True)[:limit]
    )


def payment_operation_run(*, operation_id: int, now: datetime) -> str:
    """Run one payment operation; returns its status afterwards (``done``, ``pending`` for a
    retry with backoff, ``failed``, or ``busy`` when another worker holds it).

    An authorization for an order that is no longer ``confirmed`` is not sent (``done``, result
    ``skipped``), unless an earlier attempt's answer was lost: then what the gateway recorded is
    applied (an approval for an order cancelled meanwhile is voided). One that still fails after
    ``payment_give_up_at`` is resolved by ``_authorization_give_up``. A capture or void
    the gateway refuses, or that fails until the hold lapses, is ``failed`` (ERROR logged).
    A refund waits for the order's capture; a retried one is first looked up by its key
    (``refund_lookup``); given, it is applied once (``refund_apply``); refused or given up,
    it is ``failed`` like a capture (``refund_mark_failed``).
    """
    # The lease is stamped with the clock at claim time: ``now`` may be a stage's start, and a
    # long stage would otherwise hand out leases that have already lapsed.
    lease = outbox.claim(
        PaymentOperation.objects.filter(pk=operation_id),
        now=timezone.now(),
        lease=outbox.policy("payments").lease,
        free=Q(status=OutboxStatus.PENDING),
        held=Q(status=OutboxStatus.PROCESSING),
        # Counted when claimed: a call cut short by a crash counts.
        values={"status": OutboxStatus.PROCESSING, "attempts": F("attempts") + 1},
    )
    if lease is None:
        return "busy"
    op = PaymentOperation.objects.select_related("order__card", "refund").get(pk=operation_id)
    order = op.order
    # An earlier attempt may have reached the gateway and lost its answer.
    in_doubt = (
        op.operation in (PaymentOperationKind.AUTHORIZE, PaymentOperationKind.REFUND)
        and op.attempts > 1
    )
    if op.refund is not None:
        refund_started(refund_id=op.refund.pk)
        if not _captured(order_id=order.pk):
            # A refund gives back captured money: it waits for the capture (its own retries).
            return _retry_later(op=op, lease=lease, error="the capture is not done yet", now=now)
    if (
        op.operation == PaymentOperationKind.AUTHORIZE
        and not in_doubt
        and not _authorization_sendable(order_id=order.pk, now=now)
    ):
        _finish(op=op, lease=lease, result="skipped", reference="")
        return str(OutboxStatus.DONE)
    try:
        if op.operation == PaymentOperationKind.AUTHORIZE:
            found = _authorization_found(op=op) if in_doubt else None
            if (
                found is None
                and in_doubt
                and not _authorization_sendable(order_id=order.pk, now=now)
            ):
                _finish(op=op, lease=lease, result="skipped", reference="")  # never sent
                return str(OutboxStatus.DONE)
            result = found or gateway().authorize(
                token=order.card.token,
                amount=order.total,
                currency=order.currency,
                idempotency_key=op.idempotency_key,
                order_id=order.pk,
            )
        elif op.refund is not None:
            found = (
                gateway().refund_lookup(
                    reference=order.payment_reference, idempotency_key=op.idempotency_key
                )
                if in_doubt
                else None
            )
            result = found or gateway().refund(
                reference=order.payment_reference,
                amount=op.refund.amount,
                currency=order.currency,
                idempotency_key=op.idempotency_key,
                order_id=order.pk,
            )
        elif op.operation == PaymentOperationKind.CAPTURE:
            result = gateway().capture(
                reference=order.payment_reference,
                amount=order.total,
                currency=order.currency,
                idempotency_key=op.idempotency_key,
            )
        else:
            reference = order.payment_reference or _held_reference(order=order)
            if not reference:
                _finish(op=op, lease=lease, result="nothing_held", reference="")
                return str(OutboxStatus.DONE)
            result = gateway().void(reference=reference, idempotency_key=op.idempotency_key)
    except GatewayError as exc:
        return _retry_later(op=op, lease=lease, error=str(exc), now=now)
    except Exception as exc:  # a gateway bug must not hold the unit: retried, then given up
        logger.exception("payment operation %s failed unexpectedly", op.pk)
        return _retry_later(op=op, lease=lease, error=f"unexpected {type(exc).__name__}", now=now)
    if op.operation != PaymentOperationKind.AUTHORIZE and not result.approved:
        # Money not taken for a shipped order, a hold not released, or money not given back:
        # loud, and kept for ops.
        refused = f"refused: {result.decline_code or 'no reason given'}"
        return _fail(op=op, lease=lease, error=refused, now=now)
    with transaction.atomic():
        if op.operation == PaymentOperationKind.AUTHORIZE:
            _apply_authorization(order_id=order.pk, result=result, now=now)
        elif op.refund is not None:
            refund_apply(refund_id=op.refund.pk, result=result, now=now)
        _finish(
            op=op,
            lease=lease,
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
        card_on_file = card_on_file_lock(card_id=card_id)
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


def _captured(*, order_id: int) -> bool:
    return PaymentOperation.objects.filter(
        order_id=order_id, operation=PaymentOperationKind.CAPTURE, status=OutboxStatus.DONE
    ).exists()


def _row(op: PaymentOperation) -> QuerySet[PaymentOperation]:
    return PaymentOperation.objects.filter(pk=op.pk)


def _finish(*, op: PaymentOperation, lease: Lease, result: str, reference: str) -> None:
    # Only while still ours: a worker whose lease lapsed and was taken over writes nothing.
    lease.release(
        _row(op),
        status=OutboxStatus.DONE,
        reference=reference,
        result=result,
        last_error="",
    )


def _authorization_found(*, op: PaymentOperation) -> GatewayResult | None:
    """What the gateway recorded under the authorization's key (raises ``GatewayError``)."""
    return gateway().authorization_lookup(idempotency_key=op.idempotency_key, order_id=op.order_id)


def _held_reference(*, order: Order) -> str:
    """For a void of an order declined while its authorization was in doubt (no reference
    stored): the reference of a hold the gateway recorded under the authorization's key, or ""
    when nothing is held. Raises ``GatewayError`` when the gateway cannot say."""
    key = payment_operation(order=order, operation=PaymentOperationKind.AUTHORIZE).idempotency_key
    found = gateway().authorization_lookup(idempotency_key=key, order_id=order.pk)
    return found.reference if found is not None and found.approved else ""


def payment_give_up_at(*, op: PaymentOperation) -> datetime:
    """When retrying ``op`` stops (``HASHCART["OUTBOX"]["payments"]``, by kind): an
    authorization that long after it was queued; a capture or void when the hold lapses, that
    long after the order's authorization was queued (a bound that errs early, never late); a
    refund that long after it was asked for."""
    policy = outbox.policy("payments")
    since = op.created_at
    if op.operation in (PaymentOperationKind.CAPTURE, PaymentOperationKind.VOID):
        authorized = (
            PaymentOperation.objects.filter(
                order_id=op.order_id, operation=PaymentOperationKind.AUTHORIZE
            )
            .values_list("created_at", flat=True)
            .first()
        )
        since = authorized or op.created_at
    give_up_at = policy.give_up_at(since, op.operation)
    if give_up_at is None:  # "never" would retry a capture past its hold, silently
        raise ImproperlyConfigured('HASHCART["OUTBOX"]["payments"] needs an age per operation')
    return give_up_at


def _retry_later(*, op: PaymentOperation, lease: Lease, error: str, now: datetime) -> str:
    """Back off exponentially (``HASHCART["OUTBOX"]["payments"]``) until
    ``payment_give_up_at``; then give up loudly."""
    give_up_at = payment_give_up_at(op=op)
    if now >= give_up_at:
        if op.operation == PaymentOperationKind.AUTHORIZE:
            return _authorization_give_up(op=op, lease=lease, error=error, now=now)
        gave_up = f"gave up after {op.attempts} attempts: {error}"
        return _fail(op=op, lease=lease, error=gave_up, now=now)
    ours = lease.release(
        _row(op),
        status=OutboxStatus.PENDING,
        last_error=error[:500],
        # The last try is at the deadline.
        next_attempt_at=outbox.policy("payments").retry_at(
            attempts=op.attempts, now=now, give_up_at=give_up_at
        ),
    )
    if not ours:
        return "busy"  # the claim lapsed and another worker holds the operation now
    logger.warning(
        "payment operation %s (%s of order %s) attempt %s failed, retrying: %s",
        op.pk,
        op.operation,
        op.order_id,
        op.attempts,
        error,
    )
    return str(OutboxStatus.PENDING)


def _fail(*, op: PaymentOperation, lease: Lease, error: str, now: datetime) -> str:
    """Mark ``op`` failed (only while ours) with an ERROR line naming its ids; a capture also
    leaves a ``capture_failed`` event on the order, a refund is marked failed with a
    ``refund_failed`` one. ``retry_payments`` takes it from there."""
    with transaction.atomic():
        ours = lease.release(
            _row(op),
            status=OutboxStatus.FAILED,
            result="failed",
            last_error=error[:500],
            updated_at=timezone.now(),
        )
        if not ours:
            return "busy"
        if op.operation == PaymentOperationKind.CAPTURE:
            event(order=op.order, kind="capture_failed", now=now, data={"error": error}).save()
        if op.refund is not None:
            refund_mark_failed(refund_id=op.refund.pk, error=error, now=now)
    logger.error(
        "payment operation %s (%s of order %s, merchant %s) failed: %s",
        op.pk,
        op.operation,
        op.order_id,
        op.order.merchant_id,
        error,
    )
    return str(OutboxStatus.FAILED)


def _authorization_give_up(*, op: PaymentOperation, lease: Lease, error: str, now: datetime) -> str:
    """The authorization got no usable answer in time. Ask the gateway once more what it
    recorded: an answer found is applied as if it had arrived (paid, or declined; an approval
    for an order no longer confirmed is voided). Otherwise the order is declined (unit released,
    buyer told) and, if the gateway could not even say, a void is queued that looks the hold up
    by the same key and releases it, retried for as long as a hold can last. The operation is
    ``failed`` unless the answer was found."""
    try:
        found = _authorization_found(op=op)
        unknown = False
    except Exception as exc:  # any failure to answer leaves the hold unknown: handled below
        found, unknown = None, True
        error = f"{error}; lookup: {exc}"
    with transaction.atomic():
        ours = lease.release(
            _row(op),
            status=OutboxStatus.DONE if found else OutboxStatus.FAILED,
            result=(
                ("approved" if found.approved else found.decline_code or "declined")[:32]
                if found
                else messages.GATEWAY_UNAVAILABLE
            ),
            reference=found.reference if found else "",
            last_error="" if found else error[:500],
            updated_at=timezone.now(),
        )
        if not ours:
            return "busy"
        _apply_authorization(
            order_id=op.order_id,
            result=found
            or GatewayResult(
                approved=False, reference="", decline_code=messages.GATEWAY_UNAVAILABLE
            ),
            now=now,
        )
        if unknown:
            _void_queue(order_id=op.order_id)
    if found:
        return str(OutboxStatus.DONE)
    logger.error(
        "payment operation %s (authorize of order %s, merchant %s) failed: %s; order declined%s",
        op.pk,
        op.order_id,
        op.order.merchant_id,
        error,
        ", void queued" if unknown else "",
    )
    return str(OutboxStatus.FAILED)


def _void_queue(*, order_id: int) -> None:
    """Queue the order's void (once per order); reopen one that found nothing to release, as a
    hold has turned up since (the gateway's search may lag behind its writes)."""
    payment_operation_queue(order=Order(pk=order_id), operation=PaymentOperationKind.VOID)
    PaymentOperation.objects.filter(
        order_id=order_id,
        operation=PaymentOperationKind.VOID,
        status=OutboxStatus.DONE,
        result="nothing_held",
    ).update(status=OutboxStatus.PENDING, result="", next_attempt_at=None)


def payment_operation_retry(*, operation_id: int, now: datetime) -> str:
    """Run a ``failed`` operation once more (ops, ``retry_payments``): returns its status after,
    or ``not_failed`` when it is not failed (retried already, or resolved meanwhile). A retry
    whose hold has lapsed fails again at once; one in doubt is looked up first, as always."""
    reopened = PaymentOperation.objects.filter(pk=operation_id, status=OutboxStatus.FAILED).update(
        status=OutboxStatus.PENDING, next_attempt_at=None
    )
    if not reopened:
        return "not_failed"
    logger.info("payment operation %s retried by hand", operation_id)
    return payment_operation_run(operation_id=operation_id, now=now)


def payment_operation_abandon(*, operation_id: int, reason: str, actor: str, now: datetime) -> bool:
    """Close a ``failed`` operation that ops settled outside Hashcart (a capture refused for an
    expired hold, a void the gateway no longer knows): ``done`` with result ``abandoned``, and
    an ``payment_abandoned`` event on the order saying who and why. False, changing nothing,
    if the operation is not failed."""
    with transaction.atomic():
        closed = PaymentOperation.objects.filter(
            pk=operation_id, status=OutboxStatus.FAILED
        ).update(status=OutboxStatus.DONE, result="abandoned", updated_at=timezone.now())
        if not closed:
            return False
        op = PaymentOperation.objects.select_related("order").get(pk=operation_id)
        event(
            order=op.order,
            kind="payment_abandoned",
            now=now,
            actor_label=actor,
            data={"operation": op.operation, "reason": reason, "error": op.last_error},
        ).save()
    logger.warning(
        "payment operation %s (%s of order %s) abandoned by %s: %s",
        op.pk,
        op.operation,
        op.order_id,
        actor,
        reason,
    )
    return True


def _apply_authorization(*, order_id: int, result: GatewayResult, now: datetime) -> None:
    """Approved: the order is paid, its shipment scheduled and its receipt issued (numbered in
    this transaction); declined: the order is declined, its unit released and the buyer told.
    An approval for an order no longer confirmed (it was cancelled meanwhile) is voided through
    the outbox; a decline for one changes nothing. The same for an order waiting for its
    buyer's card authentication, once the gateway has the outcome
    (``orders.services.authentication``). An answer that the bank asks the buyer to
    authenticate moves a confirmed order to ``authentication_required``
    (``_authentication_ask``)."""
    # Campaign before order, as everywhere: the order's status cannot change under this lock.
    order = order_lock(order_id)
    cardholder = order.cardholder
    previous = order.status
    if result.requires_action:
        _authentication_ask(order=order, result=result, now=now)
        return
    if result.approved:
        if not order_transition(
            order=order, transition="pay", fields={"payment_reference": result.reference}
        ):
            if order.status not in (OrderStatus.CANCELLED, OrderStatus.DECLINED):
                return  # applied already (another worker took over the lapsed claim)
            # Cancelled while the authorization was on its way: give the hold back.
            Order.objects.filter(pk=order.pk).update(payment_reference=result.reference)
            _void_queue(order_id=order.pk)
            return
        schedule = import_string(settings.HASHCART["ORDER_PAID_HANDLER"])
        shipment = schedule(order=order, now=now)
        events_save(
            events=[
                event(
                    order=order,
                    kind="paid",
                    now=now,
                    from_status=previous,
                    to_status=OrderStatus.PAID,
                    data={
                        "ship_by": shipment.ship_by.isoformat(),
                        "promised_delivery": shipment.promised_delivery.isoformat(),
                    },
                )
            ],
            now=now,
        )
        # Numbered in this transaction: a payment that rolls back takes no number (§3.8).
        receipt_issue(order=order, now=now)
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
    email_queue(
        key=f"{kind}:{order.pk}", cardholder=cardholder, kind=kind, order=order, message=message
    )


def refund_run(*, refund_id: int, now: datetime) -> str:
    """Run a refund's operation now, after the commit that asked for it, rather than at the
    payments sweep: the same outbox row (its key gives the money back once). Call it outside any
    transaction: it calls the gateway. Returns the operation's status after, as
    ``payment_operation_run`` (``busy`` if a worker has it already: it runs it)."""
    operation_id = PaymentOperation.objects.values_list("pk", flat=True).get(refund_id=refund_id)
    return payment_operation_run(operation_id=operation_id, now=now)


def refund_run_on_commit(*, refund_id: int, now: datetime) -> None:
    """Run the refund's operation (``refund_run``) once the caller's transaction commits, as
    every staff action, API call and carrier report that asks for a refund does."""
    transaction.on_commit(partial(refund_run, refund_id=refund_id, now=now))


def _authentication_ask(*, order: Order, result: GatewayResult, now: datetime) -> None:
    """The card's bank asks the buyer to authenticate (3-D Secure): a confirmed order waits in
    ``authentication_required`` with its unit, the gateway's reference kept, until the end of
    a confirmation window from now; the buyer gets a private e-mail with the link to the page
    that runs the bank's check (``orders.views.authenticate``). Nothing if the order is
    waiting already; an order cancelled meanwhile has its authorization voided (so that it
    cannot be completed later). The caller holds the order's lock."""
    window = timedelta(minutes=settings.HASHCART["CONFIRMATION_WINDOW_MINUTES"])
    expires_at = now + window
    if not order_transition(
        order=order,
        transition="require_authentication",
        fields={"payment_reference": result.reference, "authentication_expires_at": expires_at},
    ):
        if order.status in (OrderStatus.CANCELLED, OrderStatus.DECLINED) and result.reference:
            Order.objects.filter(pk=order.pk).update(payment_reference=result.reference)
            _void_queue(order_id=order.pk)
        return
    event(
        order=order,
        kind="authentication_required",
        now=now,
        from_status=OrderStatus.CONFIRMED,
        to_status=OrderStatus.AUTHENTICATION_REQUIRED,
        data={"code": result.decline_code, "expires_at": expires_at.isoformat()},
    ).save()
    email_queue(
        key=f"authentication_required:{order.pk}",
        cardholder=order.cardholder,
        kind="authentication_required",
        order=order,
        message=messages.email_authentication_required(
            order=order, cardholder=order.cardholder, expires_at=expires_at
        ),
    )


def authorization_apply(*, order_id: int, result: GatewayResult, now: datetime) -> None:
    """Apply an authorization's outcome to its order, as an answer from the gateway is applied
    (``_apply_authorization``), in the caller's transaction: for the outcome of a card
    authentication, read from the gateway (``orders.services.authentication``)."""
    _apply_authorization(order_id=order_id, result=result, now=now)


def authorization_void_queue(*, order_id: int) -> None:
    """Queue the void of an order's authorization (``_void_queue``), in the caller's
    transaction."""
    _void_queue(order_id=order_id)
