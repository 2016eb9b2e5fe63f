"""The ops commands of DESIGN §10.4, as ops run them."""

import csv
import io
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from fulfillment.business_days import next_business_day
from fulfillment.models import Shipment, ShipmentStatus
from fulfillment.selectors import day_phrase, merchant_today
from fulfillment.tests.test_labels_and_tracking import paid_order
from orders.models import Order, OrderStatus
from sandbox.models import SandboxLedgerEntry
from tests.shop import shop_open

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=io.StringIO())
    except SystemExit as exit_:
        return out.getvalue(), int(exit_.code or 0)
    return out.getvalue(), 0


def _today(order):
    return merchant_today(order.merchant, timezone.now())


def _due_today(order) -> None:
    Shipment.objects.filter(order=order).update(ship_by=_today(order))


def test_fulfillment_queue_as_a_table_and_as_csv():
    shop_open()
    order = paid_order()
    _due_today(order)
    table, _ = run("fulfillment_queue")
    assert f"{order.confirmation_code}" in table
    assert "1 Main Street, Springfield, IL 62701" in table
    assert f"1 shipment(s) to ship by {day_phrase(next_business_day(_today(order)))}." in table
    rows = list(csv.DictReader(io.StringIO(run("fulfillment_queue", "--csv")[0])))
    assert [(r["order"], r["product"], r["state"]) for r in rows] == [
        (order.confirmation_code, "Kindle Fire HD", "IL")
    ]


def test_the_queue_csv_has_the_whole_address_and_the_documented_columns():
    from fulfillment.management.commands.fulfillment_queue import COLUMNS, Command

    shop_open()
    order = paid_order()
    _due_today(order)
    Order.objects.filter(pk=order.pk).update(
        ship_to={**order.ship_to, "name": "=HYPERLINK(1)", "line2": "Apt 4", "country": "US"}
    )
    out = run("fulfillment_queue", "--csv")[0]
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert list(row) == list(COLUMNS)
    assert all(column in Command.help for column in COLUMNS)
    shipment = Shipment.objects.get(order=order)
    assert {k: row[k] for k in ("name", "line1", "line2", "city", "state", "zip", "country")} == {
        "name": "'=HYPERLINK(1)",  # csv_safe: a cardholder's text is never a formula
        "line1": "1 Main Street",
        "line2": "Apt 4",
        "city": "Springfield",
        "state": "IL",
        "zip": "62701",
        "country": "US",
    }
    assert (row["ship_by"], row["promised_delivery"], row["quantity"]) == (
        f"{shipment.ship_by:%Y-%m-%d}",
        f"{shipment.promised_delivery:%Y-%m-%d}",
        "1",
    )


def test_due_by_widens_or_narrows_the_queue_and_a_bad_date_is_refused():
    shop_open()
    order = paid_order()
    later = next_business_day(next_business_day(next_business_day(_today(order))))
    Shipment.objects.filter(order=order).update(
        ship_by=later, promised_delivery=later + timedelta(days=2)
    )
    empty, _ = run("fulfillment_queue")
    assert empty == f"Nothing to ship by {day_phrase(next_business_day(_today(order)))}.\n"
    assert "0 label(s) would be bought" in run("buy_labels", "--dry-run")[0]
    wide = f"{later:%Y-%m-%d}"
    assert order.confirmation_code in run("fulfillment_queue", "--due-by", wide)[0]
    out = run("buy_labels", "--dry-run", "--due-by", wide)[0]
    assert f"1 label(s) would be bought, due by {day_phrase(later)} (dry run)." in out
    narrow = f"{later - timedelta(days=1):%Y-%m-%d}"
    assert run("fulfillment_queue", "--due-by", narrow)[0].startswith("Nothing to ship by ")
    for command in ("fulfillment_queue", "buy_labels"):
        for bad in ("tomorrow", "2026-02-30", "20261130", "2026-W48-1"):
            with pytest.raises(CommandError, match="is not a date like 2026-11-30"):
                call_command(command, "--due-by", bad, stdout=io.StringIO())
        with pytest.raises(CommandError, match="No merchant has the slug 'nope'"):
            call_command(
                command,
                "--merchant",
                "nope",
                "--csv" if command == "fulfillment_queue" else "--dry-run",
                stdout=io.StringIO(),
            )
    assert Shipment.objects.get(order=order).status == ShipmentStatus.AWAITING_LABEL


def test_buy_labels_dry_run_buys_nothing_and_the_real_run_captures():
    shop_open()
    order = paid_order()
    _due_today(order)
    out, code = run("buy_labels", "--dry-run")
    assert (code, "1 label(s) would be bought, due by " in out) == (0, True)
    assert Shipment.objects.get(order=order).status == ShipmentStatus.AWAITING_LABEL
    out, code = run("buy_labels")
    assert code == 0
    assert "1 bought" in out
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    assert SandboxLedgerEntry.objects.filter(operation="capture").count() == 1


def test_mark_shipped_by_code_captures_once_and_refuses_twice():
    shop_open()
    order = paid_order()
    out, _ = run("mark_shipped", order.confirmation_code, "--tracking", "1Z999", "--carrier", "UPS")
    assert "shipped, tracking 1Z999" in out
    shipment = Shipment.objects.get(order=order)
    assert (shipment.carrier, shipment.tracking_number) == ("UPS", "1Z999")
    with pytest.raises(CommandError, match="cannot be marked shipped"):
        call_command("mark_shipped", str(order.pk), "--tracking", "1Z999")
    assert SandboxLedgerEntry.objects.filter(operation="capture").count() == 1
    with pytest.raises(CommandError, match="No single order"):
        call_command("mark_shipped", "NOPE9", "--tracking", "x")


def test_sla_report_exit_codes():
    shop_open()
    order = paid_order()
    assert run("sla_report") == ("0 late, 0 at risk.\n", 0)
    _due_today(order)
    out, code = run("sla_report")
    assert (code, "AT RISK" in out, "ships today and has no label yet" in out) == (0, True, True)
    Shipment.objects.filter(order=order).update(ship_by=_today(order) - timedelta(days=1))
    out, code = run("sla_report")
    assert code == 1
    assert "LATE" in out
    assert "1 late, 0 at risk." in out


def test_track_shipments_moves_them_on():
    shop_open()
    order = paid_order()
    _due_today(order)
    run("buy_labels")
    assert "1 shipment(s) would be tracked" in run("track_shipments", "--dry-run")[0]
    with time_machine.travel(timezone.now() + timedelta(hours=40)):
        out, _ = run("track_shipments")
    assert "'delivered': 1" in out
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED


def test_export_orders_since_a_date(tmp_path):
    shop_open()
    order = paid_order()
    target = tmp_path / "orders.csv"
    run("export_orders", "--since", f"{timezone.now():%Y-%m-%d}", "--output", str(target))
    with target.open() as written:
        rows = list(csv.DictReader(written))
    assert [(r["code"], r["status"], r["subtotal"], r["tax"], r["total"]) for r in rows] == [
        (order.confirmation_code, "paid", "149.00", "9.31", "158.31")  # Illinois 6.25%
    ]
    later = f"{timezone.now() + timedelta(days=1):%Y-%m-%d}"
    assert run("export_orders", "--since", later)[0].count("\n") == 1  # the header only
    with pytest.raises(CommandError, match="not a date"):
        call_command("export_orders", "--since", "yesterday")


def test_sla_states_against_the_merchants_today():
    from fulfillment.models import ShipmentStatus as S
    from fulfillment.selectors import sla_state

    today = timezone.now().date()
    day = timedelta(days=1)

    def state(status, ship_by, promised):
        return sla_state(
            Shipment(status=status, ship_by=ship_by, promised_delivery=promised), today
        )

    # Labelled today and due in two days: on time (not "promised for today").
    assert state(S.LABEL_BOUGHT, today, today + 2 * day) == (
        "at risk",
        "ships today and the carrier has not scanned it yet",
    )
    assert state(S.IN_TRANSIT, today, today + 2 * day) is None
    # A label bought but never handed over after its ship-by day is late.
    assert state(S.LABEL_BOUGHT, today - day, today + day)[0] == "late"
    assert state(S.IN_TRANSIT, today - 2 * day, today)[1] == "promised for today"
    assert state(S.IN_TRANSIT, today - 3 * day, today - day)[0] == "late"
    assert state(S.DELIVERED, today - 3 * day, today - day) is None
