"""Admin building blocks with no domain knowledge: operator-only and read-only admins, and
merchant scoping for the back office.

Merchant scoping: staff of a merchant see and change only its rows. Every admin of
merchant-owned data derives from ``MerchantScopedAdmin``. The scope is applied at the one place
Django's admin reads rows from (``get_queryset``), so change lists, change, delete and history
views, actions and exports, search and autocomplete all see the same rows. Foreign-key choices
and list filters are scoped too, since Django builds those from the related model's full table.
An object outside the scope is a 404, not a redirect that tells it exists. Which merchant a
user sees is ``core.scoping``'s rule, the same as the API's.

Superusers (operators) see everything. A staff user with no merchant sees nothing.
"""

import csv
from collections.abc import Sequence
from typing import Any, ClassVar, cast

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.filters import RelatedFieldListFilter
from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.forms import ModelChoiceField
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.functional import cached_property

from core.exports import csv_safe
from core.scoping import (
    has_merchant_scope,
    merchant_id_of,
    merchant_lookup_of,
    scope_to_merchant,
)


class OperatorOnlyAdmin(admin.ModelAdmin):
    """Visible to superusers (operators) only: cross-merchant or personal data."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


class ReadOnlyAdminMixin:
    """Rows are shown, never added, changed or deleted here: services own those writes."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CappedCountPaginator(Paginator):
    """Counts at most ``limit`` rows, so a page of a million-row table costs no full count.

    ``capped`` says whether the count stopped at the limit; the pagination template then shows
    "N+" and the pages up to the limit. Narrow the list with filters or search to go further.
    """

    @property
    def limit(self) -> int:
        return int(settings.HASHCART["ADMIN_COUNT_LIMIT"])

    @cached_property
    def count(self) -> int:
        rows = cast(QuerySet[Any], self.object_list)
        return int(rows[: self.limit].count())

    @property
    def capped(self) -> bool:
        return self.count >= self.limit


class ScopedRelatedFieldListFilter(RelatedFieldListFilter):
    """A related-object list filter offering only the user's merchant's objects."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        related = field.related_model
        lookup = merchant_lookup_of(related)
        merchant_id = merchant_id_of(request)
        if lookup is None or merchant_id is None:
            return super().field_choices(field, request, model_admin)
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(
            include_blank=False, ordering=ordering, limit_choices_to={lookup: merchant_id}
        )


class MerchantScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose rows, objects, choices, filters and exports stay inside one merchant.

    ``merchant_lookup`` is the path from the model to its merchant id (``"merchant"`` or
    ``"pk"`` for the Merchant itself). ``export_fields`` are the columns of the CSV export.
    """

    merchant_lookup: ClassVar[str] = "merchant"
    export_fields: ClassVar[Sequence[str]] = ()
    # Only operators see which merchant a row belongs to and can filter by it.
    superuser_list_display: ClassVar[Sequence[str]] = ()
    superuser_list_filter: ClassVar[Sequence[str]] = ()
    actions = ["export_csv"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return scope_to_merchant(
            super().get_queryset(request), self.merchant_lookup, merchant_id_of(request)
        )

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with this id.")
        return obj

    # Staff belonging to no merchant get nothing, whatever their model permissions say.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return has_merchant_scope(request) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_merchant_scope(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return has_merchant_scope(request) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_merchant_scope(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_merchant_scope(request) and super().has_delete_permission(request, obj)

    def get_list_display(self, request: HttpRequest) -> Any:
        base = tuple(super().get_list_display(request))
        return base + tuple(self.superuser_list_display) if request.user.is_superuser else base

    def get_list_filter(self, request: HttpRequest) -> Any:
        scoped = [
            (name, ScopedRelatedFieldListFilter)
            if isinstance(name, str) and self._is_relation(name)
            else name
            for name in super().get_list_filter(request)
        ]
        if request.user.is_superuser:
            scoped.extend(self.superuser_list_filter)
        return scoped

    def _is_relation(self, name: str) -> bool:
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            return False
        return bool(field.is_relation)

    def formfield_for_foreignkey(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        lookup = merchant_lookup_of(db_field.related_model)
        if formfield is not None and formfield.queryset is not None and lookup is not None:
            formfield.queryset = scope_to_merchant(
                formfield.queryset, lookup, merchant_id_of(request)
            )
        return formfield

    @admin.action(description="Export selected rows as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse:
        """The selected rows (already inside the user's scope) as CSV, streamed in chunks."""
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="{self.opts.model_name}-export.csv"'
        )
        fields = self.export_fields or [f.attname for f in self.opts.concrete_fields]
        writer = csv.writer(response)
        writer.writerow(fields)
        for row in queryset.order_by("pk").values_list(*fields).iterator(chunk_size=2000):
            writer.writerow(csv_safe(value) for value in row)
        return response


class LargeMerchantTableAdmin(MerchantScopedAdmin):
    """For tables that grow to millions of rows (orders, shipments): newest first by primary key
    (indexed with the merchant), a capped count instead of a full one, and only the merchant
    joined, which operators see as a column and a filter."""

    superuser_list_display = ("merchant",)
    superuser_list_filter = ("merchant",)
    list_select_related = ("merchant",)
    ordering = ("-id",)
    list_per_page = 50
    paginator = CappedCountPaginator
    show_full_result_count = False
