"""The default calculator: US destination-based sales tax from the shipped rates table.

The state's rate (``orders.models.TaxRate`` without ZIP prefix) plus the local rates of the
first three digits of the ZIP code. Outside the US, or in a state the table does not know,
there is no tax line. The table is read in one query the first time a calculator is asked, and
kept for the calculator's life (one decision batch).
"""

from collections import defaultdict
from decimal import Decimal

from orders.models import TaxRate
from orders.tax.base import TaxCalculator, TaxQuote, TaxRequest, quote_from_rates

Rates = dict[tuple[str, str], list[tuple[str, Decimal]]]


def rates_load() -> Rates:
    """Every rate, by (state, ZIP prefix), the state's own under the prefix "" (one query)."""
    rates: Rates = defaultdict(list)
    rows = TaxRate.objects.order_by("state", "zip_prefix", "id").values_list(
        "state", "zip_prefix", "jurisdiction", "rate"
    )
    for state, prefix, jurisdiction, rate in rows:
        rates[(state, prefix)].append((jurisdiction, rate))
    return dict(rates)


def destination_rates(rates: Rates, ship_to: dict[str, str]) -> list[tuple[str, Decimal]]:
    """The rates of ``ship_to``: its state's, then its ZIP prefix's; none outside the US or
    for a state without a row."""
    if (ship_to.get("country") or "US").upper() != "US":
        return []
    state = (ship_to.get("state") or "").strip().upper()
    if (state, "") not in rates:
        return []
    prefix = (ship_to.get("postal_code") or "").strip()[:3]
    local = rates.get((state, prefix), []) if len(prefix) == 3 else []
    return rates[(state, "")] + local


class TableTax(TaxCalculator):
    def __init__(self) -> None:
        self._rates: Rates | None = None

    def quote(self, request: TaxRequest) -> TaxQuote:
        if self._rates is None:
            self._rates = rates_load()
        return quote_from_rates(request, destination_rates(self._rates, request.ship_to))
