"""The cardholder's orders as a section of their settings page (``accounts/settings.html``),
which includes it without knowing orders: ``{% load orders_cardholder %}
{% cardholder_orders_section cardholder.pk %}``."""

from typing import Any

from django import template
from django.conf import settings

from orders.models import RETURNABLE_STATUSES, DisputeStatus, OrderStatus
from orders.selectors import cardholder_orders, cardholder_waitlist

register = template.Library()


@register.inclusion_tag("orders/_cardholder_orders.html")
def cardholder_orders_section(cardholder_id: int) -> dict[str, Any]:
    """The latest orders with their shipments, a pending one with its cancel button (which
        posts to ``orders:cardholder_order_cancel``), a disputed one with its case (status,
        deadline, the merchant's note, and an escalate button when rejected), its returns, and a
    delivered one with its return request form. The page's CSRF
        token is passed on by Django."""
    return {
        "orders": cardholder_orders(cardholder_id=cardholder_id),
        # Waiting entries with their places and a leave button (``orders:waitlist_leave``).
        "waiting": cardholder_waitlist(cardholder_id=cardholder_id),
        "cancellable": OrderStatus.PENDING,
        "escalatable": DisputeStatus.REJECTED,
        "returnable": RETURNABLE_STATUSES,
        "return_days": settings.HASHCART["RETURN_DAYS"],
    }
