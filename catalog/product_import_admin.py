"""CSV import and export on the products page (issue 14, item 6), with django-import-export:
upload, a preview listing every row's errors (nothing written), then
"Confirm import", which imports the whole file or, should anything fail meanwhile, nothing.

Scoped like the rest of the back office: staff import into and export from their own merchant
only (``catalog.resources.CatalogResource``), and importing needs the rights to add and change
both products and campaigns, what an import writes.
"""

from typing import Any

from django.contrib import messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from import_export.admin import ImportExportMixin
from import_export.formats.base_formats import CSV

from catalog.import_format import COLUMNS
from catalog.models import Product
from catalog.resources import CatalogResource
from core.scoping import has_merchant_scope, merchant_id_of


class ProductImportExportMixin(ImportExportMixin):
    """For ``ProductAdmin``: "Import" and "Export" buttons over the product list."""

    resource_classes = [CatalogResource]
    import_template_name = "admin/catalog/product/import.html"
    # One format, both ways: what is exported imports back unchanged.
    import_formats = [CSV]
    export_formats = [CSV]
    # The export is always the whole format (no column picking), of the filtered list.
    skip_export_form = True
    # One log line per product (``generate_log_entries``), not one per row.
    skip_admin_log = True

    def get_resource_kwargs(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return {"merchant_id": merchant_id_of(request), "actor": request.user}

    def get_import_data_kwargs(self, **kwargs: Any) -> Any:
        kwargs = super().get_import_data_kwargs(**kwargs)
        # A row refused at confirmation (say, a hashtag taken since the preview) undoes them all.
        kwargs["rollback_on_validation_errors"] = True
        kwargs.pop("request", None)
        return kwargs

    def has_import_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return has_merchant_scope(request) and all(
            user.has_perm(f"catalog.{action}_{model}")
            for action in ("add", "change")
            for model in ("product", "campaign")
        )

    def has_export_permission(self, request: HttpRequest) -> bool:
        return bool(self.has_view_permission(request))

    def get_import_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {"columns": COLUMNS}

    def process_result(self, result: Any, request: HttpRequest) -> HttpResponse:
        if result.has_errors() or result.has_validation_errors():
            # Rolled back: show why on the import page, with the form to try again.
            messages.error(request, "Nothing was imported: the file has errors (listed below).")
            context = self.admin_site.each_context(request) | {
                "title": "Import",
                "form": self.get_import_form_class(request)(
                    self.get_import_formats(), self.get_import_resource_classes(request)
                ),
                "opts": self.model._meta,
                "result": result,
                "columns": COLUMNS,
                "import_error_display": self.import_error_display,
            }
            return TemplateResponse(request, [self.import_template_name], context)
        self._log_products(result, request)
        return super().process_result(result, request)

    def _log_products(self, result: Any, request: HttpRequest) -> None:
        changed = {row.object_id for row in result if row.import_type in ("new", "update")}
        if changed and request.user.pk is not None:
            LogEntry.objects.log_actions(
                request.user.pk,
                Product.objects.filter(pk__in=changed),
                CHANGE,
                change_message="Imported from CSV.",
            )
