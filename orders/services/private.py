"""The private channel of confirmation requests, for when the public one is full (DESIGN §3.7).

X lets a brand account post about 100 replies per 15 minutes: in a 500-unit flash sale most
buyers would wait an hour for their code. So a confirmation request that the account's reply
budget cannot post within ``HASHCART["PUBLIC_REPLY_WAIT_SECONDS"]`` of the purchase goes to the
buyer privately instead (``orders_request_privately``, a sweep on the beat and in
``pipeline.stage_send``, after the senders):

- The switch is decided by the budget alone (``social.services.replies_beyond_budget``): the
  request is switched as soon as the queue ahead of it shows the budget cannot post it by its
  deadline (the purchase, when the order and its request were written, plus the wait), and
  never while the budget could: a request held back by an outage or a retry stays public.
- One transaction per order: the queued public reply is rewritten to say only "check your
  e-mail" (no code, low priority: it may be skipped as stale), the order is marked
  (``request_private_at``) and the e-mail with the code and a Confirm link is queued and sent at
  once after the commit. Compare-and-set on both: a reply a sender has claimed is not
  rewritten (it posts the code and opens the window as usual), and an order that was confirmed,
  cancelled, or whose window opened meanwhile is not switched (the rewrite is rolled back).
- The window starts when that e-mail is sent (``orders.services.common.
  order_private_window_open``, called by the e-mail outbox); the public reply's posting never
  opens it. A window opens once, whichever channel.
- The buyer confirms with the e-mail's button (``order_private_confirm``) or by posting
  ``#Confirm<CODE>`` (``orders.services.decide``): both under the order's campaign lock, both a
  compare-and-set on the status, so exactly one confirms.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from orders import messages
from orders.models import Order, OrderStatus
from orders.selectors import orders_still_buyable
from orders.services.common import (
    PRIVATE_REQUEST,
    event,
    events_save,
    order_confirm,
)
from orders.services.lifecycle import CONFIRMATION_REQUEST
from orders.services.locks import order_lock
from orders.services.notifications import email_queue
from social.models import ReplyPriority
from social.services import replies_beyond_budget, reply_rewrite

logger = logging.getLogger(__name__)


def public_reply_wait() -> timedelta | None:
    """How long a confirmation request may wait for the public channel; None: it always waits."""
    seconds = settings.HASHCART.get("PUBLIC_REPLY_WAIT_SECONDS", 30)
    return None if seconds is None else timedelta(seconds=float(seconds))


def orders_request_privately(*, now: datetime) -> int:
    """Send privately every confirmation request that the public reply budget cannot post in
    time (see the module docstring); returns how many orders this call switched. A sweep,
    idempotent: an order switched once is never switched again, and running it twice at once
    switches each order once (``order_request_privately``)."""
    wait = public_reply_wait()
    if wait is None:
        return 0
    post_ids = replies_beyond_budget(kind=CONFIRMATION_REQUEST, wait=wait, now=now)
    if not post_ids:
        return 0
    order_ids = (
        Order.objects.filter(
            purchase_post_id__in=post_ids,
            status=OrderStatus.PENDING,
            expires_at__isnull=True,
            request_private_at__isnull=True,
        )
        .order_by("id")
        .values_list("pk", flat=True)
    )
    return sum(order_request_privately(order_id=pk, now=now) for pk in list(order_ids))


def order_request_privately(*, order_id: int, now: datetime) -> bool:
    """Switch one pending order's confirmation request to the private channel; True if this
    call did. In one transaction: its public reply rewritten while still queued
    (``social.services.reply_rewrite``, compare-and-set on the reply's status: it is locked
    first, as the sender locks a reply before the order whose window it opens), then the order
    marked by compare-and-set (pending, no window, not switched yet), an audit row, and the
    e-mail queued and sent after the commit. Nothing changes if either compare-and-set fails.
    """
    with transaction.atomic():
        order = Order.objects.select_related("campaign", "cardholder__user").get(pk=order_id)
        if order.purchase_post_id is None or not reply_rewrite(
            post_id=order.purchase_post_id,
            kind=CONFIRMATION_REQUEST,
            text=messages.reply_check_email(order=order),
            priority=ReplyPriority.OTHER,
        ):
            return False
        if not Order.objects.filter(
            pk=order.pk,
            status=OrderStatus.PENDING,
            expires_at__isnull=True,
            request_private_at__isnull=True,
        ).update(request_private_at=now):
            transaction.set_rollback(True)
            return False
        event(
            order=order,
            kind="request_private",
            now=now,
            data={"reason": "the public reply budget could not post the request in time"},
        ).save()
        subject, body, html = messages.email_private_request(
            order=order,
            cardholder=order.cardholder,
            prefix=order.campaign.confirm_prefix,
            window_minutes=settings.HASHCART["CONFIRMATION_WINDOW_MINUTES"],
        )
        email_queue(
            key=f"{PRIVATE_REQUEST}:{order.pk}",
            cardholder=order.cardholder,
            kind=PRIVATE_REQUEST,
            order=order,
            message=(subject, body),
            html=html,
            send_on_commit=True,
        )
    return True


def order_private_confirm(*, order_id: int, now: datetime) -> str:
    """The Confirm button of a confirmation request sent privately: confirms the order as its
    ``#Confirm<CODE>`` post would (and, being the e-mail's own click, also an order above the
    buyer's confirm-by-e-mail amount).

    Returns ``confirmed`` (confirmed now, its authorization queued), ``already`` (confirmed
    before, by this button or by post: nothing changes), ``late`` (the window closed),
    or ``closed`` (the order lapsed or was cancelled, its request was never sent privately, or
    its buyer can no longer buy with it: ``orders_still_buyable``). Under the order's campaign
    lock (``order_lock``), as the decider's confirmation: the two are ordered, and the second
    finds the order confirmed. The window is open while the e-mail is being marked sent
    (``expires_at`` unset), as it is for a post.
    """
    with transaction.atomic():
        order = order_lock(order_id)
        if order.status != OrderStatus.PENDING:
            return "already" if order.confirmed_at is not None else "closed"
        if order.request_private_at is None:
            return "closed"
        if order.expires_at is not None and now > order.expires_at:
            return "late"
        if order.pk not in orders_still_buyable(orders=[order]):
            return "closed"
        confirmed = order_confirm(order=order, now=now, data={"channel": "private e-mail"})
        if confirmed is None:
            return "already"
        audit, authorization = confirmed
        events_save(events=[audit], now=now)
        authorization.save()
        if order.email_confirm_required:
            Order.objects.filter(pk=order.pk, email_confirmed_at__isnull=True).update(
                email_confirmed_at=now
            )
    return "confirmed"
