"""Sales tax behind one contract (``base.TaxCalculator``), chosen by ``HASHCART["TAX"]`` (a
dotted path; ``HASHCART_TAX`` is ``table``, the default, ``stripe`` or a dotted path)."""

from django.conf import settings
from django.utils.module_loading import import_string

from orders.tax.base import TaxCalculator, TaxError, TaxLine, TaxQuote, TaxRequest


def calculator() -> TaxCalculator:
    """A new calculator (one per decision batch: it keeps what it read for the batch)."""
    return import_string(settings.HASHCART["TAX"])()


__all__ = ["TaxCalculator", "TaxError", "TaxLine", "TaxQuote", "TaxRequest", "calculator"]
