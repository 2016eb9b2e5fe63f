"""Back office for merchants, products and campaigns, scoped to the staff user's merchant."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from catalog.models import Campaign, Merchant, Product
from catalog.product_import_admin import ProductImportExportMixin
from catalog.selectors import campaign_networks, campaigns_with_waitlist_length
from catalog.services import (
    CampaignTerms,
    campaign_clean_hashtag,
    campaign_save,
    campaign_set_paused,
    campaign_validate,
)
from catalog.validators import time_zone_choices
from catalog.variant_admin import (
    CampaignVariantStockInline,
    ProductOptionInline,
    ProductVariantInline,
    variant_formset_save,
)
from core.admin import CappedCountPaginator, MerchantScopedAdmin
from core.scoping import merchant_id_of
from social.models import Platform


@admin.register(Merchant)
class MerchantAdmin(MerchantScopedAdmin):
    merchant_lookup = "pk"
    list_display = ("name", "slug", "time_zone", "cutoff_time")
    search_fields = ("name",)
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = (
        (None, {"fields": ("name", "slug", "time_zone", "cutoff_time")}),
        (
            "On receipts",
            {
                "fields": (
                    "legal_name",
                    "address_line1",
                    "address_line2",
                    ("city", "state", "postal_code"),
                    "country",
                    "tax_id",
                )
            },
        ),
    )
    export_fields = ("id", "name", "slug", "time_zone", "cutoff_time", "legal_name", "tax_id")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Merchants are onboarded by operators, not by other merchants' staff.
        return request.user.is_superuser

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "time_zone":
            # A list to pick from, built from the tz database when the form is made.
            kwargs["widget"] = forms.Select(choices=time_zone_choices())
        return super().formfield_for_dbfield(db_field, request, **kwargs)


@admin.register(Product)
class ProductAdmin(ProductImportExportMixin, MerchantScopedAdmin):
    list_display = ("name", "sku")
    superuser_list_display = ("merchant",)
    superuser_list_filter = ("merchant",)
    search_fields = ("name", "sku")
    list_select_related = ("merchant",)
    export_fields = ("id", "merchant_id", "name", "sku", "description")
    inlines = (ProductOptionInline, ProductVariantInline)

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        # Options and variants once the product exists (a variant is checked against its
        # product's saved options).
        return self.inlines if obj is not None else ()

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        variant_formset_save(request, formset)

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        # Staff create products for their own merchant only: the field is theirs implicitly.
        return () if request.user.is_superuser else ("merchant",)

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        if not request.user.is_superuser:
            obj.merchant_id = merchant_id_of(request) or 0
        super().save_model(request, obj, form, change)


class CampaignForm(forms.ModelForm):
    """Checks a campaign with ``campaign_validate``, the same rules every other writer meets.

    ``actor`` is the signed-in login (set by ``CampaignAdmin.get_form``): refusals are counted
    and logged for it."""

    actor: Any = None
    # The networks the campaign runs on (issue 13, item 7), with one stock pool: its first
    # network (``platform``) always, and those ticked here.
    platforms = forms.MultipleChoiceField(
        choices=Platform.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Networks",
        help_text="The campaign also runs, with the same hashtag and stock, on each network "
        "ticked; always on its first network above.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            networks = campaign_networks(campaign_ids=[self.instance.pk])
            self.fields["platforms"].initial = list(networks.get(self.instance.pk, ()))

    class Meta:
        model = Campaign
        fields = (
            "product",
            "platform",
            "platforms",
            "hashtag",
            "confirm_prefix",
            "price",
            "price_includes_tax",
            "currency",
            "stock_total",
            "low_stock_threshold",
            "per_buyer_limit",
            "starts_at",
            "ends_at",
            "paused",
        )

    def clean_hashtag(self) -> str:
        return campaign_clean_hashtag(self.cleaned_data["hashtag"])

    def networks(self) -> list[str]:
        """The networks chosen, the first network first."""
        return [self.cleaned_data["platform"], *self.cleaned_data.get("platforms", ())]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        needed = ("platform", "hashtag", "confirm_prefix", "starts_at", "ends_at")
        if all(cleaned.get(name) is not None for name in needed):
            product = cleaned.get("product")
            campaign_validate(
                terms=CampaignTerms(
                    **{name: cleaned[name] for name in needed},
                    merchant_id=product.merchant_id if product is not None else None,
                    other_platforms=tuple(cleaned.get("platforms", ())),
                ),
                now=timezone.now(),
                campaign_id=self.instance.pk,
                actor=self.actor,
            )
        return cleaned


@admin.register(Campaign)
class CampaignAdmin(MerchantScopedAdmin):
    form = CampaignForm
    # The dashboard link beside the campaign's name: the last column of a list is the first to
    # need a sideways scroll on a narrow screen.
    list_display = (
        "__str__",
        "dashboard",
        "product",
        "price",
        "stock",
        "starts_at",
        "ends_at",
        "state",
        "waitlist",
    )
    superuser_list_display = ("merchant",)
    list_filter = ("platform", "paused", "product")
    superuser_list_filter = ("merchant",)
    search_fields = ("hashtag",)
    list_select_related = ("product", "merchant")
    readonly_fields = ("stock_reserved",)
    inlines = (CampaignVariantStockInline,)
    paginator = CappedCountPaginator
    show_full_result_count = False
    actions = ["export_csv", "pause", "resume"]
    export_fields = (
        "id",
        "merchant_id",
        "product_id",
        "platform",
        "hashtag",
        "price",
        "price_includes_tax",
        "currency",
        "stock_total",
        "stock_reserved",
        "per_buyer_limit",
        "starts_at",
        "ends_at",
        "paused",
    )

    @admin.display(description="Stock (held / total)")
    def stock(self, obj: Campaign) -> str:
        return f"{obj.stock_reserved} / {obj.stock_total}"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        return campaigns_with_waitlist_length(super().get_queryset(request))

    @admin.display(description="Waitlist", ordering="waitlist_length")
    def waitlist(self, obj: Campaign) -> int:
        """Buyers waiting for a unit: the demand the stock could not serve."""
        return int(getattr(obj, "waitlist_length", 0))

    @admin.display(description="Dashboard")
    def dashboard(self, obj: Campaign) -> str:
        url = reverse("admin:orders_campaign_dashboard", args=[obj.pk])
        return format_html('<a href="{}">Chart and funnel</a>', url)

    @admin.display(description="State")
    def state(self, obj: Campaign) -> str:
        now = timezone.now()
        if obj.paused:
            return "paused"
        if now < obj.starts_at:
            return "scheduled"
        if now >= obj.ends_at:
            return "ended"
        return "sold out" if obj.stock_available <= 0 else "live"

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def save_model(self, request: HttpRequest, obj: Campaign, form: Any, change: bool) -> None:
        campaign_save(
            campaign=obj, now=timezone.now(), actor=request.user, platforms=form.networks()
        )

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        # Variant stock once the campaign exists (its product's variants to choose from).
        return self.inlines if obj is not None else ()

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # Variant stocks: their sum becomes the campaign's stock (``variant_stock_save``).
        variant_formset_save(request, formset)

    @admin.action(description="Pause selected campaigns", permissions=["change"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        changed = campaign_set_paused(
            campaign_ids=list(queryset.values_list("pk", flat=True)), paused=True
        )
        self.message_user(request, f"Paused {changed} campaign(s).", messages.SUCCESS)

    @admin.action(description="Resume selected campaigns", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        changed = campaign_set_paused(
            campaign_ids=list(queryset.values_list("pk", flat=True)), paused=False
        )
        self.message_user(request, f"Resumed {changed} campaign(s).", messages.SUCCESS)
