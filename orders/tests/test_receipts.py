"""Numbered receipts (DESIGN §3.8): issued once, with the payment, numbered without gaps per
merchant, e-mailed with an HTML part, downloadable as a PDF by their cardholder only."""

import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from accounts.services import operator_upsert, staff_user_upsert
from catalog.models import Campaign, Merchant, Product
from orders.models import (
    DocumentSequence,
    Notification,
    Order,
    OrderStatus,
    PaymentOperation,
    Receipt,
)
from orders.pipeline import stage_decide, stage_payments, stage_poll
from orders.receipt_pdf import receipt_pdf
from orders.receipts import ReceiptContent
from orders.services import notifications_send_due, payment_operation_run
from orders.services.locks import order_lock
from orders.services.receipts import document_number_take, receipt_issue
from orders.tasks import payments_run_task
from tests.mfa import totp_enable
from tests.shop import BRAND, UNTAXED, buyer_ready, code_in, post, replies_to, shop_open, tick

pytestmark = pytest.mark.django_db


def _confirmed(*handles: str, hashtag: str = "BuyKindleFireHD") -> list[Order]:
    """Orders of ``handles`` for ``hashtag`` (a new merchant's campaign the first time), all
    confirmed, their authorizations waiting in the outbox (``tick`` would run them)."""
    if not Campaign.objects.filter(hashtag=hashtag).exists():
        shop_open(hashtag=hashtag)
    for handle in handles:
        buyer_ready(handle, address=UNTAXED)
        post(handle, f"@{BRAND} #{hashtag}")
    tick()
    for handle in handles:
        post(handle, f"@{BRAND} #Confirm{code_in(replies_to(handle)[-1])}")
    stage_poll(now=timezone.now())
    stage_decide(now=timezone.now())
    orders = [Order.objects.get(cardholder__user__email=f"{h}@example.com") for h in handles]
    assert {order.status for order in orders} == {OrderStatus.CONFIRMED}
    return orders


def _paid(handle: str = "alice", hashtag: str = "BuyKindleFireHD") -> Order:
    [order] = _confirmed(handle, hashtag=hashtag)
    stage_payments(now=timezone.now())
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    return order


def _merchant_on_receipts(merchant: Merchant) -> None:
    Merchant.objects.filter(pk=merchant.pk).update(
        slug="acme",
        legal_name="Acme Retail LLC",
        address_line1="500 Commerce Way",
        city="Portland",
        state="OR",
        postal_code="97201",
        tax_id="93-1234567",
    )


# --- Issue ------------------------------------------------------------------------------------
def test_a_paid_order_gets_its_merchants_first_receipt_number_in_the_payment():
    [order] = _confirmed("alice")
    _merchant_on_receipts(order.merchant)
    assert not Receipt.objects.exists()  # confirmed is not paid

    stage_payments(now=timezone.now())

    receipt = Receipt.objects.get()
    assert (receipt.order_id, receipt.merchant_id, receipt.number) == (
        order.pk,
        order.merchant_id,
        1,
    )
    assert receipt.reference == "ACME-R-000001"
    assert order.events.filter(kind="receipt_issued", data__receipt="ACME-R-000001").exists()
    content = ReceiptContent.from_json(receipt.content)
    assert content.merchant_name == "Acme Retail LLC"
    assert content.merchant_address == ("500 Commerce Way", "Portland, OR 97201")
    assert content.merchant_tax_id == "93-1234567"
    assert (content.total, content.subtotal, content.tax_lines) == (
        Decimal("149.00"),
        Decimal("149.00"),
        (),
    )
    assert (content.card_brand, content.card_last4) == ("Visa", "4242")
    assert content.order_code == order.confirmation_code


def test_each_merchant_numbers_its_receipts_on_its_own():
    alice = _paid("alice")
    bob = _paid("bob", hashtag="BuyKindleFireHD2")  # another merchant
    carol = _paid("carol")
    assert bob.merchant_id != alice.merchant_id == carol.merchant_id
    assert [(r.order_id, r.number) for r in Receipt.objects.order_by("id")] == [
        (alice.pk, 1),
        (bob.pk, 1),
        (carol.pk, 2),
    ]


def test_a_declined_authorization_issues_no_receipt():
    shop_open()
    buyer_ready("dave", token="tok_sandbox_decline_dave", address=UNTAXED)
    post("dave", f"@{BRAND} #BuyKindleFireHD")
    tick()
    post("dave", f"@{BRAND} #Confirm{code_in(replies_to('dave')[-1])}")
    tick()
    stage_payments(now=timezone.now())
    assert Order.objects.get().status == OrderStatus.DECLINED
    assert not Receipt.objects.exists()
    assert not DocumentSequence.objects.filter(last_number__gt=0).exists()


def test_a_payment_rolled_back_after_taking_its_number_leaves_no_gap(monkeypatch):
    first, second = _confirmed("alice", "bob")

    def broken(**kwargs):  # the e-mail cannot be written: the whole payment rolls back
        raise RuntimeError("disk full")

    monkeypatch.setattr("orders.messages.email_receipt", broken)
    op = PaymentOperation.objects.get(order=first, operation="authorize")
    with pytest.raises(RuntimeError):
        payment_operation_run(operation_id=op.pk, now=timezone.now())
    first.refresh_from_db()
    assert first.status == OrderStatus.CONFIRMED  # the payment's transaction rolled back
    assert not Receipt.objects.exists()
    monkeypatch.undo()

    second_op = PaymentOperation.objects.get(order=second, operation="authorize")
    payment_operation_run(operation_id=second_op.pk, now=timezone.now())
    # The crashed worker's claim lapses; the retry finds the approval and applies it.
    PaymentOperation.objects.filter(pk=op.pk).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    stage_payments(now=timezone.now())

    assert dict(Receipt.objects.values_list("order_id", "number")) == {
        second.pk: 1,
        first.pk: 2,
    }


def test_a_number_taken_in_a_rolled_back_transaction_is_given_back():
    [order] = _confirmed("alice")
    merchant = order.merchant
    with transaction.atomic():
        assert document_number_take(merchant=merchant, series="receipt").number == 1
        transaction.set_rollback(True)
    with transaction.atomic():
        taken = document_number_take(merchant=merchant, series="receipt")
        credit = document_number_take(merchant=merchant, series="credit_note")
    assert taken.number == 1
    assert (credit.number, credit.reference) == (1, f"{merchant.slug.upper()}-C-000001")


@pytest.fixture
def eager_tasks():
    """Tasks run in the test's process: the sweeps a task kicks run at once, no broker."""
    from config.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_the_payments_task_run_twice_issues_one_receipt_and_one_email(eager_tasks):
    [order] = _confirmed("alice")
    payments_run_task()
    payments_run_task()
    # A second worker took over the first one's lapsed claim and applies the same approval.
    op = PaymentOperation.objects.get(order=order, operation="authorize")
    PaymentOperation.objects.filter(pk=op.pk).update(
        status="processing", claimed_until=timezone.now() - timedelta(seconds=1), attempts=1
    )
    payments_run_task()

    assert Receipt.objects.filter(order=order).count() == 1
    assert Receipt.objects.get().number == 1
    assert Notification.objects.filter(order=order, kind="receipt").count() == 1
    assert order.events.filter(kind="receipt_issued").count() == 1
    assert DocumentSequence.objects.get().last_number == 1


def test_issuing_again_returns_the_receipt_and_takes_no_number():
    order = _paid()
    with transaction.atomic():
        again = receipt_issue(order=order_lock(order.pk), now=timezone.now())
    assert again == Receipt.objects.get()
    assert DocumentSequence.objects.get().last_number == 1


def test_a_receipt_keeps_what_it_said_when_the_merchant_changes():
    order = _paid()
    before = Receipt.objects.get().content
    Merchant.objects.filter(pk=order.merchant_id).update(legal_name="Renamed Inc.", slug="new")
    assert Receipt.objects.get().content == before
    assert "Renamed" not in _pdf_text(Receipt.objects.get())


# --- The e-mail -------------------------------------------------------------------------------
def test_the_receipt_email_has_a_text_and_an_html_part():
    order = _paid()
    receipt = Receipt.objects.get()
    mail.outbox.clear()
    notifications_send_due(now=timezone.now())

    [email] = [m for m in mail.outbox if m.subject.startswith("Receipt")]
    assert email.to == ["alice@example.com"]
    assert receipt.reference in email.subject
    for part in (email.body, email.alternatives[0].content):
        assert receipt.reference in part
        assert "$149.00" in part
        assert f"#{order.confirmation_code}" in part
        assert "Visa ending 4242" in part
    assert email.alternatives[0].mimetype == "text/html"
    # The other e-mails stay plain text.
    paid = next(m for m in mail.outbox if m.subject.startswith("Order confirmed"))
    assert paid.alternatives == []


def test_the_html_receipt_escapes_the_product_name():
    shop = shop_open()
    Product.objects.filter(pk=shop.campaign.product_id).update(name="Tee <b>bold</b> & co")
    _paid()
    html = Notification.objects.get(kind="receipt").html_body
    assert "Tee &lt;b&gt;bold&lt;/b&gt; &amp; co" in html
    assert "<b>bold</b>" not in html


# --- The PDF ----------------------------------------------------------------------------------
def _pdf_text(receipt: Receipt) -> str:
    pdf = receipt_pdf(ReceiptContent.from_json(receipt.content))
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_the_pdf_holds_the_total_number_order_code_and_last_four_and_no_card_number():
    [order] = _confirmed("alice")
    _merchant_on_receipts(order.merchant)
    stage_payments(now=timezone.now())
    receipt = Receipt.objects.get()

    text = _pdf_text(receipt)

    assert "$149.00" in text
    assert "ACME-R-000001" in text
    assert f"#{order.confirmation_code}" in text
    assert "Visa ending 4242" in text
    assert "Acme Retail LLC" in text
    assert "Portland, OR 97201" in text
    assert not re.search(r"\d(?:[ -]?\d){12,18}", text)  # no card number, of any length


def _client(email: str) -> Client:
    from accounts.models import User

    client = Client()
    client.force_login(User.objects.get(email=email))
    return client


def test_the_cardholder_downloads_their_receipt_from_the_settings_page():
    order = _paid()
    client = _client("alice@example.com")
    url = reverse("orders:cardholder_receipt_pdf", args=[order.pk])

    page = client.get(reverse("accounts:settings"))
    assert url in page.content.decode()

    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert 'filename="' in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert "$149.00" in PdfReader(io.BytesIO(body)).pages[0].extract_text()


def test_another_cardholder_gets_404_for_the_pdf_and_a_stranger_the_sign_in():
    order = _paid("alice")
    buyer_ready("mallory", address=UNTAXED)
    url = reverse("orders:cardholder_receipt_pdf", args=[order.pk])

    assert _client("mallory@example.com").get(url).status_code == 404
    assert Client().get(url).status_code == 302  # to sign in


def test_an_order_without_a_receipt_has_no_pdf_and_no_link():
    [order] = _confirmed("alice")
    client = _client("alice@example.com")
    url = reverse("orders:cardholder_receipt_pdf", args=[order.pk])
    assert client.get(url).status_code == 404
    assert url not in client.get(reverse("accounts:settings")).content.decode()


# --- The back office --------------------------------------------------------------------------
def _staff(merchant: Merchant, name: str) -> Client:
    user = staff_user_upsert(
        username=name, email=f"{name}@example.com", password=f"pw-{name}", merchant_id=merchant.pk
    )
    totp_enable(user)
    client = Client()
    client.force_login(user)
    return client


def test_staff_download_their_merchants_receipt_and_not_another_merchants():
    order = _paid("alice")
    other = _paid("bob", hashtag="BuyKindleFireHD2")
    assert other.merchant_id != order.merchant_id
    url = reverse("admin:orders_order_receipt_pdf", args=[order.pk])
    staff_a, staff_b = _staff(order.merchant, "staff-a"), _staff(other.merchant, "staff-b")

    page = staff_a.get(reverse("admin:orders_order_change", args=[order.pk]))
    assert url in page.content.decode()
    response = staff_a.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"

    assert staff_b.get(url).status_code == 404
    own = staff_b.get(reverse("admin:orders_order_receipt_pdf", args=[other.pk]))
    assert own.status_code == 200


def test_an_operator_gives_the_merchant_its_receipt_details_in_the_back_office():
    [order] = _confirmed("alice")
    merchant = order.merchant
    operator = operator_upsert(username="op", email="op@example.com", password="pw-operator")
    totp_enable(operator)
    client = Client()
    client.force_login(operator)
    url = reverse("admin:catalog_merchant_change", args=[merchant.pk])
    assert 'name="legal_name"' in client.get(url).content.decode()

    response = client.post(
        url,
        {
            "name": merchant.name,
            "slug": merchant.slug,
            "time_zone": merchant.time_zone,
            "cutoff_time": "14:00",
            "legal_name": "Acme Retail LLC",
            "address_line1": "500 Commerce Way",
            "address_line2": "Suite 2",
            "city": "Portland",
            "state": "OR",
            "postal_code": "97201",
            "country": "US",
            "tax_id": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    stage_payments(now=timezone.now())

    content = ReceiptContent.from_json(Receipt.objects.get().content)
    assert content.merchant_name == "Acme Retail LLC"
    assert content.merchant_address == ("500 Commerce Way", "Suite 2", "Portland, OR 97201")
    assert content.merchant_tax_id == ""
    assert "Tax id" not in _pdf_text(Receipt.objects.get())


def test_a_merchant_without_receipt_details_is_named_by_its_display_name():
    order = _paid()
    content = ReceiptContent.from_json(Receipt.objects.get().content)
    assert (content.merchant_name, content.merchant_address) == (order.merchant.name, ())


def test_a_receipt_carries_the_orders_sales_tax_by_jurisdiction_and_its_total():
    shop_open()
    buyer_ready("nina", address={"city": "New York", "state": "NY", "postal_code": "10001"})
    post("nina", f"@{BRAND} #BuyKindleFireHD")
    tick()
    post("nina", f"@{BRAND} #Confirm{code_in(replies_to('nina')[-1])}")
    tick()
    stage_payments(now=timezone.now())
    receipt = Receipt.objects.get()
    content = ReceiptContent.from_json(receipt.content)

    # $149.00 to New York City: 4% state, 4.5% city, 0.375% MCTD (the shipped table).
    assert (content.subtotal, content.total) == (Decimal("149.00"), Decimal("162.23"))
    assert [(t.jurisdiction, t.amount) for t in content.tax_lines] == [
        ("New York", Decimal("5.96")),
        ("New York City", Decimal("6.71")),
        ("Metropolitan Commuter Transportation District", Decimal("0.56")),
    ]
    text = " ".join(_pdf_text(receipt).split())  # the PDF wraps long labels
    assert "New York City (4.5%) $6.71" in text
    assert "Total $162.23" in text
    email = next(m for m in mail.outbox if "Receipt" in m.subject)
    assert "New York City (4.5%): $6.71" in email.body
