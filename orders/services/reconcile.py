"""Reconciliation: the gateway's books against the orders (issue 12, item 8; DESIGN §5.5).

The payment outbox makes every call once, but money is what the gateway says it is. This
compares, order by order, what the gateway recorded (``PaymentGateway.records``: the sandbox
ledger, Stripe's PaymentIntents by their order metadata) with what the orders say, and names
every difference. Work still in the outbox (an operation pending or being sent) is not a
difference: its answer is on the way.

The kinds of mismatch, each a row with the order and what differs:
- ``held_not_recorded``: the gateway holds money on the card, but the order is not paid (nor
  confirmed with its authorization on the way, nor cancelled with its void on the way);
- ``recorded_not_held``: the order is paid, but the gateway holds nothing for it;
- ``held_twice``: more than one authorization holds money for one order;
- ``captured_not_shipped``: money taken for an order that is not shipped;
- ``shipped_not_captured``: a shipped order whose money was never taken (and no capture on
  the way);
- ``amount_differs``: an authorization or capture of another amount than the order's total;
- ``refunded_twice``: the gateway gave back more than the order's refunds record (a refund
  given twice, or one nobody asked for);
- ``refund_missing``: the order records refunds the gateway did not give;
- ``unknown_order``: a gateway record that names no order of ours.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from orders.models import (
    REFUNDABLE_STATUSES,
    Order,
    OrderStatus,
    OutboxStatus,
    PaymentOperation,
    PaymentOperationKind,
    PaymentReconciliation,
)
from orders.payments import gateway
from orders.payments.base import GatewayError, GatewayRecord

MISMATCH_KINDS = {
    "held_not_recorded": "the gateway holds money for an order that is not paid",
    "recorded_not_held": "a paid order whose money the gateway does not hold",
    "held_twice": "more than one authorization holds money for one order",
    "captured_not_shipped": "money taken for an order that is not shipped",
    "shipped_not_captured": "a shipped order whose money was never taken",
    "amount_differs": "the gateway's amount is not the order's total",
    "refunded_twice": "the gateway gave back more than the order's refunds record",
    "refund_missing": "the order records refunds the gateway did not give",
    "unknown_order": "a gateway record that names no order",
}
# Orders whose money has been taken (captured when the label was bought): those that may be
# refunded, and those refunded in full.
_CAPTURED_STATUSES = frozenset({*REFUNDABLE_STATUSES, OrderStatus.REFUNDED})
_IN_FLIGHT = (OutboxStatus.PENDING, OutboxStatus.PROCESSING)


@dataclass(frozen=True, slots=True)
class Mismatch:
    kind: str
    order_id: int | None
    detail: str


@dataclass
class Reconciliation:
    """What one comparison read and found."""

    since: datetime
    records: int = 0
    orders: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)


def payments_reconcile(*, since: datetime, records: Iterable[GatewayRecord]) -> Reconciliation:
    """Compare the gateway's ``records`` with the orders authorized since ``since`` (and any
    order the records name). Reads only."""
    found = Reconciliation(since=since)
    books: dict[int, list[GatewayRecord]] = defaultdict(list)
    for record in records:
        found.records += 1
        if record.order_id is None:
            found.mismatches.append(
                Mismatch("unknown_order", None, f"{record.operation} {record.reference}")
            )
        else:
            books[record.order_id].append(record)
    ours = set(
        PaymentOperation.objects.filter(
            operation=PaymentOperationKind.AUTHORIZE, created_at__gte=since
        ).values_list("order_id", flat=True)
    )
    order_ids = sorted(ours | set(books))
    orders = Order.objects.in_bulk(order_ids)
    in_flight: dict[int, set[str]] = defaultdict(set)
    for order_id, operation in PaymentOperation.objects.filter(
        order_id__in=order_ids, status__in=_IN_FLIGHT
    ).values_list("order_id", "operation"):
        in_flight[order_id].add(operation)
    found.orders = len(orders)
    for order_id in order_ids:
        order = orders.get(order_id)
        if order is None:
            found.mismatches.extend(
                Mismatch("unknown_order", order_id, f"{r.operation} {r.reference}")
                for r in books[order_id]
            )
            continue
        found.mismatches.extend(_order_mismatches(order, books[order_id], in_flight[order_id]))
    return found


def _order_mismatches(
    order: Order, records: list[GatewayRecord], in_flight: set[str]
) -> list[Mismatch]:
    def mismatch(kind: str, detail: str) -> Mismatch:
        return Mismatch(kind, order.pk, detail)

    holds = [r for r in records if r.operation == "authorize" and r.approved]
    voided = any(r.operation == "void" and r.approved for r in records)
    captured = sum(
        (r.amount for r in records if r.operation == "capture" and r.approved), Decimal(0)
    )
    holding = bool(holds) and not voided and not captured
    status = order.status
    found = []
    if len(holds) > 1:
        found.append(mismatch("held_twice", f"{len(holds)} authorizations hold money"))
    found.extend(
        mismatch("amount_differs", f"authorized {hold.amount}, order total {order.total}")
        for hold in holds
        if hold.amount != order.total
    )
    if captured and captured != order.total:
        found.append(mismatch("amount_differs", f"captured {captured}, order total {order.total}"))
    # An order waiting for its buyer's card authentication is decided by the buyer's return or
    # the lapse of its window (``orders.services.authentication``), not yet here.
    on_the_way = (
        (status == OrderStatus.CONFIRMED and "authorize" in in_flight)
        or "void" in in_flight
        or status == OrderStatus.AUTHENTICATION_REQUIRED
    )
    # A shipped order still holding is the capture's mismatch (below), not this one.
    if holding and status not in {OrderStatus.PAID, *_CAPTURED_STATUSES} and not on_the_way:
        found.append(mismatch("held_not_recorded", f"held {holds[0].amount}, order {status}"))
    if status == OrderStatus.PAID and (not holds or voided) and not in_flight:
        found.append(mismatch("recorded_not_held", "paid, but the gateway holds nothing"))
    if captured and status not in _CAPTURED_STATUSES:
        found.append(mismatch("captured_not_shipped", f"captured {captured}, order {status}"))
    if status in _CAPTURED_STATUSES and not captured and "capture" not in in_flight:
        found.append(mismatch("shipped_not_captured", f"order {status}, nothing captured"))
    refunded = sum(
        (r.amount for r in records if r.operation == "refund" and r.approved), Decimal(0)
    )
    if refunded != order.refunded_total and "refund" not in in_flight:
        kind = "refunded_twice" if refunded > order.refunded_total else "refund_missing"
        found.append(mismatch(kind, f"gave back {refunded}, order records {order.refunded_total}"))
    return found


def reconciliation_run(*, since: datetime, now: datetime) -> PaymentReconciliation:
    """Read the gateway's books since ``since``, compare them with the orders and record the
    result (``pipeline_status`` shows the latest). A gateway that cannot be read is recorded
    as the run's error, and ``GatewayError`` is raised again for the caller to report."""
    try:
        found = payments_reconcile(since=since, records=list(gateway().records(since=since)))
    except GatewayError as exc:
        PaymentReconciliation.objects.create(ran_at=now, since=since, error=str(exc))
        raise
    return PaymentReconciliation.objects.create(
        ran_at=now,
        since=since,
        records=found.records,
        orders=found.orders,
        mismatches=[
            {"kind": m.kind, "order_id": m.order_id, "detail": m.detail} for m in found.mismatches
        ],
    )
