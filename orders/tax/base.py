"""The contract of a sales-tax calculator (DESIGN §3.8).

Given what is sold (the unit price, the quantity, whether the price includes tax) and where it
goes (the order's ``ship_to``: the card's billing address, ``accounts.models.ADDRESS_FIELDS``
plus ``country``), a calculator returns a ``TaxQuote``: the subtotal (unit price times quantity),
the tax by jurisdiction and the total the card is authorized for. Amounts are ``Decimal`` in
the currency's major unit; each line is rounded to the cent, half up.

- Price excludes tax: each line is ``subtotal times rate``, rounded; total = subtotal + the lines.
- Price includes tax: total = subtotal; each line is the tax the price already holds,
  ``subtotal times rate / (1 + the sum of the rates)``, rounded.

A destination no rate applies to (outside the US, an unknown state, a state without sales tax)
gets no tax line: the total is the subtotal. A calculator that cannot answer now (Stripe Tax
unreachable, an address it refuses) raises ``TaxError``; deciding then blocks that purchase and
tells the buyer by e-mail, so no order is made with a tax nobody computed.
"""

import abc
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def cents(amount: Decimal) -> Decimal:
    """``amount`` rounded to the cent, half up."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


class TaxError(Exception):
    """The tax could not be computed now (may succeed if asked again)."""


@dataclass(frozen=True, slots=True)
class TaxLine:
    """One jurisdiction's tax: its name, its rate (a fraction: 0.04 is 4%) and the amount."""

    jurisdiction: str
    rate: Decimal
    amount: Decimal

    def as_json(self) -> dict[str, str]:
        """As stored in ``Order.tax_lines`` (strings, so that JSON keeps every digit)."""
        return {
            "jurisdiction": self.jurisdiction,
            "rate": str(self.rate),
            "amount": str(self.amount),
        }


@dataclass(frozen=True, slots=True)
class TaxRequest:
    """What is taxed. ``ship_to`` holds ``line1``, ``line2``, ``city``, ``state``,
    ``postal_code`` and ``country`` (``accounts.selectors.BuyerCard.ship_to``)."""

    merchant_id: int
    campaign_id: int
    unit_price: Decimal
    quantity: int
    currency: str
    price_includes_tax: bool
    ship_to: dict[str, str] = field(default_factory=dict)

    @property
    def subtotal(self) -> Decimal:
        return cents(self.unit_price * self.quantity)


@dataclass(frozen=True, slots=True)
class TaxQuote:
    """The answer: ``total`` = ``subtotal`` + ``tax_total`` when the price excludes tax,
    ``subtotal`` when it includes it."""

    subtotal: Decimal
    lines: tuple[TaxLine, ...]
    price_includes_tax: bool

    @property
    def tax_total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    @property
    def total(self) -> Decimal:
        return self.subtotal if self.price_includes_tax else self.subtotal + self.tax_total

    def lines_json(self) -> list[dict[str, str]]:
        return [line.as_json() for line in self.lines]


def quote_from_rates(request: TaxRequest, rates: Iterable[tuple[str, Decimal]]) -> TaxQuote:
    """The quote of ``request`` at ``rates`` (jurisdiction, rate), by the rules of this module;
    jurisdictions at a rate of zero get no line."""
    rates = [(name, rate) for name, rate in rates if rate > 0]
    subtotal = request.subtotal
    if request.price_includes_tax:
        divisor = 1 + sum((rate for _, rate in rates), Decimal(0))
        lines = tuple(TaxLine(n, r, cents(subtotal * r / divisor)) for n, r in rates)
    else:
        lines = tuple(TaxLine(n, r, cents(subtotal * r)) for n, r in rates)
    return TaxQuote(subtotal=subtotal, lines=lines, price_includes_tax=request.price_includes_tax)


class TaxCalculator(abc.ABC):
    """A calculator lives for one decision batch (``orders.tax.calculator()`` makes one): it may
    read what it needs once and keep it for the batch's orders, never a query per order.

    ``remote``: it asks a service over the network. Such a calculator is never called while a
    batch holds its locks: the batch's questions are asked before its transaction opens
    (``orders.services.decide.taxes``)."""

    remote: bool = False

    @abc.abstractmethod
    def quote(self, request: TaxRequest) -> TaxQuote:
        """The tax of ``request``; raises ``TaxError`` when it cannot be computed now."""

    def key(self, request: TaxRequest) -> tuple[object, ...]:
        """What makes two requests the same question (the same answer)."""
        return (
            request.campaign_id,
            request.unit_price,
            request.quantity,
            request.currency,
            request.price_includes_tax,
            tuple(sorted(request.ship_to.items())),
        )
