"""Card authentication (3-D Secure, issue 12 item 7; DESIGN §3.4).

When the card's bank asks the cardholder to authenticate an authorization, the payment outbox
moves the confirmed order to ``authentication_required`` (``orders.services.payments``): it keeps
its unit, its deadline is a confirmation window after the gateway asked
(``authentication_expires_at``), and the buyer is e-mailed a private link to the page that runs
the bank's check (``orders.views.authenticate``). From there:

- the buyer's return (``order_authentication_complete``): the outcome is read from the gateway,
  never taken from the browser, and applied as an answer to the authorization is: paid (the
  shipment scheduled in the same transaction) or declined (the unit released once);
- the lapse (``orders_authentication_lapse``, in the expiry sweep): an order still waiting when
  its window ends is declined, its unit released, and its authorization voided at the gateway
  (which cancels a wait there as well as a hold, so that an authentication finished late can
  place none).

Each is a compare-and-set under the order's lock: done twice, or racing, it happens once.
"""

from datetime import datetime

from django.db import transaction

from orders import messages
from orders.models import Order, OrderStatus
from orders.payments import gateway
from orders.payments.base import GatewayError, GatewayResult
from orders.services.locks import order_lock
from orders.services.payments import authorization_apply, authorization_void_queue


def authentication_lapsed(*, order: Order, now: datetime) -> bool:
    """Whether the order's time to authenticate has run out at ``now``."""
    return order.authentication_expires_at is not None and now > order.authentication_expires_at


def order_authentication_status(*, order: Order) -> GatewayResult | None:
    """Where the authorization of an order waiting for its buyer stands at the gateway (for its
    page: ``requires_action`` carries what the bank's check needs), or None when the gateway
    cannot say now. Reads only; calls the gateway, so never inside a transaction."""
    try:
        return gateway().authentication_status(reference=order.payment_reference)
    except GatewayError:
        return None


def order_authentication_complete(*, order_id: int, now: datetime) -> str:
    """The buyer is back from their bank's check (the page's POST): read the outcome from the
    gateway and apply it.

    Returns ``paid`` (authorized: the order is paid and its shipment scheduled), ``declined``
    (the authentication failed: the unit released, the buyer told), ``waiting`` (the bank has
    no answer yet: nothing changes), ``late`` (the window had closed: nothing changes; the
    expiry sweep declines it), ``closed`` (the order is no longer waiting: decided already,
    or cancelled) or ``unavailable`` (the gateway cannot say now: try again).

    The gateway is asked outside any transaction; then, under the order's lock (campaign, then
    order), the order must still be waiting and in time, or nothing changes. An approval for an
    order cancelled or lapsed meanwhile is not applied: leaving this state queued the void that
    cancels it at the gateway.
    """
    order = Order.objects.get(pk=order_id)
    if order.status == OrderStatus.DECLINED and authentication_lapsed(order=order, now=now):
        return "late"
    if order.status != OrderStatus.AUTHENTICATION_REQUIRED:
        return "closed"
    if authentication_lapsed(order=order, now=now):
        return "late"
    result = order_authentication_status(order=order)
    if result is None:
        return "unavailable"
    if result.requires_action:
        return "waiting"
    with transaction.atomic():
        order = order_lock(order_id)
        if order.status != OrderStatus.AUTHENTICATION_REQUIRED:
            return "closed"
        if authentication_lapsed(order=order, now=now):
            return "late"
        authorization_apply(order_id=order.pk, result=result, now=now)
    return "paid" if result.approved else "declined"


def order_authentication_lapse(*, order_id: int, now: datetime) -> int:
    """Decline one order whose time to authenticate ran out, release its unit, tell the buyer
    as for a decline, and queue the void of its authorization; 1 if this call did it, else 0
    (no longer waiting, or still in time). Locks the campaign, then the order."""
    with transaction.atomic():
        order = order_lock(order_id)
        if order.status != OrderStatus.AUTHENTICATION_REQUIRED or not authentication_lapsed(
            order=order, now=now
        ):
            return 0
        authorization_apply(
            order_id=order.pk,
            result=GatewayResult(
                approved=False,
                reference=order.payment_reference,
                decline_code=messages.AUTHENTICATION_LAPSED,
            ),
            now=now,
        )
        authorization_void_queue(order_id=order.pk)
    return 1


def orders_authentication_lapse(*, now: datetime, limit: int = 1000) -> int:
    """The sweep: lapse every order still waiting for its authentication when its window has
    ended (``order_authentication_lapse``); returns how many. Idempotent: running it twice
    lapses nothing more."""
    due = list(
        Order.objects.filter(
            status=OrderStatus.AUTHENTICATION_REQUIRED, authentication_expires_at__lt=now
        )
        .order_by("campaign_id", "id")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(order_authentication_lapse(order_id=order_id, now=now) for order_id in due)
