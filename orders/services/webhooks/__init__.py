"""Signed outbound webhooks (issue 14, DESIGN §10.2): Standard Webhooks, from an outbox.

``endpoints``: merchants' endpoints and their secrets. ``events``: events recorded in the
transaction of their change (``webhook_event_record``, ``order_events_record``). ``sending``:
the outbox sweep that signs and sends them, retries, disables and sends again.
"""

from orders.services.webhooks.endpoints import (
    webhook_endpoint_create,
    webhook_endpoint_secret,
    webhook_endpoint_secret_rotate,
    webhook_endpoint_update,
    webhook_secret_new,
    webhook_url_validate,
)
from orders.services.webhooks.events import (
    ORDER_EVENT_KINDS,
    order_events_record,
    webhook_event_id,
    webhook_event_record,
    webhook_events_record,
)
from orders.services.webhooks.sending import (
    SendSummary,
    webhook_deliveries_send_due,
    webhook_delivery_resend,
    webhook_endpoint_disable,
    webhook_headers,
    webhooks_send_all,
)

__all__ = [
    "ORDER_EVENT_KINDS",
    "SendSummary",
    "order_events_record",
    "webhook_deliveries_send_due",
    "webhook_delivery_resend",
    "webhook_endpoint_create",
    "webhook_endpoint_disable",
    "webhook_endpoint_secret",
    "webhook_endpoint_secret_rotate",
    "webhook_endpoint_update",
    "webhook_event_id",
    "webhook_event_record",
    "webhook_events_record",
    "webhook_headers",
    "webhook_secret_new",
    "webhook_url_validate",
    "webhooks_send_all",
]
