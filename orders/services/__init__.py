"""Writes of the orders app, by stage of an order's life."""

from orders.services.authentication import (
    order_authentication_complete,
    order_authentication_status,
    orders_authentication_lapse,
)
from orders.services.decide import posts_decide
from orders.services.lifecycle import (
    CONFIRMATION_REQUEST,
    cardholder_orders_cancel,
    expiry_horizon,
    order_cancel,
    order_email_confirm,
    order_expire,
    order_window_open,
    order_windows_open,
    orders_expire_due,
    orders_expire_unrequested,
)
from orders.services.notifications import notifications_send_due
from orders.services.payments import payment_operation_run, payment_operations_due
from orders.services.private import order_private_confirm, orders_request_privately
from orders.services.refunds import order_refund
from orders.services.reminders import orders_remind_due
from orders.services.shipping import ShipOutcome, order_capture, order_deliver, order_ship

__all__ = [
    "CONFIRMATION_REQUEST",
    "ShipOutcome",
    "cardholder_orders_cancel",
    "expiry_horizon",
    "notifications_send_due",
    "order_authentication_complete",
    "order_authentication_status",
    "order_cancel",
    "order_capture",
    "order_deliver",
    "order_email_confirm",
    "order_expire",
    "order_private_confirm",
    "order_refund",
    "order_ship",
    "order_window_open",
    "order_windows_open",
    "orders_authentication_lapse",
    "orders_expire_due",
    "orders_expire_unrequested",
    "orders_remind_due",
    "orders_request_privately",
    "payment_operation_run",
    "payment_operations_due",
    "posts_decide",
]
