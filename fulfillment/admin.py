"""Shipments in the back office: merchant-scoped, fast at a million rows, with SLA badges, a
"Labels due" filter that is ``labels_due`` (as the commands and the merchant home page), the
ship-to address and the label on each shipment's page, and the two actions staff take, each
through a service: buy labels (a page that shows what it buys and charges and asks to confirm:
``admin:fulfillment_shipment_buy_labels``, ``?ids=1,2,3``) and mark shipped with a tracking
number from elsewhere. Operators keep the closure dates of the business-day calendar."""

from datetime import date
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from core.admin import LargeMerchantTableAdmin, OperatorOnlyAdmin, ReadOnlyAdminMixin
from core.scoping import merchant_id_of
from fulfillment.carriers import default_carrier
from fulfillment.models import (
    CARRIER_MAX_LENGTH,
    TRACKING_NUMBER_MAX_LENGTH,
    ClosureDate,
    Shipment,
    ShipmentStatus,
)
from fulfillment.selectors import (
    horizon_phrase,
    label_purchase_preview,
    labels_due_horizons,
    labels_due_queryset,
    merchant_today,
    shipment_tracking_url,
    sla_state,
)
from fulfillment.services import label_buy, order_mark_shipped
from orders.addresses import ship_to_lines
from orders.models import (
    CONFIRMATION_CODE_LENGTH,
    OutboxStatus,
    PaymentOperation,
    PaymentOperationKind,
)

# At most this many shipments on one buy-labels page (a day's queue fits; more is two visits).
BUY_LABELS_MAX = 500


class MarkShippedForm(forms.Form):
    carrier = forms.CharField(max_length=CARRIER_MAX_LENGTH, initial="UPS")
    tracking_number = forms.CharField(max_length=TRACKING_NUMBER_MAX_LENGTH)


class LabelsDueFilter(admin.SimpleListFilter):
    """ "Labels due": the shipments ``labels_due`` returns for the user's scope (by each
    merchant's next business day, or by a day given as ``?labels_due=YYYY-MM-DD``), never a
    query of its own, so this list, ``fulfillment_queue``, ``buy_labels`` and the merchant
    home page show the same shipments."""

    title = "labels due"
    parameter_name = "labels_due"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("next", "By the next business day")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if not value:
            return None
        due_by: date | None = None
        if value != "next":
            try:
                due_by = date.fromisoformat(value)
            except ValueError as exc:
                raise IncorrectLookupParameters(exc) from exc
        due = labels_due_queryset(
            now=timezone.now(), merchant_id=merchant_id_of(request), due_by=due_by
        )
        return queryset.filter(pk__in=due.values("pk"))


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdminMixin, LargeMerchantTableAdmin):
    # Few enough columns for a 1,280-pixel screen with the filters beside them; the order's
    # code (``#GAQ37``, the one order number) opens the shipment.
    list_display = (
        "order_code",
        "sla",
        "progress",
        "ship_by",
        "promised_delivery",
        "ship_to_city",
        "tracking",
    )
    list_display_links = ("order_code",)
    # The order too: its code and city are on every row (one join by primary key per page).
    list_select_related = ("merchant", "order")  # type: ignore[assignment]
    list_filter = (LabelsDueFilter, "status")
    change_list_template = "admin/fulfillment/shipment/change_list.html"
    actions = ["export_csv", "buy_labels"]

    class Media:
        css = {"all": ("core/admin.css",)}

    def has_ship_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("fulfillment.ship_shipment")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # A link to the buy-labels page (the labels due) only for those who may buy: no link
        # staff can see leads to a 403.
        context = {**(extra_context or {}), "can_buy_labels": self.has_ship_permission(request)}
        return super().changelist_view(request, context)

    def get_ordering(self, request: HttpRequest) -> Any:
        # The labels due in ``labels_due``'s order, the most overdue first (the queue's order).
        if request.GET.get(LabelsDueFilter.parameter_name):
            return ("ship_by", "id")
        return super().get_ordering(request)

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

    @admin.display(description="Order", ordering="order_id")
    def order_code(self, obj: Shipment) -> str:
        return f"#{obj.order.confirmation_code}"

    @admin.display(description="Status", ordering="status")
    def progress(self, obj: Shipment) -> str:
        return obj.progress

    @admin.display(description="Tracking")
    def tracking(self, obj: Shipment) -> str:
        return f"{obj.carrier} {obj.tracking_number}" if obj.tracking_number else "-"

    @admin.display(description="Ships to")
    def ship_to_city(self, obj: Shipment) -> str:
        to = obj.order.ship_to
        return ", ".join(str(p) for p in (to.get("city"), to.get("state")) if p)

    @admin.display(description="Ship-to address")
    def ship_to_address(self, obj: Shipment) -> str:
        lines = ship_to_lines(obj.order.ship_to)
        if not lines:
            return "-"
        return format_html(
            "<address>{}</address>",
            format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines)),
        )

    @admin.display(description="Label")
    def label(self, obj: Shipment) -> str:
        """The label the carrier gave (its file), the tracking number and the carrier's public
        tracking page; or what is missing."""
        if not obj.tracking_number:
            return "No label yet"
        parts = [format_html("{}, tracking number {}", obj.carrier, obj.tracking_number)]
        tracking = shipment_tracking_url(carrier=obj.carrier, tracking_number=obj.tracking_number)
        if tracking:
            parts.append(format_html('<a href="{}" rel="noopener">Track the parcel</a>', tracking))
        if obj.label_url:
            parts.append(format_html('<a href="{}" rel="noopener">Label file</a>', obj.label_url))
        elif not obj.carrier_reference:
            parts.append(format_html("{}", "label bought elsewhere and recorded by staff"))
        return format_html_join(" · ", "{}", ((part,) for part in parts))

    @admin.action(
        description="Buy labels (shows the cost and asks to confirm)", permissions=["ship"]
    )
    def buy_labels(self, request: HttpRequest, queryset: QuerySet[Shipment]) -> HttpResponse | None:
        chosen = list(queryset.order_by("pk").values_list("pk", flat=True)[: BUY_LABELS_MAX + 1])
        if len(chosen) > BUY_LABELS_MAX:
            self.message_user(
                request,
                f"Choose at most {BUY_LABELS_MAX} shipments to buy labels for at once.",
                messages.ERROR,
            )
            return None
        ids = ",".join(str(pk) for pk in chosen)
        url = reverse("admin:fulfillment_shipment_buy_labels")
        return redirect(f"{url}?{urlencode({'ids': ids})}")

    def get_urls(self) -> list[URLPattern]:
        mark = path(
            "<int:shipment_id>/mark-shipped/",
            self.admin_site.admin_view(self.mark_shipped_view),
            name="fulfillment_shipment_mark_shipped",
        )
        buy = path(
            "buy-labels/",
            self.admin_site.admin_view(self.buy_labels_view),
            name="fulfillment_shipment_buy_labels",
        )
        return [mark, buy, *super().get_urls()]

    def _shipments_to_buy(self, request: HttpRequest, ids: str) -> list[Shipment]:
        """The shipments ``ids`` ("1,2,3") names, all of them in the user's scope (else a 404:
        another merchant's shipment is never confirmed to exist); without ids, the user's
        labels due (``labels_due``, as the queue and the home page)."""
        if not ids:
            due = labels_due_queryset(now=timezone.now(), merchant_id=merchant_id_of(request))
            shown = list(due[: BUY_LABELS_MAX + 1])
            if len(shown) > BUY_LABELS_MAX:
                # One confirmation buys at most what one POST may name: the rest next time.
                shown = shown[:BUY_LABELS_MAX]
                self.message_user(
                    request,
                    f"More than {BUY_LABELS_MAX} labels are due: these are the first "
                    f"{BUY_LABELS_MAX}, the most overdue first. Buy them, then come back for "
                    "the rest.",
                    messages.WARNING,
                )
            return shown
        try:
            wanted = {int(part) for part in ids.split(",") if part.strip()}
        except ValueError:
            raise Http404("No such shipments.") from None
        if not wanted or len(wanted) > BUY_LABELS_MAX:
            raise Http404("No such shipments.")
        found = list(
            self.get_queryset(request)
            .filter(pk__in=wanted)
            .select_related("order", "merchant")
            .order_by("ship_by", "id")
        )
        if len(found) != len(wanted):
            raise Http404("No such shipments.")
        return found

    def buy_labels_view(self, request: HttpRequest) -> HttpResponse:
        """ "Buy labels", in two steps: GET shows the shipments (``?ids=1,2,3``, else the labels
        due), what each label costs if the carrier quotes it, the payments that will be captured
        and the totals; POST (the confirmation) buys them through ``label_buy`` and tells the
        outcome of each."""
        if not self.has_ship_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            # Only what the page listed (its ids): never "whatever is due now", unseen.
            ids = request.POST.get("ids", "").strip()
            self._buy(request, self._shipments_to_buy(request, ids) if ids else [])
            return redirect("admin:fulfillment_shipment_changelist")
        ids = request.GET.get("ids", "").strip()
        shipments = self._shipments_to_buy(request, ids)
        purchase = label_purchase_preview(shipments=shipments, carrier=default_carrier())
        horizons = labels_due_horizons(now=timezone.now(), merchant_id=merchant_id_of(request))
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": "Buy labels",
            "opts": self.opts,
            "purchase": purchase,
            "ids": ",".join(str(line.shipment.pk) for line in purchase.buying),
            # What "due" meant, when the page shows the labels due (no ids).
            "horizon": "" if ids else horizon_phrase(horizons),
        }
        return TemplateResponse(request, "admin/fulfillment/buy_labels.html", context)

    def _buy(self, request: HttpRequest, shipments: list[Shipment]) -> None:
        if not shipments:
            self.message_user(request, "No label to buy.", messages.WARNING)
        for shipment in shipments:
            code = f"#{shipment.order.confirmation_code}"
            outcome = label_buy(shipment_id=shipment.pk)
            if outcome.status == "bought":
                self.message_user(
                    request,
                    f"{code}: label bought, tracking number {outcome.detail}; "
                    + _capture_words(shipment),
                    messages.SUCCESS,
                )
            elif outcome.status == "skipped":
                self.message_user(
                    request, f"{code}: nothing bought ({outcome.detail}).", messages.WARNING
                )
            else:
                self.message_user(
                    request,
                    f"{code}: the carrier failed ({outcome.detail}); nothing was charged. "
                    "Try again later.",
                    messages.ERROR,
                )

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
    fieldsets = (
        (None, {"fields": ("order", "progress", "ship_by", "promised_delivery", "ship_link")}),
        ("Ship to", {"fields": ("ship_to_address",)}),
        (
            "Label",
            {"fields": ("label", "service", "label_bought_at", "shipped_at", "delivered_at")},
        ),
        (
            "Details",
            {
                "classes": ("collapse",),
                "fields": (
                    "merchant",
                    "status",
                    "carrier",
                    "tracking_number",
                    "label_url",
                    "carrier_reference",
                    "exception_reason",
                    "label_claimed_until",
                    "created_at",
                ),
            },
        ),
    )
    search_help_text = "Exact tracking number or order code (#GAQ37)."
    readonly_fields = (
        "ship_link",
        "progress",
        "ship_to_address",
        "label",
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
        code = term.removeprefix("#").upper()
        if len(code) == CONFIRMATION_CODE_LENGTH and code.isalnum():
            match |= Q(order__confirmation_code=code)
        return queryset.filter(match), False


def _capture_words(shipment: Shipment) -> str:
    """What happened to the order's payment once its label is bought (the capture runs at once;
    a gateway that fails leaves it to the payment sweep's retries)."""
    order = shipment.order
    captured = PaymentOperation.objects.filter(
        order_id=order.pk, operation=PaymentOperationKind.CAPTURE, status=OutboxStatus.DONE
    ).exists()
    amount = f"{order.total} {order.currency}"
    if captured:
        return f"payment of {amount} captured."
    return f"payment of {amount} to be captured (the gateway is retried automatically)."


@admin.register(ClosureDate)
class ClosureDateAdmin(OperatorOnlyAdmin):
    """Days that are not business days beyond the public holidays: every new promise skips them
    (promises already made stand)."""

    list_display = ("day", "reason")
    ordering = ("day",)
