"""Orders in the back office: read-only, merchant-scoped, fast at a million rows.

The change list never counts the whole table (``CappedCountPaginator``), orders by the primary
key (indexed together with the merchant), joins only the merchant, and searches by exact
keys (code, handle, post id or link; operators also e-mail and last four: ``orders.search``),
each an index lookup.

An order is known by one number, its code (``#GAQ37``): in the list, the page's title and
breadcrumbs, the links from cases, returns and the waitlist, and every message; the primary key
stays in URLs only. Its page is a support view (issue 14): the item, the buyer's handle and
platform, totals with tax, the ship-to address, one timeline of everything that happened
(``orders.timeline``), and the buttons of the actions that apply now and that the user may take;
times in the order's merchant's zone (merchant staff see every back-office page in it:
``accounts.middleware.merchant_time_zone``). No link on it leads to a page the user may not
open: the purchase post links its page on its platform (the inbox is the operators'), logins
are named, not linked, and a timeline entry links its case only while the user may see it.

Merchant staff never see cardholder data (DESIGN §10.2): an order shows the buyer's handle and
an opaque buyer reference (``order_buyer_reference``), never the cardholder (their e-mail) or
the card; operators see those too. The CSV export holds neither.

Staff act on an order through its services, each behind its own permission: "Cancel" (before
shipping, ``order_cancel``; ``orders.cancel_order``) and "Refund" (a captured order, in full or
in part, ``order_refund``; ``orders.refund_order``), as buttons on the order's page leading to
a small confirmation or refund form (POST, CSRF), and as actions of the change list.

Disputes ("Not me" after shipping) have their own list, open cases first by deadline, and a
notice above the order list while any wait for an answer. Staff resolve one from its page or
its order's page, each way behind its own permission: a refund without return
(``orders.refund_dispute``), a refund on return (``orders.refund_dispute_on_return``), or a
rejection with a reason (``orders.reject_dispute``). An escalated case is the operators' only.

Returns have their own list, and buttons on their page and their order's page: approve or
refuse with a note the buyer reads (``orders.approve_return``), mark received
(``orders.receive_return``), which refunds what is left.
"""

from dataclasses import dataclass
from typing import Any

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.exceptions import NotRegistered
from django.core.exceptions import PermissionDenied
from django.db.models import Case, QuerySet, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from catalog.models import Campaign
from core.admin import LargeMerchantTableAdmin, MerchantScopedAdmin, ReadOnlyAdminMixin
from core.exceptions import ApplicationError
from core.scoping import has_merchant_scope, merchant_id_of, scope_to_merchant
from orders import messages as texts
from orders.addresses import ship_to_lines
from orders.admin_filters import CreatedDateRangeFilter, date_range_ordering
from orders.admin_reports import SalesReportAdminMixin
from orders.dashboard import campaign_dashboard
from orders.messages import percent
from orders.models import (
    CANCELLABLE_STATUSES,
    REFUNDABLE_STATUSES,
    CancelReason,
    CreditNote,
    Dispute,
    DisputeStatus,
    Order,
    Return,
    ReturnStatus,
    WaitlistEntry,
)
from orders.receipt_pdf import receipt_download
from orders.search import SEARCH_HELP, order_search
from orders.selectors import (
    disputes_open,
    disputes_visible,
    merchant_credit_note,
    merchant_receipt,
    order_buyer_reference,
)
from orders.services import disputes as dispute_services
from orders.services import order_cancel, order_refund
from orders.services import returns as return_services
from orders.services.payments import refund_run_on_commit
from orders.services.refunds import CENT, REASON_MAX_LENGTH
from orders.timeline import TimelineEntry, order_timeline
from social.models import Platform
from social.platforms import post_url

# Shown to operators only: the cardholder's login (its e-mail) and the card.
_CARDHOLDER_FIELDS = ("cardholder", "card")


class RefundForm(forms.Form):
    amount = forms.DecimalField(max_digits=12, decimal_places=2, min_value=CENT)
    reason = forms.CharField(max_length=REASON_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 3}))
    restock = forms.BooleanField(
        required=False, label="The goods came back: put the unit back in stock"
    )


@admin.register(Order)
class OrderAdmin(SalesReportAdminMixin, ReadOnlyAdminMixin, LargeMerchantTableAdmin):
    list_display = (
        "number",
        "created_at",
        "status",
        "product_name",
        "money",
        "author_handle",
        "buyer_reference",
        "platform",
    )
    list_display_links = ("number",)
    list_filter = ("status", "campaign", CreatedDateRangeFilter)
    search_fields = ("confirmation_code",)  # shows the search box; ``order_search`` searches
    search_help_text = SEARCH_HELP
    change_form_template = "admin/orders/order/change_form.html"
    change_list_template = "admin/orders/order/change_list.html"
    actions = ["export_csv", "cancel_orders", "refund_order"]
    readonly_fields = (
        "merchant",
        "campaign",
        "cardholder",
        "card",
        "purchase_post_link",
        "platform",
        "author_id",
        "author_handle",
        "buyer_reference",
        "status",
        "receipt_link",
        "credit_note_links",
        "confirmation_code",
        "reply_posted_at",
        "expires_at",
        "confirmed_at",
        "quantity",
        "variant_label",
        "unit_price",
        "price_includes_tax",
        "subtotal",
        "tax_breakdown",
        "tax_total",
        "total",
        "refunded_total",
        "currency",
        "product_name",
        "product_sku",
        "hashtag",
        "ship_to_address",
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
        receipt = path(
            "<int:order_id>/receipt.pdf",
            self.admin_site.admin_view(self.receipt_pdf_view),
            name="orders_order_receipt_pdf",
        )
        credit_note = path(
            "credit-notes/<int:credit_note_id>.pdf",
            self.admin_site.admin_view(self.credit_note_pdf_view),
            name="orders_order_credit_note_pdf",
        )
        cancel = path(
            "<path:object_id>/cancel/",
            self.admin_site.admin_view(self.cancel_view),
            name="orders_order_cancel",
        )
        refund = path(
            "<path:object_id>/refund/",
            self.admin_site.admin_view(self.refund_view),
            name="orders_order_refund",
        )
        return [dashboard, receipt, credit_note, cancel, refund, *super().get_urls()]

    # --- Staff actions: permissions ---------------------------------------------------------
    def has_cancel_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_merchant_scope(request) and request.user.has_perm("orders.cancel_order")

    def has_refund_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_merchant_scope(request) and request.user.has_perm("orders.refund_order")

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The order's page as a support view: the item, the buyer (handle and platform; the
        cardholder and card for operators only), totals with tax, the address, the timeline
        of everything that happened (``orders.timeline``) and the buttons of the actions that
        apply now and that the user may take. Times are in the order's merchant's zone."""
        order = self.get_object(request, object_id)  # 404 for another merchant's
        # An operator looking at one order sees it in its merchant's zone, as its staff do.
        with timezone.override(order.merchant.time_zone):
            context = {
                **(extra_context or {}),
                **self._support_context(request, order),
                "title": f"Order #{order.confirmation_code}",
                "subtitle": order.product_name,
            }
            response = super().change_view(request, object_id, form_url, extra_context=context)
            if isinstance(response, TemplateResponse):
                response.render()  # inside the zone: the template formats the times
            return response

    def _support_context(self, request: HttpRequest, order: Order) -> dict[str, Any]:
        dispute = getattr(order, "dispute", None)
        return {
            "support": SupportView(
                order=order,
                platform=dict(Platform.choices).get(order.platform, order.platform),
                address=ship_to_lines(order.ship_to or {}),
                timeline=_timeline_rows(request, order_timeline(order)),
                actions=self._actions(request, order, dispute),
                time_zone=order.merchant.time_zone,
            ),
        }

    def _actions(
        self, request: HttpRequest, order: Order, dispute: Dispute | None
    ) -> list[tuple[str, str, str]]:
        """(url, label, css class) of each action that applies to the order now and that the
        user may take: cancel, refund, the receipt and credit notes, a case's resolutions and
        a return's steps."""
        actions = []
        if order.status in CANCELLABLE_STATUSES and self.has_cancel_permission(request, order):
            url = reverse("admin:orders_order_cancel", args=[order.pk])
            actions.append((url, "Cancel", "cancel-order"))
        if order.status in REFUNDABLE_STATUSES and self.has_refund_permission(request, order):
            url = reverse("admin:orders_order_refund", args=[order.pk])
            actions.append((url, "Refund", "refund-order"))
        actions += [
            (url, f"Dispute: {label}", "resolve-dispute")
            for url, label in _dispute_actions(request, dispute)
        ]
        actions += [
            (url, label, "return-step")
            for returned in order.returns.order_by("id")
            for url, label in _return_actions(request, returned)
        ]
        receipt = merchant_receipt(order_id=order.pk, merchant_id=order.merchant_id)
        if receipt is not None:
            url = reverse("admin:orders_order_receipt_pdf", args=[order.pk])
            actions.append((url, f"Receipt {receipt.reference} (PDF)", "receipt"))
        notes = CreditNote.objects.filter(refund__order=order).order_by("number")
        actions += [
            (
                reverse("admin:orders_order_credit_note_pdf", args=[n.pk]),
                f"Credit note {n.reference} (PDF)",
                "credit-note",
            )
            for n in notes
        ]
        return actions

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The order list, under a notice of the disputes waiting for an answer."""
        count, cases = disputes_open(merchant_id=merchant_id_of(request))
        context = {**(extra_context or {}), "open_disputes": cases, "open_disputes_count": count}
        return super().changelist_view(request, extra_context=context)

    def _order_page(self, order: Order) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:orders_order_change", args=[order.pk]))

    def _action_context(self, request: HttpRequest, order: Order, title: str) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": order,
            "title": title,
        }

    # --- Cancel -----------------------------------------------------------------------------
    def cancel_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: confirm cancelling the order; POST: cancel it (``order_cancel``)."""
        if not self.has_cancel_permission(request):
            raise PermissionDenied
        order = self.get_object(request, object_id)  # 404 for another merchant's
        if request.method == "POST":
            self._cancel(request, order)
            return self._order_page(order)
        context = self._action_context(request, order, f"Cancel order #{order.confirmation_code}")
        context["cancellable"] = order.status in CANCELLABLE_STATUSES
        return TemplateResponse(request, "admin/orders/order/cancel.html", context)

    def _cancel(self, request: HttpRequest, order: Order) -> bool:
        cancelled = order_cancel(
            order_id=order.pk,
            now=timezone.now(),
            actor_label="admin",
            actor_id=request.user.pk,
            reason=CancelReason.OPERATOR if request.user.is_superuser else CancelReason.MERCHANT,
        )
        if cancelled:
            self.message_user(request, f"Order #{order.confirmation_code} is cancelled.")
        else:
            self.message_user(request, texts.cancel_refused(order=order), messages.ERROR)
        return cancelled

    @admin.action(description="Cancel selected orders (before shipping)", permissions=["cancel"])
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        for order in queryset.order_by("pk"):
            self._cancel(request, order)

    # --- Refund -----------------------------------------------------------------------------
    def refund_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: the refund form (amount, at most what is left; reason; restock); POST: ask for
        the refund (``order_refund``), run at once after the commit. A refusal is shown on the
        form (409)."""
        if not self.has_refund_permission(request):
            raise PermissionDenied
        order = self.get_object(request, object_id)  # 404 for another merchant's
        left = order.total - order.refund_requested_total
        form = RefundForm(request.POST or None, initial={"amount": left})
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                refund = order_refund(
                    order_id=order.pk,
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    restock=form.cleaned_data["restock"],
                    now=timezone.now(),
                    actor_label="admin",
                    actor_id=request.user.pk,
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
                status = 409
            else:
                refund_run_on_commit(refund_id=refund.pk, now=timezone.now())
                self.message_user(
                    request,
                    f"Refund of {texts.money(refund.amount, order.currency)} on order "
                    f"#{order.confirmation_code} asked for.",
                )
                return self._order_page(order)
        context = self._action_context(request, order, f"Refund order #{order.confirmation_code}")
        context.update(form=form, left=left, refundable=order.status in REFUNDABLE_STATUSES)
        return TemplateResponse(request, "admin/orders/order/refund.html", context, status=status)

    @admin.action(description="Refund the selected order…", permissions=["refund"])
    def refund_order(
        self, request: HttpRequest, queryset: QuerySet[Order]
    ) -> HttpResponseRedirect | None:
        """One order at a time: the refund form asks for its amount."""
        orders = list(queryset[:2])
        if len(orders) != 1:
            self.message_user(request, "Choose one order to refund.", messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:orders_order_refund", args=[orders[0].pk]))

    def receipt_pdf_view(self, request: HttpRequest, order_id: int) -> HttpResponse:
        """The receipt PDF of one of the user's merchant's orders; a 404 for another
        merchant's order or one without a receipt."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        receipt = merchant_receipt(order_id=order_id, merchant_id=merchant_id_of(request))
        if receipt is None:
            raise Http404("No such receipt.")
        return receipt_download(receipt)

    def credit_note_pdf_view(self, request: HttpRequest, credit_note_id: int) -> HttpResponse:
        """A credit note PDF of one of the user's merchant's refunds; a 404 for another's."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        note = merchant_credit_note(
            credit_note_id=credit_note_id, merchant_id=merchant_id_of(request)
        )
        if note is None:
            raise Http404("No such credit note.")
        return receipt_download(note)

    @admin.display(description="Credit notes")
    def credit_note_links(self, obj: Order) -> str:
        notes = CreditNote.objects.filter(refund__order=obj).order_by("number")
        if not notes:
            return self.get_empty_value_display()
        return format_html_join(
            ", ",
            '<a href="{}">{} (PDF)</a>',
            (
                (reverse("admin:orders_order_credit_note_pdf", args=[n.pk]), n.reference)
                for n in notes
            ),
        )

    @admin.display(description="Receipt")
    def receipt_link(self, obj: Order) -> str:
        receipt = merchant_receipt(order_id=obj.pk, merchant_id=obj.merchant_id)
        if receipt is None:
            return self.get_empty_value_display()
        url = reverse("admin:orders_order_receipt_pdf", args=[obj.pk])
        return format_html('<a href="{}">{} (PDF)</a>', url, receipt.reference)

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

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Only the fields listed (read only), never the model's others: a foreign key shown
        # by Django links its admin page, which may be a 403 (the inbox is the operators').
        return self.get_readonly_fields(request, obj)

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

    @admin.display(description="Order", ordering="id")
    def number(self, obj: Order) -> str:
        """The one number staff and buyers use for an order: its code (the primary key stays
        in URLs only)."""
        return f"#{obj.confirmation_code}"

    @admin.display(description="Purchase post")
    def purchase_post_link(self, obj: Order) -> str:
        # On its platform: the inbox is the operators' (its admin page would be a 403).
        post = obj.purchase_post
        if post is None:
            return self.get_empty_value_display()
        url = post_url(
            platform=post.platform, post_id=post.post_id, author_handle=post.author_handle
        )
        if not url:
            return f"{post.platform} post {post.post_id}"
        return format_html(
            '<a href="{}" rel="noopener noreferrer">{} post {}</a>',
            url,
            post.platform,
            post.post_id,
        )

    @admin.display(description="Ship to")
    def ship_to_address(self, obj: Order) -> str:
        lines = ship_to_lines(obj.ship_to or {})
        if not lines:
            return self.get_empty_value_display()
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Order], search_term: str
    ) -> tuple[QuerySet[Order], bool]:
        if not search_term.strip():
            return queryset, False
        return order_search(queryset, search_term, operator=request.user.is_superuser), False

    def get_ordering(self, request: HttpRequest) -> Any:
        return date_range_ordering(request) or super().get_ordering(request)


@dataclass(frozen=True)
class TimelineRow:
    """A timeline entry as the page shows it: with the back-office page of the object it is
    about, when the user may open it."""

    entry: TimelineEntry
    case_url: str = ""


@dataclass(frozen=True)
class SupportView:
    order: Order
    platform: str
    address: list[str]
    timeline: list[TimelineRow]
    actions: list[tuple[str, str, str]]
    time_zone: str


def _timeline_rows(request: HttpRequest, entries: list[TimelineEntry]) -> list[TimelineRow]:
    """``entries`` with links to the objects they are about that the user may open: the
    object's admin grants the user the view and has the object among the user's rows (an
    escalated case is no longer merchant staff's). One query per kind of object."""
    wanted: dict[str, set[int]] = {}
    for entry in entries:
        if entry.case is not None:
            wanted.setdefault(entry.case[0], set()).add(entry.case[1])
    openable: set[tuple[str, int]] = set()
    for label, pks in wanted.items():
        try:
            model_admin = admin.site.get_model_admin(apps.get_model(label))
        except NotRegistered:
            continue
        if not model_admin.has_view_permission(request):
            continue
        seen = model_admin.get_queryset(request).filter(pk__in=pks).values_list("pk", flat=True)
        openable.update((label, pk) for pk in seen)
    rows = []
    for entry in entries:
        url = ""
        if entry.case is not None and entry.case in openable:
            app_label, model_name = entry.case[0].split(".")
            url = reverse(f"admin:{app_label}_{model_name}_change", args=[entry.case[1]])
        rows.append(TimelineRow(entry=entry, case_url=url))
    return rows


# --- Disputes --------------------------------------------------------------------------------
# How staff may resolve an open case: (service, permission, label, the note is the rejection's
# required reason).
DISPUTE_ACTIONS: dict[str, tuple[Any, str, str, bool]] = {
    "refund": (
        dispute_services.dispute_refund,
        "orders.refund_dispute",
        "Refund without return",
        False,
    ),
    "refund_on_return": (
        dispute_services.dispute_refund_on_return,
        "orders.refund_dispute_on_return",
        "Refund on return",
        False,
    ),
    "reject": (dispute_services.dispute_reject, "orders.reject_dispute", "Reject", True),
}


def _dispute_actions(request: HttpRequest, dispute: Dispute | None) -> list[tuple[str, str]]:
    """The (url, label) of each way the user may resolve ``dispute`` now: none unless it is
    open, inside their merchant, and they hold that way's permission."""
    if (
        dispute is None
        or dispute.status != DisputeStatus.OPENED
        or not has_merchant_scope(request)
        or not disputes_visible(merchant_id=merchant_id_of(request)).filter(pk=dispute.pk).exists()
    ):
        return []
    return [
        (reverse("admin:orders_dispute_resolve", args=[dispute.pk, name]), label)
        for name, (_, permission, label, _) in DISPUTE_ACTIONS.items()
        if request.user.has_perm(permission)
    ]


class OrderLinkMixin:
    """The "Order" column and field of a row about one order (a case, a return)."""

    @admin.display(description="Order", ordering="order")
    def order_link(self, obj: Dispute | Return) -> str:
        url = reverse("admin:orders_order_change", args=[obj.order_id])
        return format_html(
            '<a href="{}">#{} ({})</a>', url, obj.order.confirmation_code, obj.order.product_name
        )


class DisputeResolveForm(forms.Form):
    note = forms.CharField(
        max_length=dispute_services.NOTE_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The buyer reads it. A rejection must say why.",
    )
    restock = forms.BooleanField(
        required=False,
        label="When the goods come back, put the unit back in stock (refund on return only)",
    )


@admin.register(Dispute)
class DisputeAdmin(OrderLinkMixin, ReadOnlyAdminMixin, MerchantScopedAdmin):
    """Cases opened by "Not me" after shipping: open ones first, soonest deadline first."""

    list_display = ("id", "order_link", "status", "opened_at", "deadline", "resolved_at")
    list_filter = ("status",)
    list_select_related = ("order",)
    superuser_list_display = ("merchant",)
    superuser_list_filter = ("merchant",)
    change_form_template = "admin/orders/dispute/change_form.html"
    change_list_template = "admin/orders/dispute/change_list.html"
    readonly_fields = (
        "order_link",
        "status",
        "opened_at",
        "deadline",
        "note",
        "resolved_at",
        "resolved_by_name",
        "escalated_at",
    )
    exclude = ("order", "merchant", "resolved_by")

    @admin.display(description="Resolved by")
    def resolved_by_name(self, obj: Dispute) -> str:
        # A name, not a link: logins are the operators' (their admin page is a 403 for staff).
        return obj.resolved_by.get_username() if obj.resolved_by else self.get_empty_value_display()

    def get_queryset(self, request: HttpRequest) -> QuerySet[Dispute]:
        # Escalated cases are the operators' (``disputes_visible``); open ones come first.
        return (
            disputes_visible(merchant_id=merchant_id_of(request))
            .select_related("order")
            .order_by(Case(When(status=DisputeStatus.OPENED, then=0), default=1), "deadline", "-id")
        )

    def get_urls(self) -> list[URLPattern]:
        resolve = path(
            "<path:object_id>/resolve/<slug:how>/",
            self.admin_site.admin_view(self.resolve_view),
            name="orders_dispute_resolve",
        )
        return [resolve, *super().get_urls()]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        count, cases = disputes_open(merchant_id=merchant_id_of(request))
        context = {**(extra_context or {}), "open_disputes": cases, "open_disputes_count": count}
        return super().changelist_view(request, extra_context=context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        dispute = self.get_object(request, object_id)
        context = {**(extra_context or {}), "dispute_actions": _dispute_actions(request, dispute)}
        return super().change_view(request, object_id, form_url, extra_context=context)

    def resolve_view(self, request: HttpRequest, object_id: str, how: str) -> HttpResponse:
        """GET: the resolution's form (a note; a rejection's reason); POST: resolve the case
        through its service; a refund runs at once after the commit. A refusal is shown on the
        form (409)."""
        if how not in DISPUTE_ACTIONS:
            raise Http404("No such resolution.")
        service, permission, label, reason_required = DISPUTE_ACTIONS[how]
        if not has_merchant_scope(request) or not request.user.has_perm(permission):
            raise PermissionDenied
        dispute = self.get_object(request, object_id)  # 404 for another merchant's
        form = DisputeResolveForm(request.POST or None)
        status = 200
        if request.method == "POST" and form.is_valid():
            note = form.cleaned_data["note"]
            try:
                resolved = service(
                    dispute_id=dispute.pk,
                    now=timezone.now(),
                    actor_label="admin",
                    actor_id=request.user.pk,
                    **({"reason": note} if reason_required else {"note": note}),
                    **(
                        {"restock": form.cleaned_data["restock"]}
                        if how == "refund_on_return"
                        else {}
                    ),
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
                status = 409
            else:
                if resolved.refund is not None:
                    refund_run_on_commit(refund_id=resolved.refund.pk, now=timezone.now())
                self.message_user(
                    request,
                    f"The case about order #{dispute.order.confirmation_code}: "
                    f"{resolved.dispute.get_status_display().lower()}.",
                )
                return HttpResponseRedirect(
                    reverse("admin:orders_dispute_change", args=[dispute.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": dispute,
            "title": f"{label}: order #{dispute.order.confirmation_code}",
            "form": form,
            "label": label,
            "open": dispute.status == DisputeStatus.OPENED,
        }
        return TemplateResponse(
            request, "admin/orders/dispute/resolve.html", context, status=status
        )


# --- Returns ---------------------------------------------------------------------------------
# The staff steps of a return: (permission, label, from which statuses).
RETURN_ACTIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "approve": ("orders.approve_return", "Approve", (ReturnStatus.REQUESTED,)),
    "refuse": ("orders.approve_return", "Refuse", (ReturnStatus.REQUESTED,)),
    "receive": (
        "orders.receive_return",
        "Mark received (refunds)",
        (ReturnStatus.APPROVED, ReturnStatus.LABEL_BOUGHT),
    ),
}


def _return_actions(request: HttpRequest, returned: Return) -> list[tuple[str, str]]:
    """The (url, label) of each step the user may take on ``returned`` now."""
    if not has_merchant_scope(request):
        return []
    merchant_id = merchant_id_of(request)
    if merchant_id is not None and returned.merchant_id != merchant_id:
        return []
    return [
        (reverse("admin:orders_return_act", args=[returned.pk, name]), f"Return: {label}")
        for name, (permission, label, sources) in RETURN_ACTIONS.items()
        if returned.status in sources and request.user.has_perm(permission)
    ]


class ReturnActForm(forms.Form):
    note = forms.CharField(
        max_length=return_services.TEXT_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The buyer reads it. A refusal must say why.",
    )
    restock = forms.BooleanField(
        required=False,
        label="When the goods come back, put the unit back in stock (approving only)",
    )


@admin.register(Return)
class ReturnAdmin(OrderLinkMixin, ReadOnlyAdminMixin, MerchantScopedAdmin):
    """Goods coming back: requested ones first, then the newest."""

    list_display = (
        "id",
        "order_link",
        "status",
        "requested_at",
        "reason",
        "carrier",
        "tracking_number",
    )
    list_filter = ("status",)
    list_select_related = ("order",)
    superuser_list_display = ("merchant",)
    superuser_list_filter = ("merchant",)
    change_form_template = "admin/orders/return/change_form.html"
    readonly_fields = (
        "order_link",
        "status",
        "reason",
        "requested_at",
        "note",
        "decided_at",
        "decided_by_name",
        "restock",
        "carrier",
        "tracking_number",
        "label_url",
        "label_bought_at",
        "received_at",
        "refund_text",
        "dispute_link",
    )
    exclude = (
        "order",
        "merchant",
        "carrier_reference",
        "label_claimed_until",
        "decided_by",
        "refund",
        "dispute",
    )

    @admin.display(description="Decided by")
    def decided_by_name(self, obj: Return) -> str:
        # A name, not a link: logins are the operators' (their admin page is a 403 for staff).
        return obj.decided_by.get_username() if obj.decided_by else self.get_empty_value_display()

    @admin.display(description="Refund")
    def refund_text(self, obj: Return) -> str:
        refund = obj.refund
        if refund is None:
            return self.get_empty_value_display()
        return f"Refund {refund.number}: {refund.amount} {obj.order.currency} ({refund.status})"

    @admin.display(description="Case")
    def dispute_link(self, obj: Return) -> str:
        if obj.dispute_id is None:
            return self.get_empty_value_display()
        url = reverse("admin:orders_dispute_change", args=[obj.dispute_id])
        return format_html(
            '<a href="{}">Case about order #{}</a>', url, obj.order.confirmation_code
        )

    @admin.display(description="Case")
    def dispute_text(self, obj: Return) -> str:
        return f"Case about order #{obj.order.confirmation_code} (with the operator)"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        # An escalated case is the operators' alone: staff read of it, without a link to it.
        if obj is not None and obj.dispute_id is not None:
            visible = disputes_visible(merchant_id=merchant_id_of(request))
            if not visible.filter(pk=obj.dispute_id).exists():
                fields = tuple("dispute_text" if f == "dispute_link" else f for f in fields)
        return fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Return]:
        return (
            super()
            .get_queryset(request)
            .select_related("order")
            .order_by(Case(When(status=ReturnStatus.REQUESTED, then=0), default=1), "-id")
        )

    def get_urls(self) -> list[URLPattern]:
        act = path(
            "<path:object_id>/act/<slug:step>/",
            self.admin_site.admin_view(self.act_view),
            name="orders_return_act",
        )
        return [act, *super().get_urls()]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        returned = self.get_object(request, object_id)
        context = {**(extra_context or {}), "return_actions": _return_actions(request, returned)}
        return super().change_view(request, object_id, form_url, extra_context=context)

    def act_view(self, request: HttpRequest, object_id: str, step: str) -> HttpResponse:
        """GET: the step's form (a note; approving: restock); POST: take the step through its
        service (receiving runs the refund at once after the commit). A refusal is shown on the
        form (409)."""
        if step not in RETURN_ACTIONS:
            raise Http404("No such step.")
        permission, label, sources = RETURN_ACTIONS[step]
        if not has_merchant_scope(request) or not request.user.has_perm(permission):
            raise PermissionDenied
        returned = self.get_object(request, object_id)  # 404 for another merchant's
        form = ReturnActForm(request.POST or None)
        status = 200
        if request.method == "POST" and form.is_valid():
            now = timezone.now()
            note = form.cleaned_data["note"]
            actor_id = request.user.pk
            try:
                if step == "approve":
                    return_services.return_approve(
                        return_id=returned.pk,
                        note=note,
                        restock=form.cleaned_data["restock"],
                        now=now,
                        actor_label="admin",
                        actor_id=actor_id,
                    )
                elif step == "refuse":
                    return_services.return_refuse(
                        return_id=returned.pk,
                        note=note,
                        now=now,
                        actor_label="admin",
                        actor_id=actor_id,
                    )
                else:
                    refund = return_services.return_receive(
                        return_id=returned.pk, now=now, actor_label="admin", actor_id=actor_id
                    )
                    if refund is not None:
                        refund_run_on_commit(refund_id=refund.pk, now=now)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
                status = 409
            else:
                returned.refresh_from_db()
                self.message_user(
                    request,
                    f"The return of order #{returned.order.confirmation_code}: "
                    f"{returned.get_status_display().lower()}.",
                )
                return HttpResponseRedirect(
                    reverse("admin:orders_return_change", args=[returned.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": returned,
            "title": f"{label}: return of order #{returned.order.confirmation_code}",
            "form": form,
            "label": label,
            "possible": returned.status in sources,
        }
        return TemplateResponse(request, "admin/orders/return/act.html", context, status=status)


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(ReadOnlyAdminMixin, MerchantScopedAdmin):
    """Waitlist entries of the merchant's campaigns (issue 13), read only: who waits, in what
    order, and what became of them. The length per campaign is a column of the campaigns'
    list (``catalog.admin.CampaignAdmin``)."""

    list_display = ("id", "campaign", "author", "status", "posted_at", "order", "ended_at")
    list_filter = ("status",)
    list_select_related = ("campaign", "post", "order")
    superuser_list_display = ("merchant",)
    superuser_list_filter = ("merchant",)
    search_fields = ("campaign__hashtag",)
    ordering = ("campaign_id", "posted_at", "post_id")
    readonly_fields = (
        "campaign",
        "post_link",
        "posted_at",
        "status",
        "order",
        "ended_at",
        "reason",
    )
    fields = readonly_fields
    export_fields = ("id", "campaign_id", "status", "posted_at", "order_id", "ended_at", "reason")

    @admin.display(description="Buyer's handle")
    def author(self, obj: WaitlistEntry) -> str:
        return f"@{obj.post.author_handle}"

    @admin.display(description="Post")
    def post_link(self, obj: WaitlistEntry) -> str:
        # On its platform: the inbox is the operators' (its admin page would be a 403).
        post = obj.post
        url = post_url(
            platform=post.platform, post_id=post.post_id, author_handle=post.author_handle
        )
        label = (
            f"@{post.author_handle} on {dict(Platform.choices).get(post.platform, post.platform)}"
        )
        if not url:
            return label
        return format_html('<a href="{}" rel="noopener noreferrer">{}</a>', url, label)


# The webhooks' back office (endpoints, deliveries): registered on import.
import orders.webhook_admin  # noqa: E402, F401
from orders import alert_admin  # noqa: E402, F401  (merchant alerts: settings and list)
