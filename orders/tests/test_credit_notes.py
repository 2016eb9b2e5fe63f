"""Each refund that goes through gets a numbered credit note referring to the order's receipt
(issue 12, item 6; DESIGN §3.8): gapless per merchant in its own series, with the sales tax in
it pro rata, e-mailed with the refund and downloadable by its cardholder and its merchant only.
"""

import io
from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from catalog.tests.factories import MerchantFactory
from orders.models import CreditNote, Receipt, Refund
from orders.payments.base import GatewayResult
from orders.pipeline import stage_payments, stage_send
from orders.receipt_pdf import receipt_pdf
from orders.receipts import ReceiptContent
from orders.services import order_refund
from orders.services.payments import refund_run
from orders.services.refunds import refund_apply
from orders.tests.test_receipts import _staff
from tests.shop import order_shipped, shop_open

pytestmark = pytest.mark.django_db
MANHATTAN = {"city": "New York", "state": "NY", "postal_code": "10001"}


def _refund(order, amount: str, reason: str = "Scratched screen") -> Refund:
    refund = order_refund(
        order_id=order.pk,
        amount=Decimal(amount),
        reason=reason,
        restock=False,
        now=timezone.now(),
        actor_label="staff",
    )
    stage_payments(now=timezone.now())
    refund.refresh_from_db()
    return refund


def _text(note: CreditNote) -> str:
    pdf = receipt_pdf(ReceiptContent.from_json(note.content))
    pages = PdfReader(io.BytesIO(pdf)).pages
    return " ".join(" ".join(page.extract_text() for page in pages).split())


def test_each_refund_gets_the_next_credit_note_referring_to_the_receipt_with_its_tax():
    shop_open()
    order = order_shipped(address=MANHATTAN)  # $149.00 + $13.23 New York City tax = $162.23
    receipt = Receipt.objects.get(order=order)

    first = _refund(order, "81.12")
    second = _refund(order, "81.11")

    notes = list(CreditNote.objects.order_by("number"))
    assert [(n.number, n.refund_id, n.receipt_id) for n in notes] == [
        (1, first.pk, receipt.pk),
        (2, second.pk, receipt.pk),
    ]
    assert [n.reference for n in notes] == [
        receipt.reference.replace("-R-", "-C-").replace("000001", f"{k:06d}") for k in (1, 2)
    ]
    for note, amount in zip(notes, (Decimal("81.12"), Decimal("81.11")), strict=True):
        content = ReceiptContent.from_json(note.content)
        tax = sum(line.amount for line in content.tax_lines)
        assert (content.total, content.subtotal + tax) == (amount, amount)
        assert [line.jurisdiction for line in content.tax_lines] == [
            "New York",
            "New York City",
            "Metropolitan Commuter Transportation District",
        ]
        assert content.refers_to == receipt.reference
    # Half the money back carries half the tax; both notes together give back all of it.
    taxes = [
        sum(line.amount for line in ReceiptContent.from_json(n.content).tax_lines) for n in notes
    ]
    assert taxes[0] == Decimal("6.62")
    assert sum(taxes) == order.tax_total


def test_the_credit_note_pdf_says_what_went_back_to_which_card_and_why():
    shop_open()
    order = order_shipped(address=MANHATTAN)
    _refund(order, "50.00", reason="Arrived late")
    note = CreditNote.objects.get()

    text = _text(note)
    assert f"Credit note {note.reference}" in text
    assert "Total $50.00" in text
    assert "Refunded to Visa ending 4242." in text
    assert f"Gives money back on receipt {order.receipt.reference}: Arrived late" in text


def test_the_refund_email_names_its_credit_note():
    shop_open()
    order = order_shipped(address=MANHATTAN)
    _refund(order, "50.00")
    stage_send(now=timezone.now())  # the e-mails
    note = CreditNote.objects.get()
    [email] = [m for m in mail.outbox if m.subject.startswith("Refund of $50.00")]
    assert f"Credit note {note.reference}" in email.body


def test_a_refund_applied_twice_issues_one_credit_note():
    shop_open()
    order = order_shipped(address=MANHATTAN)
    refund = _refund(order, "50.00")
    again = GatewayResult(approved=True, reference=refund.reference)
    refund_apply(refund_id=refund.pk, result=again, now=timezone.now())
    assert refund_run(refund_id=refund.pk, now=timezone.now()) in {"done", "busy"}
    assert CreditNote.objects.count() == 1


def test_only_the_cardholder_and_the_merchants_staff_download_a_credit_note(client):
    shop_open()
    order = order_shipped("alice", address=MANHATTAN)
    _refund(order, "50.00")
    note = CreditNote.objects.get()
    mine = reverse("orders:cardholder_credit_note_pdf", args=[note.pk])

    client.force_login(order.cardholder.user)
    assert mine in client.get(reverse("accounts:settings")).content.decode()
    assert client.get(mine)["Content-Type"] == "application/pdf"

    other = order_shipped("bob", address=MANHATTAN)  # another cardholder of the same shop
    stranger = Client()
    stranger.force_login(other.cardholder.user)
    assert stranger.get(mine).status_code == 404

    staff_url = reverse("admin:orders_order_credit_note_pdf", args=[note.pk])
    staff_a, staff_b = _staff(order.merchant, "staff-a"), _staff(MerchantFactory(), "staff-b")
    page = staff_a.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert staff_url in page
    assert staff_a.get(staff_url).status_code == 200
    assert staff_b.get(staff_url).status_code == 404
