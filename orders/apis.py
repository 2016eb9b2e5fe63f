"""Orders over the API (DESIGN §10.3): list with filters, read, cancel, refund; disputes
("Not me" after shipping): list, read, resolve by a refund, a refund on return or a rejection;
the token's merchant's only (an escalated case is the operators' only). Cancelling goes through
``order_cancel`` (stock released, a paid order voided), refunding through ``order_refund`` (run
by the payment outbox, at once after the commit); resolving a case through
``orders.services.disputes``."""

from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import IdFilter, MerchantScopedMixin, merchant_scope
from core.exceptions import ApplicationError
from orders import messages
from orders.models import (
    CancelReason,
    Dispute,
    DisputeStatus,
    Order,
    OrderStatus,
    Refund,
    Return,
    ReturnStatus,
)
from orders.selectors import disputes_visible, order_buyer_reference
from orders.services import disputes as dispute_services
from orders.services import order_cancel, order_refund
from orders.services import returns as return_services
from orders.services.payments import refund_run_on_commit
from orders.services.refunds import CENT, REASON_MAX_LENGTH


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
            "variant_label",
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
            "refunded_total",
        )
        read_only_fields = fields

    def get_buyer_reference(self, obj: Order) -> str:
        return order_buyer_reference(merchant_id=obj.merchant_id, cardholder_id=obj.cardholder_id)


class RefundRequestSerializer(serializers.Serializer):
    """A refund asked for: an amount in the order's currency (cents at most), why, and whether
    the goods came back (their unit goes back to stock)."""

    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=CENT)
    reason = serializers.CharField(max_length=REASON_MAX_LENGTH)
    restock = serializers.BooleanField(default=False)


class RefundSerializer(serializers.ModelSerializer):
    """A refund and where it is: ``requested``, ``processing``, ``succeeded`` or ``failed``."""

    class Meta:
        model = Refund
        fields = ("number", "amount", "reason", "restock", "status", "created_at", "succeeded_at")
        read_only_fields = fields


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
        "refunds": "orders.refund_order",
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
            raise ApplicationError(messages.cancel_refused(order=order))
        order.refresh_from_db()
        return Response(self.get_serializer(order).data)

    @extend_schema(
        request=RefundRequestSerializer,
        responses={201: OpenApiResponse(RefundSerializer, description="The refund asked for.")},
    )
    @action(detail=True, methods=["post"])
    def refunds(self, request: Request, pk: str | None = None) -> Response:
        """Refund a shipped, delivered or partially refunded order, in full or in part: the
        refund is queued in the payment outbox (and tried at once), its status in the answer.
        409 when the order is not refundable or the amount is more than is left to refund."""
        order = self.get_object()
        form = RefundRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        refund = order_refund(
            order_id=order.pk,
            amount=form.validated_data["amount"],
            reason=form.validated_data["reason"],
            restock=form.validated_data["restock"],
            now=timezone.now(),
            actor_label="api",
            actor_id=request.user.pk,
        )
        refund_run_on_commit(refund_id=refund.pk, now=timezone.now())
        refund.refresh_from_db()
        return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)


class DisputeSerializer(serializers.ModelSerializer):
    """A case opened by "Not me" after shipping, and where it is."""

    order_code = serializers.CharField(source="order.confirmation_code", read_only=True)

    class Meta:
        model = Dispute
        fields = (
            "id",
            "order",
            "order_code",
            "status",
            "opened_at",
            "deadline",
            "note",
            "resolved_at",
            "escalated_at",
        )
        read_only_fields = fields


class DisputeNoteSerializer(serializers.Serializer):
    """What the buyer is told with the answer (optional)."""

    note = serializers.CharField(
        max_length=dispute_services.NOTE_MAX_LENGTH, required=False, default="", allow_blank=True
    )


class DisputeReturnSerializer(DisputeNoteSerializer):
    """A refund on return: the note, and whether the unit goes back to stock when the goods
    arrive."""

    restock = serializers.BooleanField(default=False)


class DisputeRejectSerializer(serializers.Serializer):
    """Why the case is rejected: the buyer reads it, and may escalate it to the operator."""

    reason = serializers.CharField(max_length=dispute_services.NOTE_MAX_LENGTH)


class DisputeFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=DisputeStatus.choices)

    class Meta:
        model = Dispute
        fields = ("status",)


class DisputeViewSet(
    MerchantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = Dispute.objects.select_related("order")
    action_permissions = {
        "list": "orders.view_dispute",
        "retrieve": "orders.view_dispute",
        "refund": "orders.refund_dispute",
        "refund_on_return": "orders.refund_dispute_on_return",
        "reject": "orders.reject_dispute",
    }
    serializer_class = DisputeSerializer
    filterset_class = DisputeFilter

    def get_queryset(self) -> Any:
        # The merchant's cases (``MerchantScopedMixin``), escalated ones the operators' only.
        scoped = super().get_queryset()
        return scoped & disputes_visible(merchant_id=merchant_scope(self.request))

    def _resolved(self, resolved: dispute_services.DisputeResolved) -> Response:
        if resolved.refund is not None:
            refund_run_on_commit(refund_id=resolved.refund.pk, now=timezone.now())
        resolved.dispute.refresh_from_db()
        return Response(self.get_serializer(resolved.dispute).data)

    @extend_schema(request=DisputeNoteSerializer, responses=DisputeSerializer)
    @action(detail=True, methods=["post"])
    def refund(self, request: Request, pk: str | None = None) -> Response:
        """Resolve an open case by refunding all that is left to refund on its order, without
        asking for the goods back (queued in the payment outbox and tried at once). 409 when
        the case is not open or nothing is left to refund."""
        dispute = self.get_object()
        form = DisputeNoteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return self._resolved(
            dispute_services.dispute_refund(
                dispute_id=dispute.pk,
                note=form.validated_data["note"],
                now=timezone.now(),
                actor_label="api",
                actor_id=request.user.pk,
            )
        )

    @extend_schema(request=DisputeReturnSerializer, responses=DisputeSerializer)
    @action(detail=True, methods=["post"], url_path="refund-on-return")
    def refund_on_return(self, request: Request, pk: str | None = None) -> Response:
        """Resolve an open case by a refund once the goods come back (a return is opened,
        approved). 409 when the case is not open or a return is already under way."""
        dispute = self.get_object()
        form = DisputeReturnSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return self._resolved(
            dispute_services.dispute_refund_on_return(
                dispute_id=dispute.pk,
                note=form.validated_data["note"],
                restock=form.validated_data["restock"],
                now=timezone.now(),
                actor_label="api",
                actor_id=request.user.pk,
            )
        )

    @extend_schema(request=DisputeRejectSerializer, responses=DisputeSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """Reject an open case with a reason the buyer reads (and may escalate to the
        operator). 409 when the case is not open."""
        dispute = self.get_object()
        form = DisputeRejectSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return self._resolved(
            dispute_services.dispute_reject(
                dispute_id=dispute.pk,
                reason=form.validated_data["reason"],
                now=timezone.now(),
                actor_label="api",
                actor_id=request.user.pk,
            )
        )


class ReturnSerializer(serializers.ModelSerializer):
    """Goods coming back, and where they are."""

    order_code = serializers.CharField(source="order.confirmation_code", read_only=True)

    class Meta:
        model = Return
        fields = (
            "id",
            "order",
            "order_code",
            "dispute",
            "status",
            "reason",
            "requested_at",
            "note",
            "decided_at",
            "restock",
            "carrier",
            "tracking_number",
            "received_at",
        )
        read_only_fields = fields


class ReturnApproveSerializer(serializers.Serializer):
    """A note the buyer reads (optional), and whether the unit goes back to stock when the
    goods arrive."""

    note = serializers.CharField(
        max_length=return_services.TEXT_MAX_LENGTH, required=False, default="", allow_blank=True
    )
    restock = serializers.BooleanField(default=False)


class ReturnRefuseSerializer(serializers.Serializer):
    """Why the return is refused: the buyer reads it."""

    note = serializers.CharField(max_length=return_services.TEXT_MAX_LENGTH)


class ReturnFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=ReturnStatus.choices)

    class Meta:
        model = Return
        fields = ("status",)


class ReturnViewSet(
    MerchantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = Return.objects.select_related("order")
    action_permissions = {
        "list": "orders.view_return",
        "retrieve": "orders.view_return",
        "approve": "orders.approve_return",
        "refuse": "orders.approve_return",
        "receive": "orders.receive_return",
    }
    serializer_class = ReturnSerializer
    filterset_class = ReturnFilter

    def _answer(self, returned: Return) -> Response:
        returned.refresh_from_db()
        return Response(self.get_serializer(returned).data)

    @extend_schema(request=ReturnApproveSerializer, responses=ReturnSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Accept a requested return: its label is bought and e-mailed to the buyer. 409 when
        it is not requested."""
        returned = self.get_object()
        form = ReturnApproveSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return self._answer(
            return_services.return_approve(
                return_id=returned.pk,
                note=form.validated_data["note"],
                restock=form.validated_data["restock"],
                now=timezone.now(),
                actor_label="api",
                actor_id=request.user.pk,
            )
        )

    @extend_schema(request=ReturnRefuseSerializer, responses=ReturnSerializer)
    @action(detail=True, methods=["post"])
    def refuse(self, request: Request, pk: str | None = None) -> Response:
        """Refuse a requested return, with a note the buyer reads. 409 when it is not
        requested."""
        returned = self.get_object()
        form = ReturnRefuseSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return self._answer(
            return_services.return_refuse(
                return_id=returned.pk,
                note=form.validated_data["note"],
                now=timezone.now(),
                actor_label="api",
                actor_id=request.user.pk,
            )
        )

    @extend_schema(request=None, responses=ReturnSerializer)
    @action(detail=True, methods=["post"])
    def receive(self, request: Request, pk: str | None = None) -> Response:
        """The goods arrived: refund all that is left on the order (queued in the payment
        outbox and tried at once; the unit restocked if approved so). 409 when the return is
        not approved or on its way back."""
        returned = self.get_object()
        refund = return_services.return_receive(
            return_id=returned.pk, now=timezone.now(), actor_label="api", actor_id=request.user.pk
        )
        if refund is not None:
            refund_run_on_commit(refund_id=refund.pk, now=timezone.now())
        return self._answer(returned)
