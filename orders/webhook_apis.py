"""Webhook endpoints over the API (issue 14): list, create, read, change, delete, rotate the
secret; the token's merchant's only, through ``orders.services.webhooks`` like the back
office. The payloads sent to endpoints are documented here too, as OpenAPI 3.1 webhooks
(``SPECTACULAR_SETTINGS["WEBHOOKS"]``)."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, OpenApiWebhook, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import MerchantScopedMixin, merchant_scope
from orders.models import SUBSCRIPTIONS, WebhookEndpoint
from orders.models.webhooks import (
    CAMPAIGN_EVENT_TYPES,
    DISPUTE_EVENT_TYPES,
    ORDER_EVENT_TYPES,
    RETURN_EVENT_TYPES,
)
from orders.services.webhooks import (
    webhook_endpoint_create,
    webhook_endpoint_secret,
    webhook_endpoint_secret_rotate,
    webhook_endpoint_update,
)


def _checked(call: Any) -> Any:
    try:
        return call()
    except DjangoValidationError as exc:
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        raise serializers.ValidationError(detail) from exc


class WebhookEndpointSerializer(serializers.ModelSerializer):
    """An endpoint: where events go, which ones, and the secret that signs them (Standard
    Webhooks: verify with ``standardwebhooks``' ``Webhook(secret).verify(body, headers)``)."""

    events = serializers.ListField(
        child=serializers.ChoiceField(choices=SUBSCRIPTIONS),
        min_length=1,
        help_text="Event types sent here; `return.*` and `dispute.*` take every step of them.",
    )
    secret = serializers.SerializerMethodField(
        help_text="Signs every delivery (`whsec_` and base64); null when it cannot be read "
        "with the configured keys (ask the operator)."
    )

    class Meta:
        model = WebhookEndpoint
        fields = (
            "id",
            "url",
            "description",
            "events",
            "enabled",
            "secret",
            "previous_secret_expires_at",
            "failing_since",
            "disabled_at",
            "disabled_reason",
            "created_at",
        )
        read_only_fields = (
            "id",
            "secret",
            "previous_secret_expires_at",
            "failing_since",
            "disabled_at",
            "disabled_reason",
            "created_at",
        )

    def get_secret(self, endpoint: WebhookEndpoint) -> str | None:
        try:
            return webhook_endpoint_secret(endpoint=endpoint)
        except ValueError:
            return None

    def create(self, validated_data: dict[str, Any]) -> WebhookEndpoint:
        request = self.context["request"]
        merchant_id = merchant_scope(request)
        if merchant_id is None:  # an operator's token: no merchant to create it for
            raise serializers.ValidationError("Only a merchant's staff can add an endpoint.")
        validated_data.pop("enabled", None)
        return _checked(lambda: webhook_endpoint_create(merchant_id=merchant_id, **validated_data))

    def update(self, instance: WebhookEndpoint, validated_data: dict[str, Any]) -> WebhookEndpoint:
        return _checked(
            lambda: webhook_endpoint_update(endpoint=instance, now=timezone.now(), **validated_data)
        )


class WebhookEndpointViewSet(
    MerchantScopedMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The merchant's webhook endpoints."""

    queryset = WebhookEndpoint.objects.order_by("id")
    serializer_class = WebhookEndpointSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    parser_classes = [JSONParser]
    action_permissions = {
        "list": "orders.view_webhookendpoint",
        "retrieve": "orders.view_webhookendpoint",
        "create": "orders.add_webhookendpoint",
        "partial_update": "orders.change_webhookendpoint",
        "destroy": "orders.delete_webhookendpoint",
        "rotate_secret": "orders.change_webhookendpoint",
    }

    @extend_schema(request=None, responses=WebhookEndpointSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        """A new secret: the old one keeps signing too (two signatures per delivery) for
        24 hours, so the receiver can switch without losing a delivery."""
        endpoint = webhook_endpoint_secret_rotate(
            endpoint_id=self.get_object().pk, now=timezone.now()
        )
        return Response(self.get_serializer(endpoint).data)


# --- The payloads, as OpenAPI 3.1 webhooks ---------------------------------------------------
class _ProductPayload(serializers.Serializer):
    name = serializers.CharField()
    sku = serializers.CharField()
    variant = serializers.CharField(help_text="e.g. `M / Blue`; empty without options.")


class _CampaignRefPayload(serializers.Serializer):
    id = serializers.IntegerField()
    hashtag = serializers.CharField()


class WebhookOrderPayload(serializers.Serializer):
    """The order as webhooks carry it: never the buyer's e-mail, card or postal address."""

    id = serializers.IntegerField()
    code = serializers.CharField(help_text="The order's code, shown as `#GAQ37`.")
    status = serializers.CharField(help_text="The order's status after this event.")
    campaign = _CampaignRefPayload()
    product = _ProductPayload()
    quantity = serializers.IntegerField()
    currency = serializers.CharField()
    unit_price = serializers.DecimalField(max_digits=10, decimal_places=2)
    subtotal = serializers.DecimalField(max_digits=12, decimal_places=2)
    tax_total = serializers.DecimalField(max_digits=12, decimal_places=2)
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    refunded_total = serializers.DecimalField(max_digits=12, decimal_places=2)
    platform = serializers.CharField()
    buyer_handle = serializers.CharField(help_text="The buyer's public handle on the platform.")
    created_at = serializers.DateTimeField()
    confirmed_at = serializers.DateTimeField(allow_null=True)


class _ShipmentPayload(serializers.Serializer):
    carrier = serializers.CharField()
    tracking_number = serializers.CharField()
    tracking_url = serializers.CharField()


class _RefundPayload(serializers.Serializer):
    number = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    full = serializers.BooleanField(help_text="Whether the whole total is now refunded.")


class _CaseRefPayload(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()


class _DisputeRefPayload(_CaseRefPayload):
    deadline = serializers.DateTimeField()


class WebhookOrderData(serializers.Serializer):
    """``order`` always; ``ship_by`` and ``promised_delivery`` on `order.paid`; ``shipment`` on
    `order.shipped` and `order.delivered`; ``delivered_at`` on `order.delivered`; ``reason`` on
    `order.cancelled`; ``refund`` on `order.refunded`."""

    order = WebhookOrderPayload()
    ship_by = serializers.DateField(required=False)
    promised_delivery = serializers.DateField(required=False)
    shipment = _ShipmentPayload(required=False)
    delivered_at = serializers.DateTimeField(required=False)
    reason = serializers.CharField(required=False)
    refund = _RefundPayload(required=False)


# ``return`` is a Python keyword: the serializer is built with ``type``.
WebhookReturnData = type(
    "WebhookReturnData",
    (serializers.Serializer,),
    {"order": WebhookOrderPayload(), "return": _CaseRefPayload()},
)


class WebhookDisputeData(serializers.Serializer):
    order = WebhookOrderPayload()
    dispute = _DisputeRefPayload()


class _CampaignStockPayload(serializers.Serializer):
    id = serializers.IntegerField()
    hashtag = serializers.CharField()
    stock_total = serializers.IntegerField()
    stock_available = serializers.IntegerField()
    low_stock_threshold = serializers.IntegerField(
        allow_null=True, help_text="The merchant's threshold for this campaign, if set."
    )


class WebhookCampaignData(serializers.Serializer):
    """What the campaign alert says: the campaign, its stock and its threshold."""

    campaign = _CampaignStockPayload()


def _envelope(name: str, types: tuple[str, ...], data: type[serializers.Serializer]) -> Any:
    envelope = type(
        f"Webhook{name}Event",
        (serializers.Serializer,),
        {
            "__doc__": "Standard Webhooks' payload. Headers: `webhook-id` (the event's id, the "
            "same on every retry: dedupe on it), `webhook-timestamp` (seconds since the epoch), "
            "`webhook-signature` (`v1,<base64 HMAC-SHA256>`, space-separated, two of them "
            "while a rotated secret's overlap lasts).",
            "type": serializers.ChoiceField(choices=types),
            "timestamp": serializers.DateTimeField(help_text="When it happened (UTC)."),
            "data": data(),
        },
    )
    return OpenApiWebhook(
        name=f"{name.lower()}_event",
        decorator=extend_schema(
            summary=f"{name} events: {', '.join(types)}",
            description="POSTed to each endpoint subscribed to the type. Answer any 2xx "
            "within 10 seconds; anything else is retried with exponential backoff for three "
            "days.",
            request=envelope,
            responses={200: OpenApiResponse(description="Received (any 2xx).")},
        ),
    )


ORDER_WEBHOOK = _envelope("Order", ORDER_EVENT_TYPES, WebhookOrderData)
RETURN_WEBHOOK = _envelope("Return", RETURN_EVENT_TYPES, WebhookReturnData)
DISPUTE_WEBHOOK = _envelope("Dispute", DISPUTE_EVENT_TYPES, WebhookDisputeData)
CAMPAIGN_WEBHOOK = _envelope("Campaign", CAMPAIGN_EVENT_TYPES, WebhookCampaignData)
