"""Merchant alerts in the back office (issue 14): each merchant's settings page, and the list of
alerts raised. Registered from ``orders.admin``.

Staff see and edit only their merchant's settings (one row; the list takes them straight to it,
or to the form that creates it), and the merchant is theirs, not a choice. Operators see every
merchant's. Writes go through ``orders.services.alerts.alert_settings_save``. Alerts are
read-only: the sweep and ``alert_raise`` write them.
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from core.admin import MerchantScopedAdmin, ReadOnlyAdminMixin
from core.scoping import merchant_id_of
from orders.models import Alert, AlertSettings
from orders.services.alerts import KINDS, alert_settings_save, recipients_parse


class AlertSettingsForm(forms.ModelForm):
    kinds_on = forms.MultipleChoiceField(
        choices=list(KINDS.items()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Alerts on",
        help_text="Each alert is e-mailed once per cause (a sold-out campaign once, low stock "
        "once each time the stock falls to its campaign's threshold). Low-stock thresholds are "
        "set on each campaign.",
    )

    class Meta:
        model = AlertSettings
        fields = ("merchant", "kinds_on", "recipients", "waitlist_threshold", "digest_time")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        off = set(self.instance.kinds_off or [])
        self.fields["kinds_on"].initial = [kind for kind in KINDS if kind not in off]

    def clean_recipients(self) -> str:
        try:
            return "\n".join(recipients_parse(self.cleaned_data.get("recipients") or ""))
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None


class AlertSettingsAdmin(MerchantScopedAdmin):
    form = AlertSettingsForm
    list_display = ("__str__", "waitlist_threshold", "digest_time")
    superuser_list_display = ("merchant",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_fields(request, obj))
        # Staff set their own merchant's settings: the merchant is not theirs to choose.
        return fields if request.user.is_superuser else [f for f in fields if f != "merchant"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        merchant_id = merchant_id_of(request)
        if merchant_id is not None and self._settings_exist(request, merchant_id):
            return False  # one row per merchant: theirs exists
        return super().has_add_permission(request)

    @staticmethod
    def _settings_exist(request: HttpRequest, merchant_id: int) -> bool:
        # Asked by the app list and the sidebar of every admin page: once per request.
        known: bool | None = getattr(request, "_hashcart_alert_settings_exist", None)
        if known is None:
            known = AlertSettings.objects.filter(merchant_id=merchant_id).exists()
            request._hashcart_alert_settings_exist = known  # type: ignore[attr-defined]
        return known

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        """Staff have one settings page: the list takes them to it (or to creating it)."""
        merchant_id = merchant_id_of(request)
        if merchant_id is None:
            return super().changelist_view(request, extra_context)
        own = self.get_queryset(request).values_list("pk", flat=True).first()
        if own is not None and self.has_view_or_change_permission(request):
            return HttpResponseRedirect(reverse("admin:orders_alertsettings_change", args=[own]))
        if own is None and self.has_add_permission(request):
            return HttpResponseRedirect(reverse("admin:orders_alertsettings_add"))
        return super().changelist_view(request, extra_context)

    def save_model(self, request: HttpRequest, obj: AlertSettings, form: Any, change: bool) -> None:
        merchant_id = merchant_id_of(request)
        if merchant_id is not None:
            obj.merchant_id = merchant_id
        alert_settings_save(alert_settings=obj, kinds_on=form.cleaned_data.get("kinds_on", []))


class AlertAdmin(ReadOnlyAdminMixin, MerchantScopedAdmin):
    list_display = ("raised_at", "kind_label", "subject", "emails", "cleared_at")
    superuser_list_display = ("merchant",)
    list_filter = ("kind",)
    superuser_list_filter = ("merchant",)
    search_fields = ("subject",)
    fields = ("raised_at", "kind", "cause", "subject", "body", "emails", "cleared_at")
    ordering = ("-raised_at", "-id")
    export_fields = ("id", "merchant_id", "kind", "cause", "subject", "raised_at", "emails")

    @admin.display(description="Alert", ordering="kind")
    def kind_label(self, obj: Alert) -> str:
        return KINDS.get(obj.kind, obj.kind)


admin.site.register(AlertSettings, AlertSettingsAdmin)
admin.site.register(Alert, AlertAdmin)
