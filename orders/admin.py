"""Orders in the back office: read-only, merchant-scoped, fast at a million rows.

The change list never counts the whole table (``CappedCountPaginator``), orders by the primary
key (indexed together with the merchant), joins only the merchant, and searches by exact
confirmation code, buyer handle or order number, each an index lookup.

Merchant staff never see cardholder data (DESIGN §10.2): an order shows the buyer's handle and
an opaque buyer reference (``order_buyer_reference``), never the cardholder (their e-mail) or
the card; operators see those too. The CSV export holds neither.
"""

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from catalog.models import Campaign
from core.admin import LargeMerchantTableAdmin, ReadOnlyAdminMixin
from core.scoping import merchant_id_of, scope_to_merchant
from orders.dashboard import campaign_dashboard
from orders.messages import percent
from orders.models import Order, OrderEvent
from orders.selectors import order_buyer_reference

# Shown to operators only: the cardholder's login (its e-mail) and the card.
_CARDHOLDER_FIELDS = ("cardholder", "card")


class OrderEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = OrderEvent
    fields = ("created_at", "kind", "from_status", "to_status", "actor_label", "data")
    readonly_fields = fields
    ordering = ("id",)
    extra = 0


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, LargeMerchantTableAdmin):
    list_display = (
        "id",
        "created_at",
        "status",
        "product_name",
        "money",
        "author_handle",
        "buyer_reference",
        "platform",
    )
    list_filter = ("status", "campaign")
    search_fields = ("confirmation_code",)
    search_help_text = "Exact order number, confirmation code, or buyer handle."
    inlines = (OrderEventInline,)
    readonly_fields = (
        "merchant",
        "campaign",
        "cardholder",
        "card",
        "purchase_post",
        "platform",
        "author_id",
        "author_handle",
        "buyer_reference",
        "status",
        "confirmation_code",
        "reply_posted_at",
        "expires_at",
        "confirmed_at",
        "quantity",
        "unit_price",
        "price_includes_tax",
        "subtotal",
        "tax_breakdown",
        "tax_total",
        "total",
        "currency",
        "product_name",
        "product_sku",
        "hashtag",
        "ship_to",
        "created_at",
        "updated_at",
    )
    export_fields = (
        "id",
        "merchant_id",
        "campaign_id",
        "status",
        "created_at",
        "confirmed_at",
        "product_name",
        "product_sku",
        "quantity",
        "unit_price",
        "subtotal",
        "tax_total",
        "total",
        "currency",
        "platform",
        "author_handle",
    )

    def get_urls(self) -> list[URLPattern]:
        dashboard = path(
            "campaign/<int:campaign_id>/dashboard/",
            self.admin_site.admin_view(self.campaign_dashboard_view),
            name="orders_campaign_dashboard",
        )
        return [dashboard, *super().get_urls()]

    def campaign_dashboard_view(self, request: HttpRequest, campaign_id: int) -> HttpResponse:
        """Orders per hour and the funnel of one of the user's merchant's campaigns."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        campaigns = scope_to_merchant(
            Campaign.objects.select_related("product"), "merchant", merchant_id_of(request)
        )
        campaign = get_object_or_404(campaigns, pk=campaign_id)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "d": campaign_dashboard(campaign),
            "title": f"#{campaign.hashtag}: {campaign.product.name}",
        }
        return TemplateResponse(request, "admin/orders/campaign_dashboard.html", context)

    @admin.display(description="Buyer")
    def buyer_reference(self, obj: Order) -> str:
        return order_buyer_reference(merchant_id=obj.merchant_id, cardholder_id=obj.cardholder_id)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return fields
        return tuple(name for name in fields if name not in _CARDHOLDER_FIELDS)

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        # Not a form field either: the page shows neither, even read-only.
        return None if request.user.is_superuser else _CARDHOLDER_FIELDS

    @admin.display(description="Sales tax by jurisdiction")
    def tax_breakdown(self, obj: Order) -> str:
        lines = obj.tax_lines or []
        if not lines:
            return "none"
        return "; ".join(
            f"{line['jurisdiction']} {percent(line['rate'])}: {line['amount']}" for line in lines
        )

    @admin.display(description="Total", ordering="total")
    def money(self, obj: Order) -> str:
        return f"{obj.total} {obj.currency}"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Order], search_term: str
    ) -> tuple[QuerySet[Order], bool]:
        term = search_term.strip().lstrip("@")
        if not term:
            return queryset, False
        match = Q(confirmation_code=term.upper()) | Q(author_handle=term)
        if term.isdigit():
            match |= Q(pk=int(term))
        return queryset.filter(match), False
