"""The back office of outbound webhooks (issue 14): a merchant's endpoints (add, change, rotate
the secret) and its deliveries with their attempts and a "Send again" button. Scoped to the
staff's merchant like every merchant admin (``core.admin.MerchantScopedAdmin``); writes go
through ``orders.services.webhooks``. Registered from ``orders.admin``."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from core.admin import LargeMerchantTableAdmin, MerchantScopedAdmin, ReadOnlyAdminMixin
from core.exceptions import ApplicationError
from core.scoping import merchant_id_of
from orders.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from orders.models.webhooks import SUBSCRIPTION_CHOICES
from orders.services.webhooks import (
    webhook_delivery_resend,
    webhook_endpoint_create,
    webhook_endpoint_secret,
    webhook_endpoint_secret_rotate,
    webhook_endpoint_update,
    webhook_url_validate,
)


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(
        label="URL",
        max_length=500,
        assume_scheme="https",
        # The admin's width for URLs (a plain input is too narrow to read one whole).
        widget=forms.URLInput(attrs={"class": "vURLField"}),
    )
    events = forms.MultipleChoiceField(
        choices=SUBSCRIPTION_CHOICES, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "description", "events", "enabled")

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            webhook_url_validate(url)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["url"]) from exc
        return str(url)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(MerchantScopedAdmin):
    form = WebhookEndpointForm
    list_display = ("url", "subscribed_to", "enabled", "failing_since", "disabled_at")
    list_filter = ("enabled",)
    superuser_list_display = ("merchant",)
    change_form_template = "admin/orders/webhookendpoint/change_form.html"
    readonly_fields = (
        "signing_secret",
        "deliveries_link",
        "previous_secret_expires_at",
        "failing_since",
        "disabled_at",
        "disabled_reason",
    )
    # The CSV export leaves the secret out.
    export_fields = ("id", "url", "description", "events", "enabled", "created_at")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ["url", "description", "events", "enabled"]
        if request.user.is_superuser and obj is None:
            fields.insert(0, "merchant")
        return fields + (list(self.readonly_fields) if obj is not None else [])

    @admin.display(description="Events")
    def subscribed_to(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.events)

    @admin.display(description="Deliveries")
    def deliveries_link(self, obj: WebhookEndpoint) -> str:
        url = reverse("admin:orders_webhookdelivery_changelist")
        return format_html('<a href="{}?endpoint__id__exact={}">Its deliveries</a>', url, obj.pk)

    @admin.display(description="Signing secret")
    def signing_secret(self, obj: WebhookEndpoint) -> str:
        try:
            secret = webhook_endpoint_secret(endpoint=obj)
        except ValueError:
            return "It cannot be read with the configured keys: ask the operator."
        return format_html(
            "<code>{}</code><br>Verify each delivery with it (Standard Webhooks: "
            "<code>Webhook(secret).verify(body, headers)</code>).",
            secret,
        )

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        data = form.cleaned_data
        if change:
            # As stored: the form has already copied its values onto ``obj``, which would hide
            # a change of ``enabled`` from the service (and so its holding or sending).
            stored = WebhookEndpoint.objects.get(pk=obj.pk)
            was_disabled = not stored.enabled
            webhook_endpoint_update(
                endpoint=stored,
                now=timezone.now(),
                url=data["url"],
                events=data["events"],
                description=data["description"],
                enabled=data["enabled"],
            )
            if was_disabled and data["enabled"]:
                self.message_user(
                    request,
                    "Enabled: the deliveries held while it was disabled are being sent now.",
                )
            return
        merchant_id = merchant_id_of(request)
        if merchant_id is None:
            merchant_id = data["merchant"].pk
        created = webhook_endpoint_create(
            merchant_id=merchant_id,
            url=data["url"],
            events=data["events"],
            description=data["description"],
        )
        obj.pk = created.pk

    def get_urls(self) -> list[URLPattern]:
        rotate = path(
            "<path:object_id>/rotate-secret/",
            self.admin_site.admin_view(require_POST(self.rotate_view)),
            name="orders_webhookendpoint_rotate",
        )
        return [rotate, *super().get_urls()]

    def rotate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST only (CSRF-checked by the admin): a new secret; the old one signs too for the
        overlap."""
        endpoint = self.get_object(request, object_id)  # 404 for another merchant's
        if not self.has_change_permission(request, endpoint):
            raise PermissionDenied
        webhook_endpoint_secret_rotate(endpoint_id=endpoint.pk, now=timezone.now())
        self.message_user(
            request,
            "A new secret signs every delivery; the old one signs them too for the next "
            "24 hours, until your receiver uses the new one.",
        )
        return HttpResponseRedirect(
            reverse("admin:orders_webhookendpoint_change", args=[endpoint.pk])
        )


class WebhookAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = WebhookAttempt
    fields = ("attempted_at", "status_code", "error", "duration_ms")
    readonly_fields = fields
    ordering = ("-id",)
    extra = 0

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Part of the delivery's page: whoever may see the delivery sees its attempts.
        return request.user.has_perm("orders.view_webhookdelivery")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, LargeMerchantTableAdmin):
    """Deliveries grow with every event: newest first, a capped count (a large table)."""

    list_display = (
        "id",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status", "endpoint")
    search_fields = ("=event__event_id",)
    search_help_text = "The exact webhook-id (msg_…)."
    inlines = (WebhookAttemptInline,)
    change_form_template = "admin/orders/webhookdelivery/change_form.html"
    fields = (
        "webhook_id",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "next_attempt_at",
        "give_up_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "created_at",
        "payload",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        return super().get_queryset(request).select_related("event", "endpoint")

    @admin.display(description="Event")
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.event.type

    @admin.display(description="webhook-id")
    def webhook_id(self, obj: WebhookDelivery) -> str:
        return obj.event.event_id

    @admin.display(description="Payload")
    def payload(self, obj: WebhookDelivery) -> str:
        # A class, not a style attribute: the Content-Security-Policy refuses inline styles.
        return format_html('<pre class="webhook-payload">{}</pre>', obj.event.body)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = {
            **(extra_context or {}),
            "can_resend": request.user.has_perm("orders.resend_webhookdelivery"),
        }
        return super().change_view(request, object_id, form_url, extra_context=context)

    def get_urls(self) -> list[URLPattern]:
        resend = path(
            "<path:object_id>/send-again/",
            self.admin_site.admin_view(require_POST(self.resend_view)),
            name="orders_webhookdelivery_resend",
        )
        return [resend, *super().get_urls()]

    def resend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST only (CSRF-checked by the admin): queue the delivery again, same webhook-id."""
        if not request.user.has_perm("orders.resend_webhookdelivery"):
            raise PermissionDenied
        delivery = self.get_object(request, object_id)  # 404 for another merchant's
        try:
            webhook_delivery_resend(delivery_id=delivery.pk, now=timezone.now())
        except ApplicationError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
        else:
            self.message_user(request, "Queued: it is sent again within seconds.")
        return HttpResponseRedirect(
            reverse("admin:orders_webhookdelivery_change", args=[delivery.pk])
        )
