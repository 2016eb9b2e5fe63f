"""Returns: goods sent back for a refund (DESIGN §3.4).

requested → approved | refused → label_bought → received → refunded. The buyer asks from their
orders page within ``HASHCART["RETURN_DAYS"]`` of delivery (``return_request``); staff approve
(saying whether the unit goes back to stock) or refuse with a note (``return_approve``,
``return_refuse``), or open one approved when they resolve a dispute by a refund on return
(``return_open_approved``). The approved return's label is bought by ``fulfillment`` (told on
commit through ``HASHCART["RETURN_APPROVED_HANDLER"]``, and swept), which holds the label lease
(``return_label_claim``) and records the label here (``return_label_record``). When the carrier
delivers it back, or staff say it arrived (``return_receive``), what is left to refund is
refunded (``order_refund``: the payment outbox gives it back once), with the unit restocked if
staff said so; the return is ``refunded`` when the gateway confirms it (``return_refunded``,
called by ``refund_apply``).

Each step: one transaction under the order's lock (campaign, then order), the return moved by
compare-and-set, an audit row on the order and an e-mail to the buyer. A rule's refusal is an
``ApplicationError`` with a message for the buyer or staff.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils.module_loading import import_string

from core import outbox
from core.exceptions import ApplicationError
from core.fsm import transition_save
from core.outbox import Lease
from orders import messages
from orders.models import (
    OPEN_RETURN_STATUSES,
    RETURNABLE_STATUSES,
    Dispute,
    Order,
    OrderEvent,
    Refund,
    Return,
    ReturnStatus,
)
from orders.services.common import event, events_save
from orders.services.locks import order_lock
from orders.services.notifications import email_queue
from orders.services.refunds import order_refund

TEXT_MAX_LENGTH = Return._meta.get_field("reason").max_length or 500


def order_delivered_at(*, order_id: int) -> datetime | None:
    """When the carrier delivered the order (its first ``delivered`` audit row), or None."""
    return (
        OrderEvent.objects.filter(order_id=order_id, kind="delivered")
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )


def return_request(*, order_id: int, cardholder_id: int, reason: str, now: datetime) -> Return:
    """The cardholder asks to send a delivered order back, with ``reason``. Raises
    ``Order.DoesNotExist`` for another cardholder's order, and ``ApplicationError`` (a message
    for the buyer) for a missing reason, an order not delivered, a request more than
    ``HASHCART["RETURN_DAYS"]`` after delivery, or a return already under way. Locks the order
    (``order_lock``)."""
    reason = reason.strip()
    if not reason or len(reason) > TEXT_MAX_LENGTH:
        raise ApplicationError(messages.return_refused_reason(max_length=TEXT_MAX_LENGTH))
    with transaction.atomic():
        Order.objects.only("pk").get(pk=order_id, cardholder_id=cardholder_id)
        order = order_lock(order_id)
        delivered_at = order_delivered_at(order_id=order.pk)
        if order.status not in RETURNABLE_STATUSES or delivered_at is None:
            raise ApplicationError(messages.return_refused_status(order=order))
        days = settings.HASHCART["RETURN_DAYS"]
        if now > delivered_at + timedelta(days=days):
            raise ApplicationError(
                messages.return_refused_late(order=order, delivered_at=delivered_at, days=days)
            )
        if Return.objects.filter(order=order, status__in=OPEN_RETURN_STATUSES).exists():
            raise ApplicationError(messages.return_refused_open(order=order))
        returned = Return.objects.create(
            order=order, merchant_id=order.merchant_id, reason=reason, requested_at=now
        )
        _step(returned=returned, kind="return_requested", now=now, actor_label="cardholder")
        _email(returned=returned, kind="return_requested")
    return returned


def return_approve(
    *,
    return_id: int,
    note: str,
    restock: bool,
    now: datetime,
    actor_label: str,
    actor_id: int | None = None,
) -> Return:
    """Staff accept the goods back (``restock``: the unit goes back to stock when they
    arrive); the label is bought next (``HASHCART["RETURN_APPROVED_HANDLER"]``, on commit).
    ``ApplicationError`` when the return is not requested."""
    with transaction.atomic():
        returned = _locked(return_id)
        _decide(
            returned=returned,
            transition="approve",
            note=note,
            now=now,
            actor_id=actor_id,
            extra={"restock": restock},
        )
        _step(
            returned=returned,
            kind="return_approved",
            now=now,
            actor_label=actor_label,
            actor_id=actor_id,
            data={"note": returned.note, "restock": restock},
        )
        _email(returned=returned, kind="return_approved")
        _label_wanted(returned)
    return returned


def return_refuse(
    *, return_id: int, note: str, now: datetime, actor_label: str, actor_id: int | None = None
) -> Return:
    """Staff refuse the return with ``note`` (required: the buyer reads why).
    ``ApplicationError`` for a missing note or a return not requested."""
    if not note.strip():
        raise ApplicationError(messages.return_refused_note())
    with transaction.atomic():
        returned = _locked(return_id)
        _decide(returned=returned, transition="refuse", note=note, now=now, actor_id=actor_id)
        _step(
            returned=returned,
            kind="return_refused",
            now=now,
            actor_label=actor_label,
            actor_id=actor_id,
            data={"note": returned.note},
        )
        _email(returned=returned, kind="return_refused")
    return returned


def return_open_approved(
    *,
    order: Order,
    dispute: Dispute,
    restock: bool,
    note: str,
    now: datetime,
    actor_label: str,
    actor_id: int | None = None,
) -> Return:
    """A return staff open themselves, approved, to resolve ``dispute`` by a refund on return;
    in the caller's transaction, which holds the order's lock. ``ApplicationError`` when a
    return is already under way for the order."""
    if Return.objects.filter(order=order, status__in=OPEN_RETURN_STATUSES).exists():
        raise ApplicationError(messages.return_refused_open(order=order))
    returned = Return.objects.create(
        order=order,
        merchant_id=order.merchant_id,
        dispute=dispute,
        reason="Dispute: the cardholder did not place this order.",
        requested_at=now,
        note=note.strip()[:TEXT_MAX_LENGTH],
        decided_at=now,
        decided_by_id=actor_id,
        restock=restock,
    )
    transition_save(instance=returned, transition="approve", fields={})
    _step(
        returned=returned,
        kind="return_approved",
        now=now,
        actor_label=actor_label,
        actor_id=actor_id,
        data={"dispute": dispute.pk, "restock": restock},
    )
    _email(returned=returned, kind="return_approved")
    _label_wanted(returned)
    return returned


def _label_wanted(returned: Return) -> None:
    """Tell fulfillment, after the commit, that the return needs its label (its sweep buys
    it all the same if this is lost)."""
    handler = import_string(settings.HASHCART["RETURN_APPROVED_HANDLER"])
    return_id = returned.pk
    transaction.on_commit(lambda: handler(return_id=return_id))


# --- The label (bought by fulfillment) ---------------------------------------------------------
def returns_awaiting_label() -> list[int]:
    """Approved returns without a label yet, oldest first (fulfillment's sweep buys them)."""
    return list(
        Return.objects.filter(status=ReturnStatus.APPROVED)
        .order_by("id")
        .values_list("pk", flat=True)
    )


def return_label_claim(*, return_id: int, now: datetime) -> Lease | None:
    """Take the return's label lease (``HASHCART["OUTBOX"]["labels"]``): one buyer of its label
    at a time. None if it is not approved or another run holds it."""
    return outbox.claim(
        _approved(return_id),
        now=now,
        lease=outbox.policy("labels").lease,
        field="label_claimed_until",
    )


def return_label_release(*, return_id: int, lease: Lease) -> None:
    """Give the lease back (the carrier failed: the next run tries again)."""
    lease.release(Return.objects.filter(pk=return_id))


def return_label_remember(*, return_id: int, reference: str) -> None:
    """Record the carrier's id of the return shipment before its label is bought, so that a
    retry after a crash finds the label instead of buying another."""
    Return.objects.filter(pk=return_id).update(carrier_reference=reference)


def _approved(return_id: int) -> QuerySet[Return]:
    return Return.objects.filter(pk=return_id, status=ReturnStatus.APPROVED)


def return_label_record(
    *,
    return_id: int,
    carrier: str,
    tracking_number: str,
    label_url: str,
    reference: str,
    now: datetime,
) -> bool:
    """The carrier sold the return label: ``label_bought``, its audit row, and the buyer is
    e-mailed the label and its tracking number. False, changing nothing, when the return is no
    longer approved (received meanwhile, say)."""
    with transaction.atomic():
        returned = _locked(return_id)
        fields = {
            "carrier": carrier,
            "tracking_number": tracking_number,
            "label_url": label_url,
            "carrier_reference": reference,
            "label_bought_at": now,
            "label_claimed_until": None,
        }
        if not transition_save(instance=returned, transition="buy_label", fields=fields):
            return False
        _step(
            returned=returned,
            kind="return_label_bought",
            now=now,
            actor_label="fulfillment",
            data={"carrier": carrier, "tracking": tracking_number},
        )
        _email(returned=returned, kind="return_label_bought")
    return True


def returns_to_track(*, carriers: list[str]) -> list[int]:
    """Returns whose label Hashcart bought from one of ``carriers``, on their way back."""
    return list(
        Return.objects.filter(status=ReturnStatus.LABEL_BOUGHT, carrier__in=carriers)
        .exclude(carrier_reference="")
        .order_by("id")
        .values_list("pk", flat=True)
    )


def return_for_carrier_update(*, carrier: str, reference: str, tracking_number: str) -> int | None:
    """The return a carrier's pushed update is about: its label bought from that carrier under
    ``reference`` with that tracking number, or None."""
    if not reference:
        return None
    return (
        Return.objects.filter(
            carrier=carrier, carrier_reference=reference, tracking_number=tracking_number
        )
        .values_list("pk", flat=True)
        .first()
    )


# --- Received, then refunded --------------------------------------------------------------------
def return_receive(
    *, return_id: int, now: datetime, actor_label: str, actor_id: int | None = None
) -> Refund | None:
    """The goods came back (the carrier delivered the return, or staff say so): ``received``,
    and the refund of all that is left to refund is asked for (``order_refund``, with the
    return's restock), to run after the commit (``refund_run``); returned, or None when nothing
    was left to refund (the return is then ``refunded`` at once). Raises ``ApplicationError``
    when the return is not approved or on its way back; receiving it again raises too, and
    refunds nothing more."""
    with transaction.atomic():
        returned = _locked(return_id)
        order = returned.order
        if not transition_save(
            instance=returned, transition="receive", fields={"received_at": now}
        ):
            raise ApplicationError(messages.return_refused_step(returned=returned))
        _step(
            returned=returned,
            kind="return_received",
            now=now,
            actor_label=actor_label,
            actor_id=actor_id,
            data={"restock": returned.restock},
        )
        _email(returned=returned, kind="return_received")
        left = order.total - order.refund_requested_total
        refund = None
        if left > 0:
            refund = order_refund(
                order_id=order.pk,
                amount=left,
                reason=f"Return received: {returned.reason}"[:TEXT_MAX_LENGTH],
                restock=returned.restock,
                now=now,
                actor_label=actor_label,
                actor_id=actor_id,
            )
            Return.objects.filter(pk=returned.pk).update(refund=refund)
        elif transition_save(instance=returned, transition="refund_done", fields={}):
            # Everything was refunded already (a dispute's refund, say): nothing more to give.
            _step(
                returned=returned,
                kind="return_refunded",
                now=now,
                actor_label=actor_label,
                actor_id=actor_id,
                data={"refund": None, "amount": "0.00"},
            )
    return refund


def return_refunded(*, refund: Refund, now: datetime) -> None:
    """``refund_apply`` confirmed ``refund``: if a return asked for it, the return is
    ``refunded`` (once), with its audit row; in the caller's transaction, which holds the
    order's lock. The buyer's refund e-mail is ``refund_apply``'s."""
    returned = Return.objects.filter(refund=refund).first()
    if returned is None or not transition_save(
        instance=returned, transition="refund_done", fields={}
    ):
        return
    _step(
        returned=returned,
        kind="return_refunded",
        now=now,
        actor_label="pipeline",
        data={"refund": refund.number, "amount": str(refund.amount)},
    )


# --- Shared -------------------------------------------------------------------------------------
def _locked(return_id: int) -> Return:
    """The return, read after its order's lock (``order_lock``: campaign, then order).
    ``Return.DoesNotExist`` if there is no such return."""
    order = order_lock(Return.objects.values_list("order_id", flat=True).get(pk=return_id))
    returned = Return.objects.get(pk=return_id)
    returned.order = order
    return returned


def _decide(
    *,
    returned: Return,
    transition: str,
    note: str,
    now: datetime,
    actor_id: int | None,
    extra: dict[str, object] | None = None,
) -> None:
    note = note.strip()
    if len(note) > TEXT_MAX_LENGTH:
        raise ApplicationError(f"A note has at most {TEXT_MAX_LENGTH} characters.")
    fields = {"note": note, "decided_at": now, "decided_by_id": actor_id, **(extra or {})}
    if not transition_save(instance=returned, transition=transition, fields=fields):
        raise ApplicationError(messages.return_refused_step(returned=returned))


def _step(
    *,
    returned: Return,
    kind: str,
    now: datetime,
    actor_label: str,
    actor_id: int | None = None,
    data: dict[str, object] | None = None,
) -> None:
    """The order's audit row of a step of its return (the return's state in ``data``)."""
    events_save(
        events=[
            event(
                order=returned.order,
                kind=kind,
                now=now,
                actor_label=actor_label,
                actor_id=actor_id,
                data={"return": returned.pk, "to": str(returned.status), **(data or {})},
            )
        ],
        now=now,
    )


def _email(*, returned: Return, kind: str) -> None:
    order = returned.order
    email_queue(
        key=f"{kind}:{returned.pk}",
        cardholder=order.cardholder,
        kind=kind,
        order=order,
        message=messages.email_return(returned=returned, kind=kind, cardholder=order.cardholder),
    )
