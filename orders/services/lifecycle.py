"""Order transitions after the decision: the confirmation window, expiry, cancellation.

Each transition is a compare-and-set on the status (``order_transition``), with its audit row,
its stock release and its outbox rows in the same transaction; doing it twice does nothing the
second time. Campaign rows are locked before order rows, as in ``orders.services.decide``; a
cardholder's lockdown (``cardholder_orders_cancel``, called by ``accounts``) and "Not me" lock
the cardholder's purchase controls before any campaign, as deciders do.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.module_loading import import_string

from accounts.models import Cardholder
from accounts.selectors import purchasing_paused
from accounts.services import controls_lock, purchasing_set_paused
from catalog.services import campaigns_lock
from orders import messages
from orders.models import (
    Notification,
    Order,
    OrderStatus,
    OutboxStatus,
    PaymentOperationKind,
)
from orders.selectors import orders_still_buyable
from orders.services.common import (
    PRIVATE_REQUEST,
    confirmation_window,
    events_save,
    order_confirm,
    order_release,
    payment_operation,
)
from orders.services.locks import order_lock
from orders.services.notifications import email_queue
from social.selectors import (
    feed_horizons,
    posts_account_ids,
    posts_accounts,
    posts_unanswered,
    replies_sent_at,
)
from social.services import replies_withdraw

# The kind of the reply that asks the buyer to confirm (queued by ``orders.services.decide``);
# its posting opens the order's window.
CONFIRMATION_REQUEST = "confirmation_request"


def order_window_open(*, post_id: int, kind: str, sent_at: datetime) -> int:
    """``HASHCART["REPLY_SENT_HANDLER"]``: social posted the reply of ``kind`` to the inbox post
    ``post_id`` at ``sent_at``, and calls this in the transaction that records it. A
    confirmation request starts the window of the order it asks about: ``expires_at`` =
    ``sent_at`` + the window (DESIGN §3.3). Returns 1 if this call opened it, else 0.

    Compare-and-set: only a pending order whose window is not open yet is changed, and not one
    whose request went privately: its public reply says only "check your e-mail", and its
    window opens when the e-mail is sent (``order_private_window_open``); the posting is
    still recorded (``reply_posted_at``).
    """
    if kind != CONFIRMATION_REQUEST:
        return 0
    window = confirmation_window()
    pending = Order.objects.filter(purchase_post_id=post_id, status=OrderStatus.PENDING)
    opened = pending.filter(expires_at__isnull=True, request_private_at__isnull=True).update(
        reply_posted_at=sent_at, expires_at=sent_at + window
    )
    if not opened:
        pending.filter(request_private_at__isnull=False, reply_posted_at__isnull=True).update(
            reply_posted_at=sent_at
        )
    return opened


def order_windows_open() -> int:
    """Open the window of every pending order whose confirmation request is posted and whose
    window is not open yet (``order_window_open``); returns how many. A sweep, idempotent: the
    handler opens each window as its request is posted, so this finds work only for requests
    recorded without it."""
    unopened = Order.objects.filter(status=OrderStatus.PENDING, expires_at__isnull=True)
    sent = replies_sent_at(post_ids=unopened.values("purchase_post_id"), kind=CONFIRMATION_REQUEST)
    return sum(
        order_window_open(post_id=post_id, kind=CONFIRMATION_REQUEST, sent_at=sent_at)
        for post_id, sent_at in sent.items()
    )


def expiry_horizon(*, account_id: int, now: datetime) -> datetime:
    """Pending orders of this account's posts whose ``expires_at`` is before this may expire.

    The later of the feed's high-water mark and now minus the maximum feed lag (a feed that
    stopped cannot hold orders forever), held back in any case to just before the oldest post
    read but not yet decided: that post may be the confirmation, and it is in our own inbox, so
    the recovery sweep will decide it.
    """
    return _horizons(account_ids=[account_id], now=now)[account_id]


def _horizons(*, account_ids: list[int], now: datetime) -> dict[int, datetime]:
    """``expiry_horizon`` of each account, in two queries (``feed_horizons``)."""
    lag_floor = now - timedelta(minutes=settings.HASHCART["MAX_FEED_LAG_MINUTES"])
    horizons = {}
    for account_id, feed in feed_horizons(account_ids=account_ids).items():
        mark = feed.high_water_mark
        horizon = max(mark, lag_floor) if mark is not None else lag_floor
        if feed.oldest_undecided is not None:
            horizon = min(horizon, feed.oldest_undecided - timedelta(microseconds=1))
        horizons[account_id] = horizon
    return horizons


def orders_expire_due(*, now: datetime, limit: int = 1000) -> int:
    """Expire pending orders whose window closed behind the feed's horizon; release their units.

    Returns how many expired (at most ``limit`` per account). A confirmation that arrives late is
    never lost: the horizon waits for the feed (``expiry_horizon``). Running it twice expires
    nothing more.
    """
    opened = Order.objects.filter(status=OrderStatus.PENDING, expires_at__isnull=False)
    accounts = posts_account_ids(post_ids=opened.values("purchase_post_id"))
    if not accounts:
        return 0
    horizons = _horizons(account_ids=sorted(accounts), now=now)
    # The windows closed before the latest horizon; each one's own account's horizon decides.
    closed = list(
        opened.filter(expires_at__lt=max(horizons.values()))
        .order_by("campaign_id", "id")
        .values_list("pk", "purchase_post_id", "expires_at")
    )
    account_of = posts_accounts(post_ids=[post_id for _, post_id, _ in closed])
    due: dict[int, list[int]] = {}
    for order_id, post_id, expires_at in closed:
        account_id = account_of.get(post_id)
        if account_id is not None and expires_at < horizons[account_id]:
            due.setdefault(account_id, []).append(order_id)
    expired = 0
    for account_id in sorted(due):
        for order_id in due[account_id][:limit]:
            expired += order_expire(order_id=order_id, now=now, reason="window closed")
    return expired


def orders_expire_unrequested(*, now: datetime, limit: int = 1000) -> int:
    """Expire pending orders whose confirmation request will never be posted, so that no window
    opens: the reply failed for good or was dropped, or it has waited longer than
    ``CONFIRMATION_REQUEST_GIVE_UP_HOURS`` (a queued one is withdrawn first, and so is one whose
    sender died while sending it: its claim lapsed; ``social.services.replies_withdraw``).
    Returns how many.

    An order whose request is being sent right now (a live claim) is left alone: its window is
    about to open. An order whose request went privately (``orders.services.private``) waits
    for its e-mail instead of its reply, which says only "check your e-mail": it expires when
    that e-mail failed for good, or after the same give-up time, and its public reply is
    withdrawn if still queued, but never waited for.
    """
    give_up = now - timedelta(hours=settings.HASHCART["CONFIRMATION_REQUEST_GIVE_UP_HOURS"])
    unopened = Order.objects.filter(status=OrderStatus.PENDING, expires_at__isnull=True)
    public = unopened.filter(request_private_at__isnull=True)
    unrequested = posts_unanswered(
        post_ids=public.values("purchase_post_id"), kind=CONFIRMATION_REQUEST
    )
    mail_failed = Notification.objects.filter(
        order_id=OuterRef("pk"), kind=PRIVATE_REQUEST, status=OutboxStatus.FAILED
    )
    due = list(
        unopened.filter(
            Q(created_at__lt=give_up)
            | Q(purchase_post_id__isnull=True)
            | Q(request_private_at__isnull=True, purchase_post_id__in=unrequested)
            | Q(request_private_at__isnull=False) & Exists(mail_failed)
        )
        .order_by("campaign_id", "id")
        .values_list("pk", "purchase_post_id", "request_private_at")[:limit]
    )
    expired = 0
    for order_id, post_id, private_at in due:
        with transaction.atomic():
            # Withdraw a request still queued, or stuck with a dead sender's lapsed claim; one that
            # a sender holds right now is let through (unless it only says "check your e-mail").
            if (
                post_id is not None
                and replies_withdraw(
                    post_ids=[post_id],
                    kinds=[CONFIRMATION_REQUEST],
                    now=now,
                    reason="order expired: not sent in time",
                )
                and private_at is None
            ):
                continue
            expired += order_expire(
                order_id=order_id,
                now=now,
                reason="the confirmation request could not be posted",
                request_failed=True,
            )
    return expired


def order_expire(*, order_id: int, now: datetime, reason: str, request_failed: bool = False) -> int:
    """Expire one pending order and release its unit; 1 if this call expired it, else 0.
    ``request_failed``: its confirmation request was never posted (the e-mail says so)."""
    with transaction.atomic():
        order = order_lock(order_id)
        released = order_release(order=order, transition="expire", now=now, data={"reason": reason})
        if released is None:
            return 0
        released.save()
        email_queue(
            key=f"expired:{order.pk}",
            cardholder=order.cardholder,
            kind="expired",
            order=order,
            message=messages.email_expired(
                order=order, cardholder=order.cardholder, request_failed=request_failed
            ),
        )
    return 1


def order_cancel(
    *,
    order_id: int,
    now: datetime,
    actor_label: str,
    reason: str,
    pause_purchasing: bool = False,
    actor_id: int | None = None,
) -> bool:
    """Cancel an order that is pending, confirmed, waiting for its card authentication or paid;
    True if this call cancelled it.

    Releases its unit; a paid order's authorization is voided through the payment outbox and its
    shipment cancelled, and so is (without a shipment) one waiting for authentication. A
    confirmed order's authorization, if not yet sent, is then never sent
    (``payment_operation_run``), and if already approved, is voided. ``reason`` (a
    ``CancelReason``) is recorded and told in the e-mail, which says buying is paused only when
    it is. With ``pause_purchasing`` (the "Not me" link) buying by post is paused too, whether
    or not this order could still be cancelled, and the cardholder's other pending and
    confirmed orders are cancelled with it (``purchasing_set_paused``).

    Locks: purchase controls (with ``pause_purchasing``), then the campaigns (every campaign of
    the cardholder's open orders, sorted, with ``pause_purchasing``), then the order.
    """
    with transaction.atomic():
        cardholder_id, campaign_id, code = Order.objects.values_list(
            "cardholder_id", "campaign_id", "confirmation_code"
        ).get(pk=order_id)
        if pause_purchasing:
            cardholder = not_me_lock(cardholder_id=cardholder_id, campaign_id=campaign_id)
        order = _order_cancel_locked(
            order_id=order_id, now=now, reason=reason, actor_label=actor_label, actor_id=actor_id
        )
        if pause_purchasing:
            not_me_pause(cardholder=cardholder, code=code, now=now)
        if order is None:
            return False
        _cancelled_email(order=order, reason=reason)
    return True


def not_me_lock(*, cardholder_id: int, campaign_id: int) -> Cardholder:
    """The locks a "Not me" takes before reading its order, in the caller's transaction and in
    the deciders' order: the cardholder's purchase controls, then (sorted) the order's campaign
    and those of the cardholder's open orders, which pausing cancels. Returns the cardholder."""
    cardholder = Cardholder.objects.select_related("user").get(pk=cardholder_id)
    controls_lock(cardholder=cardholder)
    campaigns_lock(
        {campaign_id}
        | set(_open_orders(cardholder_id=cardholder_id).values_list("campaign_id", flat=True))
    )
    return cardholder


def not_me_pause(*, cardholder: Cardholder, code: str, now: datetime) -> None:
    """Pause buying by post after a "Not me" on order ``code`` (its other pending and confirmed
    orders are cancelled with it); the caller holds ``not_me_lock``."""
    purchasing_set_paused(
        cardholder=cardholder, paused=True, now=now, why=f"'Not me' on order #{code}"
    )


def cardholder_orders_cancel(
    *,
    cardholder_id: int,
    reason: str,
    now: datetime,
    platform: str | None = None,
    author_id: str | None = None,
    card_id: int | None = None,
) -> int:
    """Cancel a cardholder's pending, confirmed and authentication-waiting (not yet authorized)
    orders when the account is locked down: the ``CARDHOLDER_LOCKDOWN_HANDLER`` that
    ``accounts`` calls in its own transaction, which holds the cardholder's purchase controls
    lock. Only the orders posted by
    ``platform``/``author_id`` (an unlinked identity), or to be paid with ``card_id`` (a removed
    card), when given. Paid orders are left alone: the buyer cancels those ("Not me").

    Each unit is released once (compare-and-set); a confirmed order's authorization is then not
    sent, or voided if its approval is on the way; one waiting for authentication is voided.
    Locks the orders' campaigns, sorted, then each order. Returns how many this call cancelled;
    calling it again cancels nothing more.
    """
    orders = _open_orders(cardholder_id=cardholder_id)
    if platform is not None:
        orders = orders.filter(platform=platform, author_id=author_id)
    if card_id is not None:
        orders = orders.filter(card_id=card_id)
    candidates = list(orders.order_by("campaign_id", "id").values_list("pk", "campaign_id"))
    cancelled = 0
    with transaction.atomic():
        campaigns_lock({campaign_id for _, campaign_id in candidates})
        for order_id, _ in candidates:
            order = _order_cancel_locked(
                order_id=order_id,
                now=now,
                reason=reason,
                actor_label="cardholder",
                only_from=_OPEN_STATUSES,
            )
            if order is not None:
                _cancelled_email(order=order, reason=reason)
                cancelled += 1
    return cancelled


# Orders a lockdown cancels: not yet authorized, so no money has moved.
_OPEN_STATUSES = (
    OrderStatus.PENDING,
    OrderStatus.CONFIRMED,
    OrderStatus.AUTHENTICATION_REQUIRED,
)


def _open_orders(*, cardholder_id: int) -> QuerySet[Order]:
    return Order.objects.filter(cardholder_id=cardholder_id, status__in=_OPEN_STATUSES)


def _order_cancel_locked(
    *,
    order_id: int,
    now: datetime,
    reason: str,
    actor_label: str,
    actor_id: int | None = None,
    only_from: tuple[str, ...] | None = None,
) -> Order | None:
    """Cancel one order under its campaign's lock (taken here if the caller has not): release
    its unit, void a paid order's authorization and cancel its shipment. None, changing
    nothing, if it was not in ``only_from`` (any cancellable status by default) or had left it."""
    # Read under the campaign's lock, so the status seen is the one the transition starts from.
    order = order_lock(order_id)
    if only_from is not None and order.status not in only_from:
        return None
    released = order_release(
        order=order,
        transition="cancel",
        now=now,
        actor_label=actor_label,
        actor_id=actor_id,
        data={"reason": reason},
    )
    if released is None:
        return None
    events_save(events=[released], now=now)
    if released.from_status == OrderStatus.PAID:
        payment_operation(order=order, operation=PaymentOperationKind.VOID).save()
        import_string(settings.HASHCART["ORDER_CANCELLED_HANDLER"])(order=order)
    elif released.from_status == OrderStatus.AUTHENTICATION_REQUIRED:
        # The authorization waits at the gateway for the buyer: cancelled there too, so that
        # an authentication finished later can place no hold.
        payment_operation(order=order, operation=PaymentOperationKind.VOID).save()
    return order


def _cancelled_email(*, order: Order, reason: str) -> None:
    """Queue the order's cancellation e-mail, saying buying is paused only if it is now."""
    paused, why = purchasing_paused(cardholder_id=order.cardholder_id)
    email_queue(
        key=f"cancelled:{order.pk}",
        cardholder=order.cardholder,
        kind="cancelled",
        order=order,
        message=messages.email_cancelled(
            order=order,
            cardholder=order.cardholder,
            reason=reason,
            paused_because=why if paused else None,
        ),
    )


def order_email_confirm(*, order_id: int, now: datetime) -> str:
    """The click on an order's private confirmation link (orders above the buyer's threshold).

    Returns ``confirmed`` (the public confirmation came too: the order is confirmed and its
    authorization queued), ``awaiting_post`` (recorded; the post must follow within the window),
    ``late`` (the window had closed) or ``closed`` (the order is no longer pending, or its buyer
    can no longer buy with it: ``orders_still_buyable``). A second click changes nothing.
    """
    with transaction.atomic():
        order = order_lock(order_id)
        if order.status != OrderStatus.PENDING or not order.email_confirm_required:
            return "closed"
        if order.expires_at is not None and now > order.expires_at:
            return "late"
        # Conditional, like the post's record in ``decide``: the row lock orders the two.
        if Order.objects.filter(
            pk=order.pk,
            status=OrderStatus.PENDING,
            post_confirmed_at__isnull=True,
            email_confirmed_at__isnull=True,
        ).update(email_confirmed_at=now):
            return "awaiting_post"
        order.refresh_from_db()
        if order.status != OrderStatus.PENDING:
            return "closed"
        if order.post_confirmed_at is None:
            return "awaiting_post"  # a second click before the post
        if order.pk not in orders_still_buyable(orders=[order]):
            return "closed"  # locked down since the post: the click confirms nothing
        if order.email_confirmed_at is None:
            Order.objects.filter(pk=order.pk).update(email_confirmed_at=now)
        confirmed = order_confirm(order=order, now=now, data={"email": True})
        if confirmed is None:
            return "closed"
        audit, authorization = confirmed
        events_save(events=[audit], now=now)
        authorization.save()
    return "confirmed"
