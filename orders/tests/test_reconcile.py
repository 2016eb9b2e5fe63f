"""``reconcile_payments`` finds every difference between the gateway's books and the orders, and
none on books that agree (issue 12, item 8).

The orders are made by the real pipeline on the sandbox gateway; each mismatch is then planted
the way it would happen (a status changed behind the outbox's back, a ledger entry the outbox
never asked for), and the command must name it, its order and its kind.
"""

import csv
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
import responses
import stripe
from django.core.management import call_command
from django.utils import timezone

from fulfillment.services.labels import order_mark_shipped
from orders.models import (
    Order,
    OrderStatus,
    OutboxStatus,
    PaymentOperation,
    PaymentReconciliation,
)
from orders.payments.base import GatewayError
from orders.payments.stripe import StripeGateway
from orders.pipeline import stage_payments
from orders.services import order_cancel, order_refund
from sandbox.gateway import SandboxGateway
from sandbox.models import SandboxLedgerEntry
from tests.shop import BRAND, buyer_ready, post, shop_open, tick

pytestmark = pytest.mark.django_db


def _paid(handle: str) -> Order:
    buyer_ready(handle)
    post(handle, f"@{BRAND} #BuyKindleFireHD")
    tick()
    order = Order.objects.get(author_handle=handle)
    post(handle, f"@{BRAND} #Confirm{order.confirmation_code}")
    tick()
    stage_payments(now=timezone.now())
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    return order


def _shipped(handle: str) -> Order:
    order = _paid(handle)
    order_mark_shipped(order=order, carrier="sandbox", tracking_number=f"1Z{handle}", actor="t")
    stage_payments(now=timezone.now())  # the capture
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    return order


def _cancelled(handle: str) -> Order:
    order = _paid(handle)
    order_cancel(order_id=order.pk, now=timezone.now(), actor_label="t", reason="merchant")
    stage_payments(now=timezone.now())  # the void
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    return order


def _reconcile(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("reconcile_payments", *args, stdout=out, stderr=StringIO())
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def _rows() -> list[tuple[str, str]]:
    code, out = _reconcile("--format", "csv")
    assert code == 1, out
    return [(row["kind"], row["order_id"]) for row in csv.DictReader(StringIO(out))]


def _entry(order: Order, operation: str) -> SandboxLedgerEntry:
    return SandboxLedgerEntry.objects.get(idempotency_key=f"order-{order.pk}-{operation}")


@pytest.fixture
def books():
    """A shop whose books agree: a paid, a shipped (captured) and a cancelled (voided) order."""
    shop_open()
    return {"paid": _paid("paula"), "shipped": _shipped("sam"), "cancelled": _cancelled("cleo")}


def test_books_that_agree_show_no_mismatch_and_exit_zero(books):
    code, out = _reconcile()
    assert code == 0
    assert "3 orders compared: 0 mismatches." in out
    run = PaymentReconciliation.objects.get()
    assert (run.orders, run.mismatches, run.error) == (3, [], "")


def test_a_hold_on_an_order_cancelled_behind_the_outbox_is_held_not_recorded(books):
    paid = books["paid"]
    Order.objects.filter(pk=paid.pk).update(status=OrderStatus.CANCELLED)  # no void queued
    assert _rows() == [("held_not_recorded", str(paid.pk))]


def test_a_paid_order_whose_hold_is_gone_is_recorded_not_held(books):
    paid = books["paid"]
    _entry(paid, "authorize").delete()
    assert _rows() == [("recorded_not_held", str(paid.pk))]


def test_a_second_hold_for_one_order_is_held_twice(books):
    paid = books["paid"]
    first = _entry(paid, "authorize")
    first.pk, first.idempotency_key, first.reference = None, f"order-{paid.pk}-again", "sbx_2"
    first.save()
    assert _rows() == [("held_twice", str(paid.pk))]


def test_money_taken_for_an_order_not_shipped_is_captured_not_shipped(books):
    paid = books["paid"]
    SandboxGateway().capture(
        reference=paid.payment_reference,
        amount=paid.total,
        currency="USD",
        idempotency_key=f"order-{paid.pk}-capture",
    )
    assert _rows() == [("captured_not_shipped", str(paid.pk))]


def test_a_shipped_order_never_captured_is_shipped_not_captured(books):
    shipped = books["shipped"]
    _entry(shipped, "capture").delete()
    assert _rows() == [("shipped_not_captured", str(shipped.pk))]


def test_an_amount_the_gateway_holds_other_than_the_total_is_amount_differs(books):
    paid, shipped = books["paid"], books["shipped"]
    SandboxLedgerEntry.objects.filter(pk=_entry(paid, "authorize").pk).update(amount=Decimal(1))
    SandboxLedgerEntry.objects.filter(pk=_entry(shipped, "capture").pk).update(amount=Decimal(2))
    rows = _rows()
    assert sorted(rows) == sorted(
        [("amount_differs", str(paid.pk)), ("amount_differs", str(shipped.pk))]
    )
    _, out = _reconcile()
    assert f"authorized 1.00, order total {paid.total}" in out
    assert f"captured 2.00, order total {shipped.total}" in out


def test_records_naming_no_order_of_ours_are_unknown_orders(books):
    for key in ("order-987654-authorize", "someone-elses-key"):
        SandboxGateway().authorize(
            token="tok_x", amount=Decimal(5), currency="USD", idempotency_key=key, order_id=0
        )
    assert sorted(_rows()) == [("unknown_order", ""), ("unknown_order", "987654")]


def test_a_hold_whose_answer_is_still_on_its_way_is_not_a_mismatch():
    shop_open()
    buyer_ready("ada")
    post("ada", f"@{BRAND} #BuyKindleFireHD")
    tick()
    order = Order.objects.get()
    post("ada", f"@{BRAND} #Confirm{order.confirmation_code}")
    tick()  # confirmed; its authorization waits in the outbox
    # The gateway placed the hold; the outbox has not applied the answer yet.
    SandboxGateway().authorize(
        token="tok_ada",
        amount=order.total,
        currency="USD",
        idempotency_key=f"order-{order.pk}-authorize",
        order_id=order.pk,
    )
    assert _reconcile() == (0, "1 gateway records, 1 orders compared: 0 mismatches.\n")
    # Once the outbox gives the order up without a void, the hold is a mismatch.
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.DECLINED)
    PaymentOperation.objects.filter(order=order).update(status=OutboxStatus.DONE)
    assert _rows() == [("held_not_recorded", str(order.pk))]


def test_since_leaves_out_older_authorizations(books):
    Order.objects.filter(pk=books["paid"].pk).update(status=OrderStatus.CANCELLED)
    tomorrow = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%d")
    code, out = _reconcile("--since", tomorrow)
    assert (code, "0 orders compared: 0 mismatches." in out) == (0, True)


def test_a_bad_since_is_a_clear_error():
    with pytest.raises(Exception, match="not a date"):
        call_command("reconcile_payments", "--since", "yesterday")


class _Down(SandboxGateway):
    def records(self, *, since):
        raise GatewayError("connection timed out")
        yield  # pragma: no cover


def test_an_unreadable_gateway_exits_2_and_pipeline_status_says_so(books, settings):
    settings.HASHCART = {**settings.HASHCART, "PAYMENT_GATEWAY": f"{__name__}._Down"}
    assert _reconcile()[0] == 2
    out = StringIO()
    call_command("pipeline_status", stdout=out)
    assert "reconciliation: FAILED at" in out.getvalue()
    assert "connection timed out" in out.getvalue()


def test_pipeline_status_shows_the_latest_run(books):
    out = StringIO()
    call_command("pipeline_status", stdout=out)
    assert "reconciliation: never run" in out.getvalue()
    Order.objects.filter(pk=books["paid"].pk).update(status=OrderStatus.CANCELLED)
    _reconcile()
    out = StringIO()
    call_command("pipeline_status", stdout=out)
    assert "3 orders, 1 mismatch (reconcile_payments lists them)" in out.getvalue()


def test_the_beat_task_records_a_run_and_logs_mismatches_as_errors(books, caplog):
    from orders.tasks import reconcile_payments_task

    Order.objects.filter(pk=books["paid"].pk).update(status=OrderStatus.CANCELLED)
    reconcile_payments_task.apply()
    run = PaymentReconciliation.objects.get()
    assert [m["kind"] for m in run.mismatches] == ["held_not_recorded"]
    assert any(r.levelname == "ERROR" and "1 mismatches" in r.getMessage() for r in caplog.records)


def _refunded_in_part(books) -> Order:
    shipped = books["shipped"]
    order_refund(
        order_id=shipped.pk,
        amount=Decimal("40.00"),
        reason="scratched",
        restock=False,
        now=timezone.now(),
        actor_label="t",
    )
    stage_payments(now=timezone.now())
    shipped.refresh_from_db()
    assert shipped.refunded_total == Decimal("40.00")
    return shipped


def test_refunds_the_books_agree_on_are_no_mismatch(books):
    _refunded_in_part(books)
    assert _reconcile()[0] == 0


def test_money_given_back_twice_is_refunded_twice(books):
    order = _refunded_in_part(books)
    SandboxGateway().refund(
        reference=order.payment_reference,
        amount=Decimal("40.00"),
        currency="USD",
        idempotency_key=f"order-{order.pk}-refund-again",
        order_id=order.pk,
    )
    assert _rows() == [("refunded_twice", str(order.pk))]
    assert "gave back 80.00, order records 40.00" in _reconcile()[1]


def test_a_refund_the_gateway_never_gave_is_refund_missing(books):
    order = _refunded_in_part(books)
    SandboxLedgerEntry.objects.filter(operation="refund").delete()
    assert _rows() == [("refund_missing", str(order.pk))]


# --- Stripe's books ---------------------------------------------------------------------------
def _intent(intent_id: str, order_id: str, status: str, **extra: object) -> dict:
    return {
        "id": intent_id,
        "object": "payment_intent",
        "status": status,
        "amount": 14900,
        "amount_received": 14900 if status == "succeeded" else 0,
        "currency": "usd",
        "created": 1_764_000_000,
        "metadata": {"hashcart_order_id": order_id},
        **extra,
    }


@responses.activate
def test_stripe_records_read_every_page_of_payment_intents():
    responses.get(
        "https://api.stripe.com/v1/payment_intents",
        json={
            "object": "list",
            "url": "/v1/payment_intents",
            "has_more": True,
            "data": [
                _intent("pi_1", "7", "requires_capture"),
                _intent("pi_2", "8", "succeeded"),
            ],
        },
    )
    responses.get(
        "https://api.stripe.com/v1/payment_intents",
        json={
            "object": "list",
            "url": "/v1/payment_intents",
            "has_more": False,
            "data": [
                _intent("pi_3", "9", "canceled", latest_charge="ch_3"),
                _intent("pi_4", "", "requires_payment_method", last_payment_error={"code": "x"}),
            ],
        },
    )
    responses.get(
        "https://api.stripe.com/v1/refunds",
        json={
            "object": "list",
            "url": "/v1/refunds",
            "has_more": False,
            "data": [
                {
                    "id": "re_1",
                    "object": "refund",
                    "amount": 5000,
                    "currency": "usd",
                    "status": "succeeded",
                    "payment_intent": "pi_2",
                    "created": 1_764_000_100,
                    "metadata": {"hashcart_order_id": "8"},
                }
            ],
        },
    )
    client = stripe.StripeClient("sk_test_x", http_client=stripe.RequestsClient())
    since = timezone.now() - timedelta(days=30)
    records = list(StripeGateway(client).records(since=since))
    assert [(r.operation, r.order_id, r.reference, r.amount, r.approved) for r in records] == [
        ("authorize", 7, "pi_1", Decimal("149"), True),
        ("authorize", 8, "pi_2", Decimal("149"), True),
        ("capture", 8, "pi_2", Decimal("149"), True),
        ("authorize", 9, "pi_3", Decimal("149"), True),
        ("void", 9, "pi_3", Decimal(0), True),
        ("authorize", None, "pi_4", Decimal("149"), False),
        ("refund", 8, "pi_2", Decimal("50"), True),
    ]
    first, second, _ = responses.calls
    assert f"created%5Bgte%5D={int(since.timestamp())}" in first.request.url
    assert "starting_after=pi_2" in second.request.url


@responses.activate
def test_stripe_unreachable_is_a_gateway_error():
    responses.get("https://api.stripe.com/v1/payment_intents", status=500, json={"error": {}})
    client = stripe.StripeClient("sk_test_x", http_client=stripe.RequestsClient())
    with pytest.raises(GatewayError):
        list(StripeGateway(client).records(since=timezone.now()))
