"""Back-office inlines for products' options and variants and campaigns' variant stock (issue
13). Rows belong to a product or campaign the staff user already sees (its admin is
merchant-scoped), and whoever may change that product or campaign may change them: no extra
permissions to grant. Every write goes through ``catalog.variant_services``, whose checks run
in the inline forms' ``clean`` so that a refusal shows next to its row."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import ProtectedError, QuerySet
from django.http import HttpRequest

from catalog.models import CampaignVariantStock, ProductOption, ProductVariant
from catalog.variant_selectors import variant_stocks_with_waitlist_length
from catalog.variant_services import (
    option_delete,
    option_validate,
    variant_save,
    variant_stock_delete,
    variant_stock_save,
    variant_stock_validate,
    variant_validate,
)
from core.scoping import merchant_id_of


def _applied(form: forms.ModelForm, cleaned: dict[str, Any]) -> Any:
    """The form's instance with the cleaned values on it, for the services' checks (Django
    copies them only after ``clean``)."""
    for name in form._meta.fields or ():
        if name in cleaned:
            setattr(form.instance, name, cleaned[name])
    return form.instance


class _FollowsParent:
    """Inline permissions: those of changing the parent (``parent_permission``)."""

    parent_permission = ""

    def _may(self, request: HttpRequest) -> bool:
        return request.user.has_perm(self.parent_permission)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request)


class OptionForm(forms.ModelForm):
    class Meta:
        model = ProductOption
        fields = ("position", "name")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.product_id is not None and not self.errors:
            option_validate(_applied(self, cleaned))
        return cleaned


class VariantForm(forms.ModelForm):
    class Meta:
        model = ProductVariant
        fields = ("sku", "option1", "option2", "option3")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.product_id is not None and not self.errors:
            variant_validate(_applied(self, cleaned))
        return cleaned


class ProductOptionInline(_FollowsParent, admin.TabularInline):
    model = ProductOption
    form = OptionForm
    parent_permission = "catalog.change_product"
    extra = 0
    max_num = 3


class ProductVariantInline(_FollowsParent, admin.TabularInline):
    """Save the product's options first: a variant gives one value per saved option."""

    model = ProductVariant
    form = VariantForm
    parent_permission = "catalog.change_product"
    extra = 0


class VariantStockForm(forms.ModelForm):
    class Meta:
        model = CampaignVariantStock
        fields = ("variant", "stock_total")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.campaign_id is not None and not self.errors:
            variant_stock_validate(_applied(self, cleaned))
        return cleaned


class CampaignVariantStockInline(_FollowsParent, admin.TabularInline):
    """A stock per variant: the campaign's own stock becomes their sum when saved."""

    model = CampaignVariantStock
    form = VariantStockForm
    parent_permission = "catalog.change_campaign"
    readonly_fields = ("stock_reserved", "waiting")
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[CampaignVariantStock]:
        return variant_stocks_with_waitlist_length(super().get_queryset(request))

    @admin.display(description="Waitlist")
    def waiting(self, obj: CampaignVariantStock) -> int:
        """Buyers waiting for this variant: the demand its stock could not serve."""
        return int(getattr(obj, "waitlist_length", 0))

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "variant":
            variants: QuerySet[ProductVariant] = ProductVariant.objects.select_related("product")
            merchant_id = merchant_id_of(request)
            if merchant_id is not None:
                variants = variants.filter(product__merchant_id=merchant_id)
            kwargs["queryset"] = variants
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def variant_formset_save(request: HttpRequest, formset: Any) -> None:
    """Save a variant or variant-stock inline formset through the services (``save_formset``
    of the product and campaign admins)."""
    instances = formset.save(commit=False)
    for obj in formset.deleted_objects:
        try:
            if isinstance(obj, CampaignVariantStock):
                variant_stock_delete(stock=obj)
            elif isinstance(obj, ProductOption):
                option_delete(option=obj)
            else:
                obj.delete()
        except (ValidationError, ProtectedError):
            # Held by orders or campaigns, or an option of variants: kept.
            messages.warning(request, f"{obj} was kept: something still uses it.")
    for obj in instances:
        if isinstance(obj, CampaignVariantStock):
            variant_stock_save(stock=obj)
        elif isinstance(obj, ProductVariant):
            variant_save(variant=obj)
        else:
            obj.save()
    formset.save_m2m()
