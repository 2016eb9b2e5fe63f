"""The one way to take an order for a change of state.

Every writer of an order's status holds its campaign's row lock first (the deciders hold it
while they reserve stock), so an order read under that lock cannot change status until the
transaction ends: reading it before the lock would act on a status that may already be gone.
"""

from django.db import transaction
from django.db.transaction import TransactionManagementError

from catalog.services import campaigns_lock
from orders.models import Order


def order_lock(order_id: int) -> Order:
    """Lock the order's campaign, then read the order (with its cardholder's user and merchant).
    Must run inside a transaction (``campaigns_lock`` refuses otherwise); ``Order.DoesNotExist``
    if there is no such order."""
    if not transaction.get_connection().in_atomic_block:
        raise TransactionManagementError("order_lock() needs an open transaction")
    campaign_id = Order.objects.values_list("campaign_id", flat=True).get(pk=order_id)
    campaigns_lock([campaign_id])
    return Order.objects.select_related("cardholder__user", "merchant").get(pk=order_id)
