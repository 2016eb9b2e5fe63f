"""Reads of the orders app."""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Min

from orders.models import (
    Notification,
    Order,
    OrderEvent,
    OrderStatus,
    OutboxStatus,
    PaymentOperation,
)
from social.models import FeedCursor, Post, Reply, ReplyStatus


@dataclass(frozen=True)
class FeedState:
    account: str
    feed: str
    lag_seconds: float | None
    polled_at: datetime | None
    stopped: bool
    last_error: str


@dataclass(frozen=True)
class PipelineStatus:
    feeds: list[FeedState]
    undecided_posts: int
    oldest_undecided_seconds: float | None
    replies_queued: dict[str, int]
    oldest_unsent_reply_seconds: float | None
    orders_awaiting_reply: int
    orders_awaiting_confirmation: int
    payments_pending: int
    emails_pending: int
    # Payment operations given up or refused, waiting for ops (``retry_payments``).
    payments_failed: list["FailedPayment"] = field(default_factory=list)


@dataclass(frozen=True)
class FailedPayment:
    id: int
    order_id: int
    operation: str
    attempts: int
    error: str
    failed_at: datetime


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def pipeline_status(*, now: datetime) -> PipelineStatus:
    """Feed lag (now minus each feed's high-water mark) and the backlog of every stage."""
    feeds = [
        FeedState(
            account=f"@{c.account.handle} ({c.account.platform})",
            feed=c.feed,
            lag_seconds=_age(now, c.high_water_mark),
            polled_at=c.polled_at,
            stopped=c.stopped,
            last_error=c.last_error,
        )
        for c in FeedCursor.objects.select_related("account").order_by("account_id", "feed")
    ]
    undecided = Post.objects.filter(outcome="").aggregate(n=Count("id"), oldest=Min("received_at"))
    queued = Reply.objects.filter(status__in=[ReplyStatus.QUEUED, ReplyStatus.SENDING])
    by_kind = dict(queued.values_list("kind").annotate(n=Count("id")).order_by("kind"))
    pending = Order.objects.filter(status=OrderStatus.PENDING)
    return PipelineStatus(
        feeds=feeds,
        undecided_posts=undecided["n"],
        oldest_undecided_seconds=_age(now, undecided["oldest"]),
        replies_queued=by_kind,
        oldest_unsent_reply_seconds=_age(now, queued.aggregate(o=Min("created_at"))["o"]),
        orders_awaiting_reply=pending.filter(expires_at__isnull=True).count(),
        orders_awaiting_confirmation=pending.filter(expires_at__isnull=False).count(),
        payments_pending=PaymentOperation.objects.filter(
            status__in=[OutboxStatus.PENDING, OutboxStatus.PROCESSING]
        ).count(),
        emails_pending=Notification.objects.filter(status=OutboxStatus.PENDING).count(),
        payments_failed=payment_operations_failed(),
    )


def payment_operations_failed(*, limit: int = 100) -> list[FailedPayment]:
    """Failed payment operations (given up or refused), oldest first: money not captured, a
    hold not released, or a buyer declined for want of an answer. Each stays until retried."""
    return [
        FailedPayment(
            id=op.pk,
            order_id=op.order_id,
            operation=op.operation,
            attempts=op.attempts,
            error=op.last_error,
            failed_at=op.updated_at,
        )
        for op in PaymentOperation.objects.filter(status=OutboxStatus.FAILED).order_by("id")[:limit]
    ]


def cardholder_orders(*, cardholder_id: int, limit: int = 50) -> list[Order]:
    """The cardholder's latest orders with their shipments, newest first (settings page)."""
    return list(
        Order.objects.filter(cardholder_id=cardholder_id)
        .select_related("shipment")
        .order_by("-id")[:limit]
    )


def cardholder_order_events(*, cardholder_id: int, limit: int = 50) -> list[OrderEvent]:
    """The latest events of the cardholder's orders, newest first (their audit log)."""
    return list(
        OrderEvent.objects.filter(order__cardholder_id=cardholder_id)
        .select_related("order")
        .order_by("-created_at", "-id")[:limit]
    )
