"""One order's whole story for support staff (issue 14): a selector.

``order_timeline`` merges, oldest first, everything that happened to an order: the purchase
post (with its page on the platform) and the decision on it, the confirmation posts, every
reply to them (queued, sent, failed), every e-mail (its kind and status, never its address),
payment operations (attempts, last error), refunds, the audit trail (state changes, returns,
disputes and staff actions, with who did them), and what other apps add through
``HASHCART["ORDER_TIMELINE_SOURCES"]`` (fulfillment: the shipment and the carrier's tracking
events; orders does not import fulfillment, DESIGN §2).

The buyer's own, shorter story is ``orders.selectors.order_timeline`` (the cardholder's page).
Cost: a fixed number of queries whatever the timeline's length (each source is one query).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from core.redact import addresses_redacted
from orders.models import (
    Dispute,
    Notification,
    Order,
    OrderEvent,
    PaymentOperation,
    PaymentOperationKind,
    Refund,
)
from orders.outcomes import PostOutcome
from social.models import Platform, Post, Reply
from social.platforms import post_url

# Tones the page colours entries by: a failure needs staff's attention, a wait may.
OK, WAITING, FAILED = "ok", "waiting", "failed"


@dataclass(frozen=True)
class TimelineEntry:
    """One line of an order's timeline.

    ``source`` says what it is ("post", "decision", "reply", "email", "payment", "refund",
    "event", "shipment", "tracking"); ``status`` the state of what it records, when it has one
    (a reply's "queued", "sent", "failed"); ``actor`` who did it (a staff login's name, or
    "system", "pipeline", "cardholder"); ``url`` a page outside the back office (the post on
    its platform, the carrier's tracking page); ``case`` the back-office object it is about,
    as ``(model label, pk)`` (``"orders.dispute"``), for the page to link if the user may see
    it.
    """

    at: datetime
    source: str
    title: str
    detail: str = ""
    status: str = ""
    tone: str = OK
    actor: str = ""
    url: str = ""
    case: tuple[str, int] | None = None


TimelineSource = Callable[..., list[TimelineEntry]]

# Titles of the audit trail's kinds; any other kind is shown by its name.
EVENT_TITLES = {
    "created": "Order created",
    "confirmed": "Confirmed",
    "authentication_required": "Bank asked the buyer to authenticate",
    "request_private": "Confirmation request sent by e-mail",
    "paid": "Paid (card authorized)",
    "receipt_issued": "Receipt issued",
    "shipped": "Shipped (payment captured)",
    "delivered": "Delivered",
    "expired": "Expired",
    "cancelled": "Cancelled",
    "declined": "Declined by the card",
    "capture_failed": "Capture failed",
    "payment_abandoned": "Payment given up",
    "refund_requested": "Refund asked for",
    "refund_failed": "Refund failed",
    "partially_refunded": "Partly refunded",
    "refunded": "Refunded",
    "credit_note_issued": "Credit note issued",
    "return_requested": "Return requested",
    "return_approved": "Return approved",
    "return_refused": "Return refused",
    "return_label_bought": "Return label bought",
    "return_received": "Return received",
    "return_refunded": "Return refunded",
    "dispute_opened": "Case opened (\u201cNot me\u201d)",
    "dispute_resolved": "Case resolved",
    "dispute_escalated": "Case escalated to the operator",
}
_FAILED_EVENTS = frozenset(
    {"capture_failed", "payment_abandoned", "refund_failed", "declined", "dispute_opened"}
)
# What an event's data may say that staff should read; keys not listed are not shown (an
# event's data may hold ids and details meant for the log).
_EVENT_DATA = (
    ("reason", "reason"),
    ("note", "note"),
    ("amount", "amount"),
    ("code", "decline code"),
    ("error", "error"),
    ("carrier", "carrier"),
    ("tracking", "tracking"),
    ("restock", "restock"),
    ("operation", "operation"),
)
_OPERATION_TONE = {"done": OK, "failed": FAILED, "pending": WAITING, "processing": WAITING}
_REPLY_TONE = {"sent": OK, "failed": FAILED, "queued": WAITING, "sending": WAITING}
_REFUND_TONE = {"succeeded": OK, "failed": FAILED}


def order_timeline(order: Order) -> list[TimelineEntry]:
    """Everything that happened to ``order``, oldest first (ties in the order recorded).

    Staff-safe by construction: no cardholder e-mail address or card is read (e-mails are
    read without their address and body), and a cardholder who acted is named by their role,
    never by their login. ``order.purchase_post`` is read if not loaded (load it with
    ``select_related`` to save the query)."""
    purchase = order.purchase_post
    events = list(
        OrderEvent.objects.filter(order=order)
        .select_related("actor")
        .only(
            "created_at",
            "kind",
            "from_status",
            "to_status",
            "actor_label",
            "data",
            "actor__username",
            "actor__is_staff",
        )
        .order_by("created_at", "id")
    )
    posts = _posts(order, purchase, events)
    entries: list[TimelineEntry] = []
    for post in posts:
        entries.extend(_post_entries(post, is_purchase=post.pk == order.purchase_post_id))
    entries.extend(_reply_entries(posts))
    entries.extend(_email_entries(order))
    entries.extend(_payment_entries(order))
    entries.extend(_refund_entries(order))
    entries.extend(_event_entries(order, events))
    for path in settings.HASHCART["ORDER_TIMELINE_SOURCES"]:
        source: TimelineSource = import_string(path)
        entries.extend(source(order=order))
    # A stable sort: entries of one instant keep the order they were gathered in.
    entries.sort(key=lambda entry: entry.at)
    return entries


def _posts(order: Order, purchase: Post | None, events: list[OrderEvent]) -> list[Post]:
    """The purchase post and the posts its events name (the confirmations), in one query."""
    named = {str(e.data["post"]) for e in events if isinstance(e.data, dict) and e.data.get("post")}
    if purchase is not None:
        named.discard(purchase.post_id)
    others = (
        list(Post.objects.filter(platform=order.platform, post_id__in=sorted(named)))
        if named
        else []
    )
    return ([purchase] if purchase is not None else []) + sorted(others, key=lambda p: p.posted_at)


def _platform(platform: str) -> str:
    return str(dict(Platform.choices).get(platform, platform))


def _post_entries(post: Post, *, is_purchase: bool) -> list[TimelineEntry]:
    what = "Purchase post" if is_purchase else "Post"
    entries = [
        TimelineEntry(
            at=post.posted_at,
            source="post",
            title=f"{what} by @{post.author_handle} on {_platform(post.platform)}",
            detail=post.text,
            actor="buyer",
            url=post_url(
                platform=post.platform, post_id=post.post_id, author_handle=post.author_handle
            ),
        )
    ]
    if post.decided_at is not None:
        outcome = dict(PostOutcome.choices).get(post.outcome, post.outcome)
        entries.append(
            TimelineEntry(
                at=post.decided_at,
                source="decision",
                title=f"Decision on the {what.lower()}: {outcome}",
                status=post.outcome,
                actor="pipeline",
            )
        )
    return entries


def _reply_entries(posts: list[Post]) -> list[TimelineEntry]:
    if not posts:
        return []
    replies = (
        Reply.objects.filter(in_reply_to__in=[p.pk for p in posts])
        .select_related("account", "in_reply_to")
        .only(
            "kind",
            "text",
            "status",
            "attempts",
            "sent_at",
            "created_at",
            "platform_reply_id",
            "last_error",
            "account__handle",
            "account__platform",
            "in_reply_to__author_handle",
        )
        .order_by("id")
    )
    entries = []
    for reply in replies:
        detail = reply.text
        if reply.last_error and reply.status != "sent":
            detail += f"\nLast error (attempt {reply.attempts}): {reply.last_error}"
        url = ""
        if reply.status == "sent":
            url = post_url(
                platform=reply.account.platform,
                post_id=reply.platform_reply_id,
                author_handle=reply.account.handle,
            )
        entries.append(
            TimelineEntry(
                at=reply.sent_at or reply.created_at,
                source="reply",
                title=f"Reply to @{reply.in_reply_to.author_handle}: "
                f"{reply.kind.replace('_', ' ')}",
                detail=detail,
                status=reply.status,
                tone=_REPLY_TONE.get(reply.status, OK),
                actor=f"@{reply.account.handle}",
                url=url,
            )
        )
    return entries


def _email_entries(order: Order) -> list[TimelineEntry]:
    # Never the address (nor the body, which may greet the buyer by it): DESIGN §10.2.
    mails = (
        Notification.objects.filter(order=order)
        .only("kind", "subject", "status", "attempts", "sent_at", "created_at", "last_error")
        .order_by("id")
    )
    entries = []
    for mail in mails:
        detail = mail.subject
        if mail.last_error and mail.status != "done":
            # Redacted again here: rows stored before errors were redacted may quote the address.
            error = addresses_redacted(mail.last_error)
            detail += f"\nLast error (attempt {mail.attempts}): {error}"
        status = "sent" if mail.status == "done" else str(mail.status)
        entries.append(
            TimelineEntry(
                at=mail.sent_at or mail.created_at,
                source="email",
                title=f"E-mail to the buyer: {mail.kind.replace('_', ' ')}",
                detail=detail,
                status=status,
                tone=_OPERATION_TONE.get(mail.status, OK),
                actor="system",
            )
        )
    return entries


def _attempts(op: PaymentOperation) -> str:
    parts = [f"{op.attempts} attempt{'s' if op.attempts != 1 else ''}"]
    if op.result:
        parts.append(f"result {op.result}")
    if op.last_error:
        parts.append(f"last error: {op.last_error}")
    return "; ".join(parts)


def _payment_entries(order: Order) -> list[TimelineEntry]:
    """Authorize, capture and void; a refund's operation is shown with its refund."""
    ops = (
        PaymentOperation.objects.filter(order=order)
        .exclude(operation=PaymentOperationKind.REFUND)
        .order_by("id")
    )
    return [
        TimelineEntry(
            at=op.created_at,
            source="payment",
            title=f"Payment: {op.get_operation_display().lower()}",
            detail=_attempts(op),
            status=str(op.status),
            tone=_OPERATION_TONE.get(op.status, OK),
            actor="system",
        )
        for op in ops
    ]


def _refund_entries(order: Order) -> list[TimelineEntry]:
    refunds = (
        Refund.objects.filter(order=order)
        .select_related("operation", "requested_by")
        .only(
            "number",
            "amount",
            "reason",
            "restock",
            "status",
            "actor_label",
            "created_at",
            "requested_by__username",
            "requested_by__is_staff",
            "operation__attempts",
            "operation__result",
            "operation__last_error",
            "operation__status",
        )
        .order_by("number")
    )
    entries = []
    for refund in refunds:
        op = getattr(refund, "operation", None)
        detail = refund.reason + (" (unit restocked)" if refund.restock else "")
        if op is not None:
            detail += f"\n{_attempts(op)}"
        entries.append(
            TimelineEntry(
                at=refund.created_at,
                source="refund",
                title=f"Refund {refund.number}: {refund.amount} {order.currency}",
                detail=detail,
                status=str(refund.status),
                tone=_REFUND_TONE.get(refund.status, WAITING),
                actor=_actor(refund.requested_by, refund.actor_label),
            )
        )
    return entries


def _actor(user: Any, label: str) -> str:
    """A staff login by its name; anyone else by their role (a cardholder's login is their
    e-mail address, which staff never see)."""
    if user is not None and user.is_staff:
        return str(user.username)
    return label


def _event_case(order: Order, event: OrderEvent) -> tuple[str, int] | None:
    data = event.data if isinstance(event.data, dict) else {}
    if event.kind.startswith("dispute_"):
        dispute_id = _dispute_id(order)
        return ("orders.dispute", dispute_id) if dispute_id else None
    if event.kind.startswith("return_") and isinstance(data.get("return"), int):
        return ("orders.return", data["return"])
    return None


def _dispute_id(order: Order) -> int | None:
    try:
        dispute: Dispute = order.dispute
    except Dispute.DoesNotExist:
        return None
    return dispute.pk


def _event_entries(order: Order, events: list[OrderEvent]) -> list[TimelineEntry]:
    entries = []
    for e in events:
        data = e.data if isinstance(e.data, dict) else {}
        # A flag is shown when set ("restock"); an empty value not at all.
        details = [
            label if data[key] is True else f"{label}: {data[key]}"
            for key, label in _EVENT_DATA
            if data.get(key) not in (None, "", False)
        ]
        if e.from_status and e.to_status and e.from_status != e.to_status:
            details.insert(0, f"{e.from_status} \u2192 {e.to_status}")
        entries.append(
            TimelineEntry(
                at=e.created_at,
                source="event",
                title=EVENT_TITLES.get(e.kind, e.kind.replace("_", " ").capitalize()),
                detail="; ".join(details),
                status=e.kind,
                tone=FAILED if e.kind in _FAILED_EVENTS else OK,
                actor=_actor(e.actor, e.actor_label),
                case=_event_case(order, e),
            )
        )
    return entries
