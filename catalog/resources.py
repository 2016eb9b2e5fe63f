"""The products CSV for django-import-export (issue 14, item 6): the admin's import (a preview,
then a confirmation) and export of ``catalog.imports``' format.

A thin adapter: each row is read by ``catalog_row_parse`` and written by ``catalog_row_save``;
this module resolves the merchant a row goes to and reports rows as django-import-export
shows them (new, update, skipped, or invalid with its errors by column). Every row's problems
are validation errors, so the preview lists them all; the admin imports with
``rollback_on_validation_errors``, so a file with any of them writes nothing.
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
from import_export.results import RowResult

from catalog.import_format import COLUMNS, REQUIRED_COLUMNS, catalog_row_parse, cell_text
from catalog.imports import (
    Actor,
    ImportLedger,
    catalog_row_cells,
    catalog_row_save,
    catalog_rows_export,
)
from catalog.models import Merchant, Product


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
        self.ledger = ImportLedger()
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

    def import_row(self, row: dict[str, Any], instance_loader: Any, **kwargs: Any) -> RowResult:
        result = self.get_row_result_class()()
        try:
            merchant = self._merchant(cell_text(row.get("merchant")))
            parsed = catalog_row_parse(row, zone=ZoneInfo(merchant.time_zone))
            outcome = catalog_row_save(
                row=parsed,
                number=kwargs["row_number"],
                merchant=merchant,
                now=self.now,
                actor=self.actor,
                ledger=self.ledger,
            )
        except ValidationError as exc:
            result.import_type = RowResult.IMPORT_TYPE_INVALID
            result.validation_error = exc
            return result
        result.import_type = {
            "new": RowResult.IMPORT_TYPE_NEW,
            "update": RowResult.IMPORT_TYPE_UPDATE,
            "skip": RowResult.IMPORT_TYPE_SKIP,
        }[outcome.kind]
        diff = self.get_diff_class()(self, SimpleNamespace(**outcome.before), outcome.kind == "new")
        diff.compare_with(self, SimpleNamespace(**catalog_row_cells(parsed, merchant)))
        result.diff = diff.as_html()
        result.add_instance_info(outcome.product)
        result.instance = outcome.product
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
