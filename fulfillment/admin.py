"""Shipments in the back office: read-only for now, merchant-scoped, fast at a million rows."""

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from catalog.admin_scoping import LargeMerchantTableAdmin
from core.admin import ReadOnlyAdminMixin
from fulfillment.models import Shipment


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdminMixin, LargeMerchantTableAdmin):
    list_display = (
        "id",
        "order_id",
        "status",
        "ship_by",
        "promised_delivery",
        "carrier",
        "tracking_number",
    )
    list_filter = ("status",)
    search_fields = ("tracking_number",)
    search_help_text = "Exact tracking number or order number."
    readonly_fields = (
        "order",
        "merchant",
        "status",
        "service",
        "ship_by",
        "promised_delivery",
        "carrier",
        "tracking_number",
        "label_url",
        "carrier_reference",
        "exception_reason",
        "label_claimed_until",
        "label_bought_at",
        "shipped_at",
        "delivered_at",
        "created_at",
    )
    export_fields = (
        "id",
        "order_id",
        "merchant_id",
        "status",
        "service",
        "ship_by",
        "promised_delivery",
        "carrier",
        "tracking_number",
        "shipped_at",
        "delivered_at",
    )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Shipment], search_term: str
    ) -> tuple[QuerySet[Shipment], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(tracking_number=term)
        if term.isdigit():
            match |= Q(order_id=int(term))
        return queryset.filter(match), False
