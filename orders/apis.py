"""Orders over the API (DESIGN §10.3): list with filters, read, cancel; the token's merchant's
only. Cancelling goes through ``order_cancel`` (stock released, a paid order voided)."""

from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import IdFilter, MerchantScopedMixin
from core.exceptions import ApplicationError
from orders.models import CancelReason, Order, OrderStatus
from orders.selectors import order_buyer_reference
from orders.services import order_cancel


class TaxLineSerializer(serializers.Serializer[dict[str, str]]):
    """One jurisdiction's sales tax on an order: its rate is a fraction ("0.04500" is 4.5%);
    amounts are decimal strings in the order's currency."""

    jurisdiction = serializers.CharField()
    rate = serializers.DecimalField(max_digits=7, decimal_places=5, coerce_to_string=True)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)


class OrderSerializer(serializers.ModelSerializer):
    """What a merchant needs to fulfil and support an order: no card, no e-mail; the buyer is
    their handle and an opaque reference, as in the back office."""

    buyer_reference = serializers.SerializerMethodField()
    tax_lines = TaxLineSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = (
            "id",
            "confirmation_code",
            "status",
            "campaign",
            "product_name",
            "product_sku",
            "quantity",
            "unit_price",
            "price_includes_tax",
            "subtotal",
            "tax_lines",
            "tax_total",
            "total",
            "currency",
            "platform",
            "author_handle",
            "buyer_reference",
            "ship_to",
            "created_at",
            "confirmed_at",
        )
        read_only_fields = fields

    def get_buyer_reference(self, obj: Order) -> str:
        return order_buyer_reference(merchant_id=obj.merchant_id, cardholder_id=obj.cardholder_id)


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time with any offset the standard allows, compared in UTC: the database
    accepts offsets up to 15:59 only, and a time too far out to convert is a 400, not a 500."""

    def clean(self, value: Any) -> datetime | None:
        moment = super().clean(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("This time is out of range.", code="invalid") from None


class UtcIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class OrderFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=OrderStatus.choices)
    campaign = IdFilter(field_name="campaign_id")
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    code = filters.CharFilter(field_name="confirmation_code")

    class Meta:
        model = Order
        fields = ("status", "campaign", "created_after", "created_before", "code")


class OrderViewSet(
    MerchantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = Order.objects.all()
    action_permissions = {
        "list": "orders.view_order",
        "retrieve": "orders.view_order",
        "cancel": "orders.cancel_order",
    }
    serializer_class = OrderSerializer
    filterset_class = OrderFilter

    @extend_schema(request=None, responses=OrderSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel a pending, confirmed or paid order: its unit goes back to stock and a paid
        order's authorization is voided. 409 when it can no longer be cancelled."""
        order = self.get_object()
        if not order_cancel(
            order_id=order.pk,
            now=timezone.now(),
            actor_label="api",
            actor_id=request.user.pk,
            reason=CancelReason.OPERATOR if request.user.is_superuser else CancelReason.MERCHANT,
        ):
            raise ApplicationError(f"Order #{order.confirmation_code} can no longer be cancelled.")
        order.refresh_from_db()
        return Response(self.get_serializer(order).data)
