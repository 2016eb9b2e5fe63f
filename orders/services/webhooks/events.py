"""Recording webhook events, in the transaction of the change they tell about.

Order, return and dispute events come from the order's audit trail: every service that writes
an ``OrderEvent`` of a kind in ``ORDER_EVENT_KINDS`` hands the saved rows to
``order_events_record`` in the same transaction (so an event is recorded exactly when its audit
row is: the change and its webhook commit or roll back together, and each change, which writes
one audit row, makes one event, keyed by that row's id). Campaign events (sold out, low stock)
come through ``webhook_event_record`` from whoever detects them.

The cost when nobody listens: one indexed query on the merchants' endpoints per call
(per decided batch on the flash-sale path, not per order), and no payload is built.

What a payload carries: the order's id and code, status, campaign (id, hashtag), product (name,
SKU, variant), quantity, amounts, currency, the buyer's public handle and platform, times, and
per event the shipment's carrier and tracking, the refund, the return's or the dispute's state.
Never the buyer's e-mail, card or postal address: Hashcart buys the labels, so a merchant's
system has no need of the address, and a copy in every listener is one more place to leak it.
"""

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils.module_loading import import_string

from core import outbox
from orders.models import (
    Order,
    OrderEvent,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEvent,
)
from orders.models.webhooks import subscribed

# The audit trail's kinds that are webhook events, and their types.
ORDER_EVENT_KINDS = {
    "created": "order.created",
    "confirmed": "order.confirmed",
    "paid": "order.paid",
    "shipped": "order.shipped",
    "delivered": "order.delivered",
    "cancelled": "order.cancelled",
    "refunded": "order.refunded",
    "partially_refunded": "order.refunded",
    "return_requested": "return.requested",
    "return_approved": "return.approved",
    "return_refused": "return.refused",
    "return_label_bought": "return.label_bought",
    "return_received": "return.received",
    "return_refunded": "return.refunded",
    "dispute_opened": "dispute.opened",
    "dispute_escalated": "dispute.escalated",
    "dispute_resolved": "dispute.resolved",
}
QUEUED, HELD = WebhookDeliveryStatus.QUEUED, WebhookDeliveryStatus.HELD
_EVENT_ID_NAMESPACE = uuid.UUID("6f1d7c2e-3b8a-4f0e-9c55-2a7d1e4b9f30")


@dataclass(frozen=True)
class EventDraft:
    """An event to record: ``data`` is built only if an endpoint listens."""

    merchant_id: int
    type: str
    key: str
    occurred_at: datetime
    data: Callable[[], dict[str, Any]]


def webhook_event_id(*, merchant_id: int, event_key: str) -> str:
    """The ``webhook-id`` of the merchant's event ``event_key``: the same for the same key."""
    return "msg_" + uuid.uuid5(_EVENT_ID_NAMESPACE, f"{merchant_id}:{event_key}").hex


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def webhook_body(*, event_type: str, occurred_at: datetime, data: dict[str, Any]) -> str:
    """The payload as sent: ``{"type", "timestamp", "data"}`` (Standard Webhooks), compact JSON;
    decimals as strings, times in ISO 8601 UTC."""
    payload = {"type": event_type, "timestamp": _utc(occurred_at), "data": data}
    return json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


def webhook_event_record(
    *, merchant_id: int, event_type: str, data: dict[str, Any], event_key: str, now: datetime
) -> None:
    """Queue event ``event_type`` (e.g. ``"campaign.sold_out"``) with payload ``data`` for each of
    the merchant's endpoints subscribed to it, in the caller's transaction. ``event_key`` makes
    it once: a second call with the same key queues nothing (its event id is derived from it)."""
    webhook_events_record(
        drafts=[
            EventDraft(
                merchant_id=merchant_id,
                type=event_type,
                key=event_key,
                occurred_at=now,
                data=lambda: data,
            )
        ],
        now=now,
    )


def webhook_events_record(*, drafts: Sequence[EventDraft], now: datetime) -> int:
    """Record ``drafts`` and queue a delivery of each to every enabled endpoint of its merchant
    subscribed to its type (held, for a disabled one: sent when it is enabled again), in the
    caller's transaction; returns the events recorded now.

    Once per key: an event whose id exists already is skipped with its deliveries (two callers
    at once: the unique event id and the unique (event, endpoint) keep one of each).
    """
    if not drafts:
        return 0
    # Disabled endpoints too: their deliveries are held (sent when staff enable them again).
    endpoints = list(
        WebhookEndpoint.objects.filter(merchant_id__in={d.merchant_id for d in drafts}).values_list(
            "pk", "merchant_id", "events", "enabled"
        )
    )
    if not endpoints:
        return 0
    enabled = {pk for pk, _, _, on in endpoints if on}
    wanted: dict[str, tuple[EventDraft, list[int]]] = {}
    for draft in drafts:
        targets = [
            pk
            for pk, merchant_id, events, _ in endpoints
            if merchant_id == draft.merchant_id and subscribed(events, draft.type)
        ]
        if targets:
            event_id = webhook_event_id(merchant_id=draft.merchant_id, event_key=draft.key)
            wanted[event_id] = (draft, targets)
    if not wanted:
        return 0
    for event_id in WebhookEvent.objects.filter(event_id__in=list(wanted)).values_list(
        "event_id", flat=True
    ):
        del wanted[event_id]
    if not wanted:
        return 0
    WebhookEvent.objects.bulk_create(
        [
            WebhookEvent(
                merchant_id=draft.merchant_id,
                event_id=event_id,
                event_key=draft.key[:200],
                type=draft.type,
                body=webhook_body(
                    event_type=draft.type, occurred_at=draft.occurred_at, data=draft.data()
                ),
                created_at=now,
            )
            for event_id, (draft, _) in wanted.items()
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )
    pks = dict(WebhookEvent.objects.filter(event_id__in=list(wanted)).values_list("event_id", "pk"))
    give_up_at = outbox.policy("webhooks").give_up_at(now)
    assert give_up_at is not None  # noqa: S101 (the webhooks policy always has an age)
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                merchant_id=draft.merchant_id,
                event_id=pks[event_id],
                endpoint_id=endpoint_id,
                status=QUEUED if endpoint_id in enabled else HELD,
                next_attempt_at=now,
                give_up_at=give_up_at,
                created_at=now,
            )
            for event_id, (draft, targets) in wanted.items()
            for endpoint_id in targets
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )
    # Sent within a second of the commit rather than at the next sweep; a lost call only waits
    # for the sweep (robust: a broker down never fails the change that was just committed).
    handler = import_string(settings.HASHCART["WEBHOOKS_QUEUED_HANDLER"])
    transaction.on_commit(handler, robust=True)
    return len(wanted)


def order_events_record(*, events: Sequence[OrderEvent], now: datetime) -> int:
    """The webhook events of these saved audit rows (those of a kind in ``ORDER_EVENT_KINDS``),
    in the caller's transaction: one event per row, keyed by its id. Returns how many."""
    drafts = [
        EventDraft(
            merchant_id=row.order.merchant_id,
            type=ORDER_EVENT_KINDS[row.kind],
            key=f"order-event:{row.pk}",
            occurred_at=row.created_at,
            data=lambda row=row: order_event_data(row),  # type: ignore[misc]
        )
        for row in events
        if row.kind in ORDER_EVENT_KINDS
    ]
    return webhook_events_record(drafts=drafts, now=now)


# --- Payloads -------------------------------------------------------------------------------
def order_data(order: Order, *, status: str) -> dict[str, Any]:
    """The order as webhooks show it: no e-mail, card or address (see the module)."""
    return {
        "id": order.pk,
        "code": order.confirmation_code,
        "status": status,
        "campaign": {"id": order.campaign_id, "hashtag": order.hashtag},
        "product": {
            "name": order.product_name,
            "sku": order.product_sku,
            "variant": order.variant_label,
        },
        "quantity": order.quantity,
        "currency": order.currency,
        "unit_price": order.unit_price,
        "subtotal": order.subtotal,
        "tax_total": order.tax_total,
        "total": order.total,
        "refunded_total": order.refunded_total,
        "platform": order.platform,
        "buyer_handle": order.author_handle,
        "created_at": order.created_at,
        "confirmed_at": order.confirmed_at,
    }


def _tracking(*, carrier: str, number: str) -> dict[str, str]:
    url = import_string(settings.HASHCART["TRACKING_URL_SOURCE"])(
        carrier=carrier, tracking_number=number
    )
    return {"carrier": carrier, "tracking_number": number, "tracking_url": url}


def order_event_data(row: OrderEvent) -> dict[str, Any]:
    """The ``data`` of an audit row's event: the order (in the status the row moved it to), and
    what the step adds. Only named fields are copied from the row's ``data`` (it may hold a
    gateway's reference or an error text, which are not the merchant system's business)."""
    order = row.order
    extra = row.data or {}
    data: dict[str, Any] = {"order": order_data(order, status=row.to_status or order.status)}
    if row.kind == "paid":
        data["ship_by"] = extra.get("ship_by")
        data["promised_delivery"] = extra.get("promised_delivery")
    elif row.kind == "shipped":
        data["shipment"] = _tracking(
            carrier=str(extra.get("carrier", "")), number=str(extra.get("tracking", ""))
        )
    elif row.kind == "delivered":
        shipped = (
            OrderEvent.objects.filter(order_id=order.pk, kind="shipped")
            .order_by("-id")
            .values_list("data", flat=True)
            .first()
        )
        if shipped:
            data["shipment"] = _tracking(
                carrier=str(shipped.get("carrier", "")), number=str(shipped.get("tracking", ""))
            )
        data["delivered_at"] = row.created_at
    elif row.kind == "cancelled":
        data["reason"] = extra.get("reason", "")
    elif row.kind in ("refunded", "partially_refunded"):
        data["refund"] = {
            "number": extra.get("refund"),
            "amount": extra.get("amount"),
            "full": row.kind == "refunded",
        }
    elif row.kind.startswith("return_"):
        data["return"] = {"id": extra.get("return"), "status": extra.get("to")}
    elif row.kind.startswith("dispute_"):
        data["dispute"] = {
            "id": extra.get("dispute"),
            "status": extra.get("to"),
            "deadline": extra.get("deadline"),
        }
    return data
