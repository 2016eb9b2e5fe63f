"""Stripe Tax (``HASHCART_TAX=stripe``): the Tax Calculations API (DESIGN §3.8).

One calculation per order: ``POST /v1/tax/calculations`` with the line's amount in cents (unit
price times quantity), its ``tax_behavior`` (``inclusive`` when the campaign's price includes tax),
and the ship-to address as the customer's shipping address. The line item's ``tax_breakdown``
(``expand[]=line_items``) gives the tax by jurisdiction; a jurisdiction that charges nothing
(not registered there, exempt) gets no line. Any Stripe error, or an answer without the line,
is ``TaxError``: the purchase is then refused for now (``orders.tax.base``).

A calculation is a call over the network (``remote``): the decision batch asks its questions
before its transaction opens, never under its locks (``orders.services.decide.taxes``). The
client waits at most ``TIMEOUT_SECONDS`` and never retries by itself: the buyer may post again.
"""

from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings

from orders.payments.stripe import ZERO_DECIMAL, minor_units
from orders.tax.base import TaxCalculator, TaxError, TaxLine, TaxQuote, TaxRequest

TIMEOUT_SECONDS = 5


def major_units(amount: int, currency: str) -> Decimal:
    """Stripe's smallest-unit ``amount`` in the currency's major unit."""
    if currency.upper() in ZERO_DECIMAL:
        return Decimal(amount)
    return (Decimal(amount) / 100).quantize(Decimal("0.01"))


class StripeTax(TaxCalculator):
    remote = True

    def __init__(self, client: stripe.StripeClient | None = None) -> None:
        self.client = client or stripe.StripeClient(
            settings.STRIPE_SECRET_KEY,
            http_client=stripe.RequestsClient(timeout=TIMEOUT_SECONDS),
            max_network_retries=0,
        )

    def quote(self, request: TaxRequest) -> TaxQuote:
        address = request.ship_to
        params: dict[str, Any] = {
            "currency": request.currency.lower(),
            "line_items": [
                {
                    "amount": minor_units(request.subtotal, request.currency),
                    "reference": f"campaign-{request.campaign_id}",
                    "quantity": request.quantity,
                    "tax_behavior": "inclusive" if request.price_includes_tax else "exclusive",
                }
            ],
            "customer_details": {
                "address": {
                    key: address.get(key, "")
                    for key in ("line1", "line2", "city", "state", "postal_code", "country")
                    if address.get(key)
                },
                "address_source": "shipping",
            },
            "expand": ["line_items"],
        }
        try:
            calculation = self.client.v1.tax.calculations.create(params=params)  # type: ignore[arg-type]
        except stripe.StripeError as exc:
            raise TaxError(f"Stripe Tax: {type(exc).__name__}: {exc.user_message or ''}") from exc
        items = getattr(getattr(calculation, "line_items", None), "data", None) or []
        if len(items) != 1:
            raise TaxError("Stripe Tax: the calculation came back without its line item")
        lines: dict[str, TaxLine] = {}
        for part in items[0].tax_breakdown or []:
            if not part.amount:
                continue
            name = part.jurisdiction.display_name
            details = part.tax_rate_details
            rate = Decimal(details.percentage_decimal) / 100 if details is not None else Decimal(0)
            amount = major_units(part.amount, request.currency)
            if name in lines:  # two taxes of one jurisdiction: one line
                rate, amount = rate + lines[name].rate, amount + lines[name].amount
            lines[name] = TaxLine(jurisdiction=name, rate=rate, amount=amount)
        return TaxQuote(
            subtotal=request.subtotal,
            lines=tuple(lines.values()),
            price_includes_tax=request.price_includes_tax,
        )
