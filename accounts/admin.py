"""People in the back office: operators only. Merchant staff never see cardholders' data."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import Card, Cardholder, Consent, PurchaseControls, SocialIdentity, User
from core.admin import OperatorOnlyAdmin, ReadOnlyAdminMixin


@admin.register(User)
class UserAdmin(OperatorOnlyAdmin, DjangoUserAdmin):
    fieldsets = (
        *DjangoUserAdmin.fieldsets,  # type: ignore[misc]
        ("Merchant", {"fields": ("merchant",)}),
    )
    list_display = ("username", "email", "merchant", "is_staff", "is_superuser")
    list_filter = ("is_staff", "is_superuser", "merchant")
    list_select_related = ("merchant",)


class IdentityInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = SocialIdentity
    fields = ("platform", "platform_user_id", "handle", "linked_at")
    readonly_fields = fields
    extra = 0


class CardInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Card
    fields = (
        "brand",
        "last4",
        "exp_month",
        "exp_year",
        "city",
        "state",
        "is_default",
        "removed_at",
    )
    readonly_fields = fields
    extra = 0


class ConsentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Consent
    fields = ("terms_version", "accepted_at", "withdrawn_at")
    readonly_fields = fields
    extra = 0


class ControlsInline(admin.StackedInline):
    model = PurchaseControls
    extra = 0
    can_delete = False


@admin.register(Cardholder)
class CardholderAdmin(OperatorOnlyAdmin):
    list_display = ("__str__", "created_at")
    search_fields = ("user__email", "identities__handle")
    list_select_related = ("user",)
    readonly_fields = ("user",)
    inlines = (IdentityInline, CardInline, ConsentInline, ControlsInline)
