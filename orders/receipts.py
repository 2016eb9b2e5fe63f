"""What a receipt says, as data: built once from the order when it is issued, kept as JSON on
the ``Receipt`` row, and rendered from that copy ever after (e-mail: ``orders.messages``; PDF:
``orders.receipt_pdf``), so a receipt never changes after issue (DESIGN §3.8).

``receipt_content`` is the one place that reads an order into a receipt: sales tax (the order's
tax lines) and credit notes (refunds) are added there. Until orders carry tax, a receipt has no
tax lines and its total is the order's price times quantity.

Numbers: ``document_reference`` is the one format, ``<PREFIX>-<letter>-<number, 6 digits or
more>``, e.g. ``ACME-R-000123`` for Acme's 123rd receipt and ``ACME-C-000007`` for its 7th
credit note. The prefix is the merchant's slug in capitals when its series started.
"""

from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from orders.models import DocumentSeries, Order

SERIES_LETTER = {DocumentSeries.RECEIPT: "R", DocumentSeries.CREDIT_NOTE: "C"}


def document_reference(*, prefix: str, series: str, number: int) -> str:
    """The printed number of a merchant's ``number``-th document in ``series``."""
    return f"{prefix}-{SERIES_LETTER[DocumentSeries(series)]}-{number:06d}"


@dataclass(frozen=True)
class ItemLine:
    description: str
    sku: str
    quantity: int
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class TaxLine:
    """Tax charged for one jurisdiction; ``rate`` as stored with the order (e.g. "0.08875")."""

    jurisdiction: str
    rate: str
    amount: Decimal


@dataclass(frozen=True)
class ReceiptContent:
    """Everything a receipt shows. Never a card number: the brand and last four only."""

    reference: str
    issued_at: datetime
    ordered_at: datetime
    time_zone: str  # the merchant's: dates are printed in it
    merchant_name: str
    merchant_address: tuple[str, ...]
    merchant_tax_id: str
    order_id: int
    order_code: str
    items: tuple[ItemLine, ...]
    tax_lines: tuple[TaxLine, ...]
    subtotal: Decimal
    total: Decimal
    currency: str
    card_brand: str
    card_last4: str
    # The price included the tax: the tax lines are inside the subtotal, not added to it.
    tax_included: bool = False
    # A credit note: the receipt it gives money back on, and why (empty for a receipt).
    refers_to: str = ""
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """The JSON kept on the ``Receipt`` row: money as strings, times in ISO 8601."""
        return _jsonable(asdict(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ReceiptContent":
        return cls(
            **{
                # A field added since the receipt was issued takes its default.
                **{f.name: data[f.name] for f in fields(cls) if f.name in data},
                "issued_at": datetime.fromisoformat(data["issued_at"]),
                "ordered_at": datetime.fromisoformat(data["ordered_at"]),
                "merchant_address": tuple(data["merchant_address"]),
                "items": tuple(
                    ItemLine(
                        **{
                            **line,
                            "unit_price": Decimal(line["unit_price"]),
                            "amount": Decimal(line["amount"]),
                        }
                    )
                    for line in data["items"]
                ),
                "tax_lines": tuple(
                    TaxLine(**{**line, "amount": Decimal(line["amount"])})
                    for line in data["tax_lines"]
                ),
                "subtotal": Decimal(data["subtotal"]),
                "total": Decimal(data["total"]),
            }
        )


def credit_note_content(
    *,
    order: Order,
    amount: Decimal,
    reason: str,
    receipt_reference: str,
    reference: str,
    issued_at: datetime,
) -> ReceiptContent:
    """The credit note of a refund of ``amount`` on ``order``, referring to its receipt: one
    line for the money given back, with the order's sales tax in it pro rata (each line rounded
    to the cent, the last one taking the rounding, so the lines add up)."""
    share = amount / order.total if order.total else Decimal(0)
    owed = cents(Decimal(order.tax_total) * share)
    taxes: list[TaxLine] = []
    for n, line in enumerate(order.tax_lines):
        given = sum((t.amount for t in taxes), Decimal(0))
        last = n == len(order.tax_lines) - 1
        part = owed - given if last else cents(Decimal(str(line["amount"])) * share)
        taxes.append(TaxLine(str(line["jurisdiction"]), str(line["rate"]), part))
    refund = ItemLine(
        description=f"Refund: {order.product_name}",
        sku=order.product_sku,
        quantity=1,
        unit_price=amount,
        amount=amount,
    )
    return replace(
        receipt_content(order=order, reference=reference, issued_at=issued_at),
        items=(refund,),
        tax_lines=tuple(taxes),
        subtotal=amount - owed,
        total=amount,
        tax_included=True,
        refers_to=receipt_reference,
        reason=reason,
    )


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def receipt_content(*, order: Order, reference: str, issued_at: datetime) -> ReceiptContent:
    """The receipt of ``order`` (with its merchant and card) as issued at ``issued_at``.

    The one function that turns an order into receipt lines: the item at the order's
    subtotal, and the sales tax the order stored by jurisdiction (DESIGN §3.8). When the price
    included tax, the total is the subtotal and the lines show the tax inside it.
    """
    merchant = order.merchant
    item = ItemLine(
        description=order.product_name,
        sku=order.product_sku,
        quantity=order.quantity,
        unit_price=order.unit_price,
        amount=order.subtotal,
    )
    return ReceiptContent(
        reference=reference,
        issued_at=issued_at,
        ordered_at=order.created_at,
        time_zone=merchant.time_zone,
        merchant_name=merchant.receipt_name,
        merchant_address=tuple(merchant.address_lines),
        merchant_tax_id=merchant.tax_id,
        order_id=order.pk,
        order_code=order.confirmation_code,
        items=(item,),
        tax_lines=tuple(
            TaxLine(
                jurisdiction=str(line["jurisdiction"]),
                rate=str(line["rate"]),
                amount=Decimal(str(line["amount"])),
            )
            for line in order.tax_lines
        ),
        subtotal=order.subtotal,
        total=order.total,
        currency=order.currency,
        card_brand=order.card.brand,
        card_last4=order.card.last4,
        tax_included=order.price_includes_tax,
    )
