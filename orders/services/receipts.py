"""Numbered documents: receipts of paid orders now, credit notes of refunds next (DESIGN §3.8).

Numbers are gapless per merchant and series: ``document_number_take`` increments the series' row
under its row lock in the caller's transaction, so the document and its number commit together
or not at all (a rolled-back payment gives its number back), and concurrent issuers queue on the
row, one at a time per merchant. That lock is the last one taken, after the campaign's and the
order's (``order_lock``), so it cannot close a cycle; its wait is bounded by the transaction's
``HASHCART["LOCK_TIMEOUT_SECONDS"]``, which ``campaigns_lock`` sets.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.transaction import TransactionManagementError

from catalog.models import Merchant
from orders import messages
from orders.models import CreditNote, DocumentSequence, DocumentSeries, Order, Receipt, Refund
from orders.receipts import credit_note_content, document_reference, receipt_content
from orders.services.common import event
from orders.services.notifications import email_queue


@dataclass(frozen=True)
class DocumentNumber:
    number: int
    reference: str  # as printed, ``orders.receipts.document_reference``


def document_number_take(*, merchant: Merchant, series: DocumentSeries) -> DocumentNumber:
    """The next number of ``merchant``'s ``series``, taken in the caller's transaction (which
    must be open: the number is only taken if it commits). The series starts at 1, its prefix
    fixed then from the merchant's slug. Locks: the series' row, until the transaction ends."""
    if not transaction.get_connection().in_atomic_block:
        raise TransactionManagementError("document_number_take() needs an open transaction")
    rows = DocumentSequence.objects.select_for_update().filter(
        merchant_id=merchant.pk, series=series
    )
    sequence = rows.first()
    if sequence is None:  # the first document of the series: two first issuers may race here
        DocumentSequence.objects.bulk_create(
            [DocumentSequence(merchant=merchant, series=series, prefix=merchant.slug.upper())],
            ignore_conflicts=True,
        )
        sequence = rows.get()
    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    return DocumentNumber(
        number=sequence.last_number,
        reference=document_reference(
            prefix=sequence.prefix, series=series, number=sequence.last_number
        ),
    )


def receipt_issue(*, order: Order, now: datetime) -> Receipt:
    """Issue ``order``'s receipt, in the transaction that made it paid (the caller holds
    ``order_lock``): the next receipt number of its merchant, the content kept as issued, a
    ``receipt_issued`` event, and the receipt e-mail (text and HTML) queued. Once per order: an
    order that has its receipt gets it back and nothing else happens (the one-to-one on
    ``Receipt.order`` backs this should anything slip)."""
    existing = Receipt.objects.filter(order_id=order.pk).first()
    if existing is not None:
        return existing
    taken = document_number_take(merchant=order.merchant, series=DocumentSeries.RECEIPT)
    content = receipt_content(order=order, reference=taken.reference, issued_at=now)
    receipt = Receipt.objects.create(
        merchant_id=order.merchant_id,
        order=order,
        number=taken.number,
        reference=taken.reference,
        issued_at=now,
        content=content.to_json(),
    )
    event(order=order, kind="receipt_issued", now=now, data={"receipt": taken.reference}).save()
    subject, text, html = messages.email_receipt(content=content, cardholder=order.cardholder)
    email_queue(
        key=f"receipt:{order.pk}",
        cardholder=order.cardholder,
        kind="receipt",
        order=order,
        message=(subject, text),
        html=html,
    )
    return receipt


def credit_note_issue(*, refund: Refund, order: Order, now: datetime) -> CreditNote:
    """Issue the credit note of ``refund`` (given at the gateway), in the transaction that
    records it (the caller holds ``order_lock``): the next credit-note number of its merchant,
    referring to the order's receipt, the content kept as issued and a ``credit_note_issued``
    event. Once per refund (a one-to-one backs this)."""
    existing = CreditNote.objects.filter(refund_id=refund.pk).first()
    if existing is not None:
        return existing
    receipt = Receipt.objects.filter(order_id=order.pk).first()
    taken = document_number_take(merchant=order.merchant, series=DocumentSeries.CREDIT_NOTE)
    content = credit_note_content(
        order=order,
        amount=refund.amount,
        reason=refund.reason,
        receipt_reference=receipt.reference if receipt is not None else "",
        reference=taken.reference,
        issued_at=now,
    )
    note = CreditNote.objects.create(
        merchant_id=order.merchant_id,
        refund=refund,
        receipt=receipt,
        number=taken.number,
        reference=taken.reference,
        issued_at=now,
        content=content.to_json(),
    )
    event(
        order=order,
        kind="credit_note_issued",
        now=now,
        data={"credit_note": taken.reference, "refund": refund.number},
    ).save()
    return note
