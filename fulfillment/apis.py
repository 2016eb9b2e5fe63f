"""Shipments over the API (DESIGN §10.3): list, and add the tracking number of a label bought
elsewhere (which ships the order and captures its payment once)."""

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import MerchantScopedMixin
from core.exceptions import ApplicationError
from fulfillment.models import (
    CARRIER_MAX_LENGTH,
    TRACKING_NUMBER_MAX_LENGTH,
    Shipment,
    ShipmentStatus,
)
from fulfillment.services import order_mark_shipped


class ShipmentSerializer(serializers.ModelSerializer):
    order_code = serializers.CharField(source="order.confirmation_code", read_only=True)

    class Meta:
        model = Shipment
        fields = (
            "id",
            "order",
            "order_code",
            "status",
            "service",
            "ship_by",
            "promised_delivery",
            "carrier",
            "tracking_number",
            "shipped_at",
            "delivered_at",
        )
        read_only_fields = fields


class TrackingSerializer(serializers.Serializer):
    carrier = serializers.CharField(max_length=CARRIER_MAX_LENGTH)
    tracking_number = serializers.CharField(max_length=TRACKING_NUMBER_MAX_LENGTH)


class ShipmentFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=ShipmentStatus.choices)
    ship_by_before = filters.DateFilter(field_name="ship_by", lookup_expr="lte")

    class Meta:
        model = Shipment
        fields = ("status", "ship_by_before")


class ShipmentViewSet(
    MerchantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = Shipment.objects.select_related("order")
    action_permissions = {
        "list": "fulfillment.view_shipment",
        "retrieve": "fulfillment.view_shipment",
        "tracking": "fulfillment.ship_shipment",
    }
    serializer_class = ShipmentSerializer
    filterset_class = ShipmentFilter

    @extend_schema(request=TrackingSerializer, responses=ShipmentSerializer)
    @action(detail=True, methods=["post"])
    def tracking(self, request: Request, pk: str | None = None) -> Response:
        """Record the label and tracking number: the order ships and its payment is captured.
        409 if the shipment is not awaiting a label."""
        shipment = self.get_object()
        form = TrackingSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        result = order_mark_shipped(
            order=shipment.order,
            carrier=form.validated_data["carrier"],
            tracking_number=form.validated_data["tracking_number"],
            actor=f"api:{request.user.pk}",
        )
        if result != "bought":
            raise ApplicationError("This shipment is not awaiting a label.")
        shipment.refresh_from_db()
        return Response(self.get_serializer(shipment).data)
