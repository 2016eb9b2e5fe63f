"""The products CSV for django-import-export (issue 14, item 6): the admin's import (a preview,
then a confirmation) and export of ``catalog.imports``' format.

A thin adapter: the rows are read by ``catalog_row_parse``, checked as a whole file and written
by ``catalog.imports.CatalogImport``; this module resolves the merchant a row goes to and reports
rows as django-import-export shows them (new, update, skipped, or invalid with its errors by
column). Every row's problems are validation errors, so the preview lists them all; a file with
any of them writes nothing (the preview never writes: django-import-export's dry run rolls back
only the audit of refused hashtags).
"""

from datetime import datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import tablib
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone
from import_export import resources
from import_export.fields import Field
from import_export.instance_loaders import BaseInstanceLoader
from import_export.results import Result, RowResult

from catalog.export_rows import catalog_row_cells, catalog_rows_export
from catalog.import_format import (
    COLUMNS,
    REQUIRED_COLUMNS,
    CatalogRow,
    catalog_row_parse,
    cell_text,
)
from catalog.imports import Actor, CatalogImport
from catalog.models import Merchant, Product

_IMPORT_TYPES = {
    "new": RowResult.IMPORT_TYPE_NEW,
    "update": RowResult.IMPORT_TYPE_UPDATE,
    "skip": RowResult.IMPORT_TYPE_SKIP,
}


class CatalogResource(resources.Resource):
    """Products with their variants and campaigns, one row per variant and campaign.

    ``merchant_id`` is the importing user's scope (``core.scoping.merchant_id_of``): staff
    import into their merchant only (the ``merchant`` column may be blank or name it, nothing
    else), operators (``None``) name the merchant on every row. ``now`` is read once."""

    class Meta:
        use_transactions = True
        skip_unchanged = True
        report_skipped = True
        import_id_fields: tuple[str, ...] = ()
        instance_loader_class = BaseInstanceLoader
        using_db = "default"

    def __init__(
        self, *, merchant_id: int | None, actor: Actor, now: datetime | None = None
    ) -> None:
        super().__init__()
        self.fields = {name: Field(attribute=name, column_name=name) for name in COLUMNS}
        self.merchant_id = merchant_id
        self.actor = actor
        self.now = now or timezone.now()
        self._merchants: dict[str, Merchant | None] = {}

    @classmethod
    def get_display_name(cls) -> str:
        return "Products, variants and campaigns"

    def before_import(self, dataset: tablib.Dataset, **kwargs: Any) -> None:
        # "Product SKU" reads as product_sku: spreadsheets' users retype headers.
        headers = [cell_text(h).lower().replace(" ", "_") for h in dataset.headers or ()]
        missing = [name for name in REQUIRED_COLUMNS if name not in headers]
        unknown = [name for name in headers if name and name not in COLUMNS]
        if missing or unknown:
            problems = []
            if missing:
                problems.append(f"missing column(s) {', '.join(missing)}")
            if unknown:
                problems.append(f"unknown column(s) {', '.join(unknown)}")
            # Shown as the file's error (its text, not a list as a ValidationError prints).
            raise ValueError(
                f"The file's first row names the columns: {'; '.join(problems)}. "
                f"The columns are {', '.join(COLUMNS)}."
            )
        dataset.headers = headers

    def import_data_inner(
        self,
        dataset: tablib.Dataset,
        dry_run: bool,
        raise_errors: bool,
        using_transactions: bool,
        collect_failed_rows: bool,
        **kwargs: Any,
    ) -> Result:
        """The whole file at once (django-import-export's loop runs a savepoint and the
        services' queries per row): every row checked against the catalogue read up front
        (``CatalogImport``), then, unless this is the preview or a row was refused, written in
        bulk. The caller's transaction (rolled back for the preview, or on any error) holds it.
        """
        result = self.get_result_class()()
        result.diff_headers = self.get_diff_headers()
        result.total_rows = len(dataset)
        try:
            self.before_import(dataset, **kwargs)
        except Exception as exc:  # the file's error, shown as the library shows it
            self.handle_import_error(result, exc, raise_errors)
            return result
        plan = CatalogImport(now=self.now, actor=self.actor)
        rows: list[tuple[int, dict[str, Any], CatalogRow | ValidationError, Merchant | None]] = []
        for number, values in enumerate(dataset.dict, start=1):
            merchant = None
            try:
                merchant = self._merchant(cell_text(values.get("merchant")))
                parsed: CatalogRow | ValidationError = catalog_row_parse(
                    values, zone=ZoneInfo(merchant.time_zone)
                )
            except ValidationError as exc:
                parsed = exc
            rows.append((number, values, parsed, merchant))
        plan.load(
            (parsed, merchant)
            for _, _, parsed, merchant in rows
            if isinstance(parsed, CatalogRow) and merchant is not None
        )
        results = []
        for number, values, parsed, merchant in rows:
            row_result = self.get_row_result_class()()
            results.append(row_result)
            error = parsed if isinstance(parsed, ValidationError) else None
            if isinstance(parsed, CatalogRow) and merchant is not None:
                try:
                    outcome = plan.row(parsed, number=number, merchant=merchant)
                except ValidationError as exc:
                    error = exc
                else:
                    row_result.import_type = _IMPORT_TYPES[outcome.kind]
                    diff = self.get_diff_class()(
                        self, SimpleNamespace(**outcome.before), outcome.kind == "new"
                    )
                    diff.compare_with(self, SimpleNamespace(**catalog_row_cells(parsed, merchant)))
                    row_result.diff = diff.as_html()
                    row_result.instance = outcome.product
            if error is not None:
                row_result.import_type = RowResult.IMPORT_TYPE_INVALID
                row_result.validation_error = error
                result.append_invalid_row(number, values, error)
        if not dry_run and not result.has_validation_errors():
            try:
                plan.write()
            except ValidationError as exc:
                self.handle_import_error(result, exc, raise_errors)
        for row_result in results:
            if row_result.instance is not None:
                # After the write: the products' ids, for the admin's log of what changed.
                row_result.add_instance_info(row_result.instance)
            result.increment_row_result_total(row_result)
            result.append_row_result(row_result)
        return result

    def _merchant(self, named: str) -> Merchant:
        """The merchant the row goes to: the user's own, or the one an operator names."""
        if named not in self._merchants:
            self._merchants[named] = Merchant.objects.filter(slug=named).first() if named else None
        merchant = self._merchants[named]
        if self.merchant_id is None:
            if merchant is None:
                message = f"No merchant {named!r}." if named else "Name the merchant (its slug)."
                raise ValidationError({"merchant": message})
            return merchant
        own = self._own()
        if own is None or (named and (merchant is None or merchant.pk != own.pk)):
            raise ValidationError(
                {"merchant": "You import into your own merchant only: leave this column blank."}
            )
        return own

    def _own(self) -> Merchant | None:
        if not hasattr(self, "_own_merchant"):
            self._own_merchant = Merchant.objects.filter(pk=self.merchant_id or 0).first()
        return self._own_merchant

    def export(self, queryset: QuerySet[Product] | None = None, **kwargs: Any) -> tablib.Dataset:
        """``queryset``'s products (already scoped by the admin) in the import's format."""
        products = queryset if queryset is not None else Product.objects.none()
        dataset = tablib.Dataset(headers=list(COLUMNS))
        for cells in catalog_rows_export(products):
            dataset.append([cells[name] for name in COLUMNS])
        return dataset
