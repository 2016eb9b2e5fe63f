"""Signed outbound webhooks (issue 14, DESIGN §10.2): merchants' endpoints, the events recorded
for them, and one delivery per (event, endpoint) with its attempts.

An event is recorded in the transaction of the change it tells about (``WebhookEvent``: its body
serialized once, so that every attempt sends the same bytes under the same ``webhook-id``), with
a delivery (``WebhookDelivery``: an outbox row, ``core.outbox``) for each endpoint subscribed to
it then. Services in ``orders.services.webhooks`` write all of these.
"""

from typing import ClassVar

from django.db import models
from django.db.models import Q

from core.models import TimeStampedModel

# The event types (Standard Webhooks' ``type``) and, for the subscription, the groups a merchant
# may choose: the order's steps one by one, every step of a return or a dispute as one group.
ORDER_EVENT_TYPES = (
    "order.created",
    "order.confirmed",
    "order.paid",
    "order.shipped",
    "order.delivered",
    "order.cancelled",
    "order.refunded",
)
RETURN_EVENT_TYPES = (
    "return.requested",
    "return.approved",
    "return.refused",
    "return.label_bought",
    "return.received",
    "return.refunded",
)
DISPUTE_EVENT_TYPES = ("dispute.opened", "dispute.escalated", "dispute.resolved")
CAMPAIGN_EVENT_TYPES = ("campaign.sold_out", "campaign.low_stock")
EVENT_TYPES = ORDER_EVENT_TYPES + RETURN_EVENT_TYPES + DISPUTE_EVENT_TYPES + CAMPAIGN_EVENT_TYPES
# What an endpoint subscribes to: a type, or a group ``return.*`` / ``dispute.*``.
SUBSCRIPTIONS = (*ORDER_EVENT_TYPES, "return.*", "dispute.*", *CAMPAIGN_EVENT_TYPES)
SUBSCRIPTION_CHOICES = [
    (name, {"return.*": "Every return step", "dispute.*": "Every dispute step"}.get(name, name))
    for name in SUBSCRIPTIONS
]

URL_MAX_LENGTH = 500
# A secret ("whsec_" and 32 random bytes in base64: 50 characters) encrypted: a Fernet token of
# 164 characters, with room to spare.
SECRET_ENCRYPTED_MAX_LENGTH = 255
EVENT_ID_MAX_LENGTH = 40  # "msg_" and a UUID's 32 hex digits
EVENT_KEY_MAX_LENGTH = 200
ERROR_MAX_LENGTH = 500


def subscribed(events: list[str], event_type: str) -> bool:
    """Whether a subscription ``events`` (``SUBSCRIPTIONS`` names) takes ``event_type``."""
    group = event_type.partition(".")[0] + ".*"
    return event_type in events or group in events


class WebhookEndpoint(TimeStampedModel):
    """A merchant's receiving URL, the events it wants, and the secret that signs them.

    The secret (``whsec_`` and base64, Standard Webhooks' format) signs every delivery; after a
    rotation the old one is kept until ``previous_secret_expires_at`` and deliveries carry both
    signatures meanwhile, so a receiver can switch at its own pace. Both are stored encrypted
    (``core.crypto``, ``*_encrypted``): ``orders.services.webhooks`` decrypts them to sign a
    delivery or to show the secret to its merchant, nowhere else.
    ``failing_since``: the first failed attempt since the last success; an endpoint that keeps
    failing for ``HASHCART["WEBHOOK_DISABLE_AFTER_HOURS"]`` is disabled (``disabled_at``).
    """

    # Re-encrypted by ``rotate_credentials`` (``core.crypto``).
    encrypted_fields: ClassVar[tuple[str, ...]] = ("secret_encrypted", "previous_secret_encrypted")

    merchant = models.ForeignKey(
        "catalog.Merchant", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField("URL", max_length=URL_MAX_LENGTH)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="The event types sent to this endpoint.")
    enabled = models.BooleanField(default=True)
    secret_encrypted = models.CharField(max_length=SECRET_ENCRYPTED_MAX_LENGTH, editable=False)
    previous_secret_encrypted = models.CharField(
        max_length=SECRET_ENCRYPTED_MAX_LENGTH, blank=True, editable=False
    )
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=200, blank=True, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["merchant", "enabled"], name="webhookendpoint_merchant_idx")
        ]

    def __str__(self) -> str:
        return self.url


class WebhookEvent(models.Model):
    """One thing that happened, as sent: ``event_id`` is the ``webhook-id`` of every attempt to
    every endpoint, derived from the merchant and ``event_key`` (so an event recorded twice is
    one row); ``body`` the JSON payload ``{"type", "timestamp", "data"}`` as signed and sent."""

    merchant = models.ForeignKey(
        "catalog.Merchant", on_delete=models.CASCADE, related_name="webhook_events"
    )
    event_id = models.CharField(max_length=EVENT_ID_MAX_LENGTH, unique=True)
    event_key = models.CharField(max_length=EVENT_KEY_MAX_LENGTH)
    type = models.CharField(max_length=40)
    body = models.TextField()
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class WebhookDeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    # Recorded, or queued, while its endpoint was disabled: sent when staff enable it again.
    HELD = "held", "Held (endpoint disabled)"


class WebhookDelivery(models.Model):
    """An event to one endpoint: an outbox row (``core.outbox``; lease by ``claimed_until`` and
    ``claim_token``), retried with backoff until ``give_up_at`` (three days after it was
    queued, or after staff sent it again)."""

    merchant = models.ForeignKey("catalog.Merchant", on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(
        max_length=16, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.QUEUED
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    give_up_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=ERROR_MAX_LENGTH, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "webhook deliveries"
        permissions = [("resend_webhookdelivery", "Can send webhook deliveries again")]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "endpoint"], name="webhookdelivery_once_per_endpoint"
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in WebhookDeliveryStatus]),
                name="webhookdelivery_status_known",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="queued"),
                name="webhookdelivery_due_idx",
            ),
            models.Index(fields=["merchant", "-id"], name="webhookdelivery_merchant_idx"),
            models.Index(fields=["endpoint", "status"], name="webhookdelivery_endpoint_idx"),
            # The sweep's fair claim: each endpoint's oldest due deliveries, one probe each.
            models.Index(
                fields=["endpoint", "next_attempt_at", "id"],
                condition=Q(status="queued"),
                name="webhookdelivery_ep_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Delivery {self.pk} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery: the answer's status code (None: no answer), the error,
    and how long it took."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=ERROR_MAX_LENGTH, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["delivery", "id"], name="webhookattempt_delivery_idx")]

    def __str__(self) -> str:
        return f"Attempt {self.pk} ({self.status_code or self.error})"
