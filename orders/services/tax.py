"""Writes of the sales-tax rates table (DESIGN §3.8)."""

from django.db import transaction

from orders.models import TaxRate
from orders.tax.rates import RateRow


def tax_rates_replace(*, rows: list[RateRow]) -> tuple[int, int]:
    """Replace every rate with ``rows`` (already checked: ``orders.tax.rates.rates_read``), in
    one transaction: a decision batch sees the old table or the new one, never a mix (its
    calculator reads the table in one query). Returns (rows removed, rows added)."""
    with transaction.atomic():
        removed, _ = TaxRate.objects.all().delete()
        TaxRate.objects.bulk_create(
            TaxRate(
                state=row.state,
                zip_prefix=row.zip_prefix,
                jurisdiction=row.jurisdiction,
                rate=row.rate,
                source=row.source,
                effective_date=row.effective_date,
            )
            for row in rows
        )
    return removed, len(rows)
