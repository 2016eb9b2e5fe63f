"""What fulfillment asks of an order: ship it, capture it, deliver it (DESIGN §7).

Orders' public face for fulfillment: the order's transitions, its audit rows, its capture in the
payment outbox and the buyer's e-mail are written here, by the app that owns them. Fulfillment
keeps its shipments and calls these in its own transactions.
"""

from dataclasses import dataclass
from datetime import datetime

from orders import messages
from orders.models import (
    Order,
    OrderStatus,
    OutboxStatus,
    PaymentOperation,
    PaymentOperationKind,
)
from orders.models.order import OrderStage
from orders.services.common import (
    event,
    events_save,
    order_transition,
    payment_operation_queue,
)
from orders.services.locks import order_lock
from orders.services.notifications import email_queue
from orders.services.payments import payment_operation_run


@dataclass(frozen=True)
class ShipOutcome:
    """``shipped``; ``not_paid`` (the order is ``order_status``: nothing written); ``lost``
    (another worker moved the order first: nothing written)."""

    result: str
    order_status: str


def order_ship(
    *, order_id: int, carrier: str, tracking_number: str, actor: str, now: datetime
) -> ShipOutcome:
    """The order's label is bought: move it from paid to shipped, write its audit row, queue
    its capture in the payment outbox (one row per order and operation, whose idempotency key
    charges once) and e-mail the buyer (once per order), in the caller's transaction.

    Locks the order's campaign, then reads the order (``order_lock``): callers lock their own
    rows of the order (the shipment) after this, the order in which cancelling locks them.
    Raises ``TransactionManagementError`` outside a transaction. The capture is not run here
    (no network inside a transaction): call ``order_capture`` after the commit.
    """
    order = order_lock(order_id)
    if order.status != OrderStatus.PAID:
        return ShipOutcome("not_paid", str(order.status))
    if not order_transition(order=order, transition="ship", fields={}):
        return ShipOutcome("lost", str(order.status))
    events_save(
        events=[
            event(
                order=order,
                kind="shipped",
                now=now,
                from_status=OrderStatus.PAID,
                to_status=OrderStatus.SHIPPED,
                actor_label=actor,
                data={"carrier": carrier, "tracking": tracking_number},
            )
        ],
        now=now,
    )
    payment_operation_queue(order=order, operation=PaymentOperationKind.CAPTURE)
    email_queue(
        key=f"shipped:{order.pk}",
        cardholder=order.cardholder,
        kind="shipped",
        order=order,
        message=messages.email_shipped(
            order=order, cardholder=order.cardholder, carrier=carrier, tracking=tracking_number
        ),
    )
    return ShipOutcome("shipped", str(order.status))


def order_capture(*, order_id: int, now: datetime) -> None:
    """Run the shipped order's pending capture now rather than at the payments sweep, through
    the same outbox row (its idempotency key keeps it once). Call it outside any transaction:
    it calls the gateway. A gateway that fails leaves the row to the sweep's retries; an order
    with no pending capture is left alone."""
    capture = (
        PaymentOperation.objects.filter(
            order_id=order_id, operation=PaymentOperationKind.CAPTURE, status=OutboxStatus.PENDING
        )
        .values_list("pk", flat=True)
        .first()
    )
    if capture is not None:
        payment_operation_run(operation_id=capture, now=now)


def order_deliver(*, order_id: int, delivered_at: datetime, actor: str = "carrier") -> bool:
    """The carrier delivered the order: shipped to delivered by compare-and-set, with its audit
    row, in the caller's transaction. True if this call moved it; False if it was not shipped
    (already delivered, say: nothing written; refunded in part or in full on its way: only the
    audit row).

    Takes no lock: the compare-and-set is the guard, and callers hold their shipment's row lock,
    which must not be followed by the campaign's (cancelling takes campaign, then shipment)."""
    order = Order.objects.get(pk=order_id)
    delivered = order_transition(order=order, transition="deliver", fields={})
    if not delivered:
        if order.status not in (OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED):
            return False
        # Refunded on its way: the status keeps saying what happened to the money, and the
        # delivery is in the audit trail all the same (the shipment's delivery is once).
        # The sales report counts it delivered all the same (``Order.furthest_stage``).
        Order.objects.filter(pk=order.pk).update(furthest_stage=OrderStage.DELIVERED)
    events_save(
        events=[
            event(
                order=order,
                kind="delivered",
                now=delivered_at,
                from_status=OrderStatus.SHIPPED if delivered else order.status,
                to_status=order.status,
                actor_label=actor,
            )
        ],
        now=delivered_at,
    )
    return delivered
