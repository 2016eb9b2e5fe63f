"""Shipments in the back office: merchant-scoped, fast at a million rows, with SLA badges and
the two actions staff take on them, each through a service: buy labels (which captures the
payments) and mark shipped with a tracking number from elsewhere. Operators keep the closure
dates of the business-day calendar."""

from collections import Counter
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from core.admin import LargeMerchantTableAdmin, OperatorOnlyAdmin, ReadOnlyAdminMixin
from fulfillment.models import (
    CARRIER_MAX_LENGTH,
    TRACKING_NUMBER_MAX_LENGTH,
    ClosureDate,
    Shipment,
    ShipmentStatus,
)
from fulfillment.selectors import merchant_today, sla_state
from fulfillment.services import label_buy, order_mark_shipped


class MarkShippedForm(forms.Form):
    carrier = forms.CharField(max_length=CARRIER_MAX_LENGTH, initial="UPS")
    tracking_number = forms.CharField(max_length=TRACKING_NUMBER_MAX_LENGTH)


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdminMixin, LargeMerchantTableAdmin):
    list_display = (
        "id",
        "order_id",
        "sla",
        "status",
        "ship_by",
        "promised_delivery",
        "carrier",
        "tracking_number",
    )
    list_filter = ("status",)
    actions = ["export_csv", "buy_labels"]

    class Media:
        css = {"all": ("core/admin.css",)}

    def has_ship_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("fulfillment.ship_shipment")

    @admin.display(description="SLA")
    def sla(self, obj: Shipment) -> str:
        """Late, at risk or on time, against the merchant's today (``sla_state``, as the
        ``sla_report`` command)."""
        if obj.status in (ShipmentStatus.DELIVERED, ShipmentStatus.CANCELLED):
            return "-"
        state = sla_state(obj, merchant_today(obj.merchant, timezone.now()))
        if state is None:
            return format_html('<span class="sla sla-ok">{}</span>', "On time")
        kind, reason = state
        css = "sla-late" if kind == "late" else "sla-at-risk"
        return format_html(
            '<span class="sla {}" title="{}">{}</span>',
            css,
            reason,
            "Late" if kind == "late" else "At risk",
        )

    @admin.action(description="Buy labels (ships and captures the payment)", permissions=["ship"])
    def buy_labels(self, request: HttpRequest, queryset: QuerySet[Shipment]) -> None:
        outcomes: Counter[str] = Counter()
        for shipment_id in queryset.values_list("pk", flat=True):
            outcome = label_buy(shipment_id=shipment_id)
            outcomes[outcome.status] += 1
        level = messages.WARNING if outcomes["failed"] else messages.SUCCESS
        self.message_user(
            request,
            f"Labels: {outcomes['bought']} bought, {outcomes['skipped']} skipped, "
            f"{outcomes['failed']} failed (the carrier will be tried again next time).",
            level,
        )

    def get_urls(self) -> list[URLPattern]:
        mark = path(
            "<int:shipment_id>/mark-shipped/",
            self.admin_site.admin_view(self.mark_shipped_view),
            name="fulfillment_shipment_mark_shipped",
        )
        return [mark, *super().get_urls()]

    def mark_shipped_view(self, request: HttpRequest, shipment_id: int) -> HttpResponse:
        if not self.has_ship_permission(request):
            raise PermissionDenied
        shipment = self.get_object(request, str(shipment_id))  # scoped: 404 for others
        form = MarkShippedForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            result = order_mark_shipped(
                order=shipment.order,
                carrier=form.cleaned_data["carrier"],
                tracking_number=form.cleaned_data["tracking_number"],
                actor=f"admin:{request.user.pk}",
            )
            if result == "bought":
                self.message_user(request, "Marked shipped; the payment is captured.")
            else:
                self.message_user(
                    request, "This shipment cannot be marked shipped.", messages.ERROR
                )
            return redirect("admin:fulfillment_shipment_change", shipment.pk)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": f"Mark order #{shipment.order.confirmation_code} shipped",
            "form": form,
            "shipment": shipment,
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/fulfillment/mark_shipped.html", context)

    @admin.display(description="Ship")
    def ship_link(self, obj: Shipment) -> str:
        if obj.status != ShipmentStatus.AWAITING_LABEL:
            return "-"
        url = reverse("admin:fulfillment_shipment_mark_shipped", args=[obj.pk])
        return format_html('<a href="{}">Mark shipped with a tracking number</a>', url)

    search_fields = ("tracking_number",)
    search_help_text = "Exact tracking number or order number."
    readonly_fields = (
        "ship_link",
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


@admin.register(ClosureDate)
class ClosureDateAdmin(OperatorOnlyAdmin):
    """Days that are not business days beyond the public holidays: every new promise skips them
    (promises already made stand)."""

    list_display = ("day", "reason")
    ordering = ("day",)
