"""Disputes: "Not me" on an order that has shipped (DESIGN §3.4, §8).

Before shipping, "Not me" cancels the order (``order_cancel``). After, the goods are gone and
the payment captured, so it opens a case (``dispute_open``): buying by post is paused as for
any "Not me", and the merchant's staff answer by the case's deadline, by a refund on return
(``dispute_refund_on_return``: an approved return, ``orders.services.returns``), a refund
without return (``dispute_refund``: what is left to refund, through ``order_refund`` and the
payment outbox, so given back once whatever runs it), or a rejection with a reason
(``dispute_reject``), which the cardholder may escalate to the operator (``dispute_escalate``).

Each step is one transaction under the order's lock (campaign, then order; "Not me" takes the
cardholder's purchase controls first, as deciders do), moves the case by compare-and-set
(``Dispute`` declares its transitions), writes the order's audit row (which the cardholder's
account log shows, ``orders.selectors.cardholder_order_log``) and queues the buyer's e-mail.
A refusal by a rule is an ``ApplicationError`` with a message for staff or the buyer.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from core.exceptions import ApplicationError
from core.fsm import transition_save
from orders import messages
from orders.models import DISPUTABLE_STATUSES, Dispute, Order, Refund
from orders.services.common import event, events_save
from orders.services.lifecycle import not_me_lock, not_me_pause
from orders.services.locks import order_lock
from orders.services.notifications import email_queue
from orders.services.refunds import order_refund
from orders.services.returns import return_open_approved

NOTE_MAX_LENGTH = Dispute._meta.get_field("note").max_length or 500


def dispute_open(
    *, order_id: int, now: datetime, actor_label: str = "not-me link"
) -> Dispute | None:
    """The cardholder said "Not me" about an order that shipped: pause buying by post (its
    pending and confirmed orders are cancelled with it, ``purchasing_set_paused``) and open the
    order's case, due ``HASHCART["DISPUTE_DAYS"]`` from ``now``, with its audit row and e-mail.

    Returns the case: the one already open when "Not me" is followed again (nothing more is
    written; one case per order, which the one-to-one key backs), or None when the order is
    not disputable (not shipped, delivered or partially refunded: before shipping "Not me"
    cancels). Buying is paused in every case. Locks: the purchase controls, then the
    campaigns (``not_me_lock``), then the order.
    """
    with transaction.atomic():
        cardholder_id, campaign_id, code = Order.objects.values_list(
            "cardholder_id", "campaign_id", "confirmation_code"
        ).get(pk=order_id)
        cardholder = not_me_lock(cardholder_id=cardholder_id, campaign_id=campaign_id)
        order = order_lock(order_id)
        not_me_pause(cardholder=cardholder, code=code, now=now)
        existing = Dispute.objects.filter(order=order).first()
        if existing is not None:
            return existing
        if order.status not in DISPUTABLE_STATUSES:
            return None
        dispute = Dispute.objects.create(
            order=order,
            merchant_id=order.merchant_id,
            opened_at=now,
            deadline=now + timedelta(days=settings.HASHCART["DISPUTE_DAYS"]),
        )
        _step(dispute=dispute, kind="dispute_opened", now=now, actor_label=actor_label)
        email_queue(
            key=f"dispute_opened:{order.pk}",
            cardholder=cardholder,
            kind="dispute_opened",
            order=order,
            message=messages.email_dispute_opened(dispute=dispute, cardholder=cardholder),
        )
    return dispute


@dataclass(frozen=True)
class DisputeResolved:
    """A case staff resolved, and the refund it asked for (run it after the commit with
    ``orders.services.payments.refund_run``), if any."""

    dispute: Dispute
    refund: Refund | None = None


def dispute_refund(
    *, dispute_id: int, note: str, now: datetime, actor_label: str, actor_id: int | None = None
) -> DisputeResolved:
    """Resolve an open case by refunding, without return, all that is left to refund on its
    order (captured total less every refund asked for): one ``order_refund``, in this
    transaction, which the payment outbox gives back once. Raises ``ApplicationError`` when the
    case is not open or nothing is left to refund (``order_refund``'s own refusals too)."""
    with transaction.atomic():
        dispute, order = _locked(dispute_id)
        left = order.total - order.refund_requested_total
        if left <= 0:
            raise ApplicationError(messages.dispute_refused_nothing_left(order=order))
        _resolve(dispute=dispute, transition="refund", note=note, now=now, actor_id=actor_id)
        refund = order_refund(
            order_id=order.pk,
            amount=left,
            reason=f"Dispute: not the cardholder's order. {note}".strip()[:500],
            restock=False,
            now=now,
            actor_label=actor_label,
            actor_id=actor_id,
        )
        _resolved(
            dispute=dispute,
            now=now,
            actor_label=actor_label,
            actor_id=actor_id,
            data={"refund": refund.number, "amount": str(refund.amount)},
        )
    return DisputeResolved(dispute=dispute, refund=refund)


def dispute_refund_on_return(
    *,
    dispute_id: int,
    note: str,
    now: datetime,
    actor_label: str,
    actor_id: int | None = None,
    restock: bool = False,
) -> DisputeResolved:
    """Resolve an open case by a refund once the goods come back: a return is opened, approved
    (``return_open_approved``: its label is bought next, and its arrival refunds what is left,
    restocking the unit if ``restock``). Raises ``ApplicationError`` when the case is not open
    or a return is already under way."""
    with transaction.atomic():
        dispute, order = _locked(dispute_id)
        _resolve(
            dispute=dispute, transition="refund_on_return", note=note, now=now, actor_id=actor_id
        )
        returned = return_open_approved(
            order=order,
            dispute=dispute,
            restock=restock,
            note=note,
            now=now,
            actor_label=actor_label,
            actor_id=actor_id,
        )
        _resolved(
            dispute=dispute,
            now=now,
            actor_label=actor_label,
            actor_id=actor_id,
            data={"return": returned.pk},
        )
    return DisputeResolved(dispute=dispute)


def dispute_reject(
    *, dispute_id: int, reason: str, now: datetime, actor_label: str, actor_id: int | None = None
) -> DisputeResolved:
    """Reject an open case with ``reason`` (1 to 500 characters), which the buyer reads and may
    escalate. Raises ``ApplicationError`` for a missing reason or a case not open."""
    reason = reason.strip()
    if not reason or len(reason) > NOTE_MAX_LENGTH:
        raise ApplicationError(messages.dispute_refused_reason(max_length=NOTE_MAX_LENGTH))
    with transaction.atomic():
        dispute, _ = _locked(dispute_id)
        _resolve(dispute=dispute, transition="reject", note=reason, now=now, actor_id=actor_id)
        _resolved(dispute=dispute, now=now, actor_label=actor_label, actor_id=actor_id)
    return DisputeResolved(dispute=dispute)


def dispute_escalate(*, dispute_id: int, cardholder_id: int, now: datetime) -> Dispute:
    """The cardholder asks the operator to review the rejection of their case: ``escalated``,
    which only operators (superusers) see in the back office. ``Dispute.DoesNotExist`` for a
    case that is not this cardholder's; ``ApplicationError`` when it is not rejected."""
    with transaction.atomic():
        order_id = Dispute.objects.values_list("order_id", flat=True).get(
            pk=dispute_id, order__cardholder_id=cardholder_id
        )
        order = order_lock(order_id)
        dispute = Dispute.objects.select_related("order").get(pk=dispute_id)
        if not transition_save(
            instance=dispute, transition="escalate", fields={"escalated_at": now}
        ):
            raise ApplicationError(messages.dispute_refused_status(dispute=dispute))
        _step(
            dispute=dispute,
            kind="dispute_escalated",
            now=now,
            actor_label="cardholder",
            from_status="rejected",
        )
        email_queue(
            key=f"dispute_escalated:{order.pk}",
            cardholder=order.cardholder,
            kind="dispute_escalated",
            order=order,
            message=messages.email_dispute_escalated(dispute=dispute, cardholder=order.cardholder),
        )
    return dispute


def _locked(dispute_id: int) -> tuple[Dispute, Order]:
    """The case and its order, the order locked (``order_lock``: campaign, then order), the
    case read after the lock. ``Dispute.DoesNotExist`` if there is no such case."""
    order = order_lock(Dispute.objects.values_list("order_id", flat=True).get(pk=dispute_id))
    dispute = Dispute.objects.get(pk=dispute_id)
    dispute.order = order
    return dispute, order


def _resolve(
    *, dispute: Dispute, transition: str, note: str, now: datetime, actor_id: int | None
) -> None:
    note = note.strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise ApplicationError(f"A note has at most {NOTE_MAX_LENGTH} characters.")
    fields = {"note": note, "resolved_at": now, "resolved_by_id": actor_id}
    if not transition_save(instance=dispute, transition=transition, fields=fields):
        raise ApplicationError(messages.dispute_refused_status(dispute=dispute))


def _resolved(
    *,
    dispute: Dispute,
    now: datetime,
    actor_label: str,
    actor_id: int | None,
    data: dict[str, Any] | None = None,
) -> None:
    """The audit row and the buyer's e-mail of a resolution."""
    order = dispute.order
    _step(
        dispute=dispute,
        kind="dispute_resolved",
        now=now,
        actor_label=actor_label,
        actor_id=actor_id,
        from_status="opened",
        data={"note": dispute.note, **(data or {})},
    )
    email_queue(
        key=f"dispute_resolved:{order.pk}",
        cardholder=order.cardholder,
        kind="dispute_resolved",
        order=order,
        message=messages.email_dispute_resolved(dispute=dispute, cardholder=order.cardholder),
    )


def _step(
    *,
    dispute: Dispute,
    kind: str,
    now: datetime,
    actor_label: str,
    actor_id: int | None = None,
    from_status: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    """The order's audit row for a step of its case: the case's states, not the order's, in
    ``data`` (the order's status does not change with them)."""
    events_save(
        events=[
            event(
                order=dispute.order,
                kind=kind,
                now=now,
                actor_label=actor_label,
                actor_id=actor_id,
                data={
                    "dispute": dispute.pk,
                    "from": from_status,
                    "to": str(dispute.status),
                    "deadline": dispute.deadline.isoformat(),
                    **(data or {}),
                },
            )
        ],
        now=now,
    )
