"""What a new order holds, and what the buyer already holds (DESIGN §3.3, §3.5).

An order is a snapshot taken when it is created: the campaign's price, currency and product,
the buyer's card and its billing address as the shipping address, the sales tax to that
address (``tax_request``: the batch's calculator quotes it, DESIGN §3.8), and whether the
buyer's threshold asks for an e-mail confirmation too (it compares the total, tax included).
``holdings_read`` reads, in one query, the buyers' stock-holding orders that the per-buyer
limit and the daily spend cap count.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import F, Q

from accounts.selectors import Buyer, BuyerCard, BuyerLimits
from catalog.grammar import VariantChoice
from catalog.models import Campaign
from core.lookups import AnyOf
from orders import messages
from orders.models import Notification, Order, OrderStatus, holds_stock
from orders.services.common import notification
from orders.tax import TaxQuote, TaxRequest
from social.models import Post

if TYPE_CHECKING:
    from accounts.models import Cardholder


@dataclass
class Holdings:
    """Units held per (cardholder, campaign), which of those pairs have a pending order, and
    a rolling day's spend (order totals, tax included) per capped cardholder; ``add`` counts an
    order made in the batch."""

    units: Counter[tuple[int, int]] = field(default_factory=Counter)
    pending: set[tuple[int, int]] = field(default_factory=set)
    spending: dict[int, Decimal] = field(default_factory=dict)

    def held(self, cardholder_id: int, campaign_id: int) -> int:
        return self.units[(cardholder_id, campaign_id)]

    def pending_for(self, cardholder_id: int, campaign_id: int) -> bool:
        return (cardholder_id, campaign_id) in self.pending

    def spent(self, cardholder_id: int) -> Decimal:
        return self.spending.get(cardholder_id, Decimal(0))

    def add(self, cardholder_id: int, campaign: Campaign, total: Decimal, units: int = 1) -> None:
        self.units[(cardholder_id, campaign.pk)] += units
        self.pending.add((cardholder_id, campaign.pk))
        self.spending[cardholder_id] = self.spent(cardholder_id) + total


def holdings_read(
    *, cardholder_ids: set[int], campaign_ids: set[int], capped_ids: set[int], now: datetime
) -> Holdings:
    """The buyers' stock-holding orders of ``campaign_ids``, and for ``capped_ids`` (buyers with
    a daily cap) those of any campaign created in the last day, which the cap counts."""
    holdings = Holdings()
    if not cardholder_ids:
        return holdings
    day = now - timedelta(days=1)
    rows = Order.objects.filter(
        Q(campaign_id__in=campaign_ids)
        | (Q(AnyOf(F("cardholder_id"), capped_ids)) & Q(created_at__gte=day)),
        AnyOf(F("cardholder_id"), cardholder_ids),
        holds_stock(),  # an order whose goods came back (restocked) no longer counts
    ).values_list("cardholder_id", "campaign_id", "status", "total", "created_at", "quantity")
    for cardholder_id, campaign_id, status, total, created_at, quantity in rows:
        key = (cardholder_id, campaign_id)
        if campaign_id in campaign_ids:
            holdings.units[key] += quantity
            if status == OrderStatus.PENDING:
                holdings.pending.add(key)
        if cardholder_id in capped_ids and created_at >= day:
            holdings.spending[cardholder_id] = holdings.spent(cardholder_id) + total
    return holdings


def tax_request(*, campaign: Campaign, card: BuyerCard, quantity: int = 1) -> TaxRequest:
    """What the sales tax of ``quantity`` units of ``campaign`` shipped to ``card``'s address is
    asked on."""
    return TaxRequest(
        merchant_id=campaign.merchant_id,
        campaign_id=campaign.pk,
        unit_price=campaign.price,
        quantity=quantity,
        currency=campaign.currency,
        price_includes_tax=campaign.price_includes_tax,
        ship_to=card.ship_to(),
    )


def order_new(
    *,
    post: Post,
    campaign: Campaign,
    buyer: Buyer,
    card: BuyerCard,
    limits: BuyerLimits | None,
    tax: TaxQuote,
    variant: VariantChoice | None = None,
    quantity: int = 1,
) -> Order:
    """The unsaved order of a purchase post (its code is drawn when the batch is written), with
    ``tax``, the quote of ``tax_request`` for it (its quantity is the order's), and the
    ``variant`` bought (its SKU is the order's)."""
    return Order(
        merchant_id=campaign.merchant_id,
        campaign=campaign,
        cardholder_id=buyer.cardholder_id,
        card_id=card.card_id,
        purchase_post=post,
        platform=post.platform,
        author_id=post.author_id,
        author_handle=post.author_handle,
        unit_price=campaign.price,
        quantity=quantity,
        variant_id=variant.variant_id if variant is not None else None,
        variant_label=variant.label if variant is not None else "",
        price_includes_tax=tax.price_includes_tax,
        subtotal=tax.subtotal,
        tax_total=tax.tax_total,
        tax_lines=tax.lines_json(),
        total=tax.total,
        currency=campaign.currency,
        product_name=campaign.product.name,
        product_sku=variant.sku if variant is not None and variant.sku else campaign.product.sku,
        hashtag=campaign.hashtag,
        email_confirm_required=limits is not None
        and limits.email_confirm_above is not None
        and tax.total > limits.email_confirm_above,
        ship_to=card.ship_to(),
    )


def blocked_email(
    cardholder: "Cardholder", *, post_id: int, campaign: Campaign, reason: str
) -> Notification:
    return notification(
        key=f"blocked:{post_id}",
        cardholder=cardholder,
        kind="blocked",
        message=messages.email_blocked(cardholder=cardholder, campaign=campaign, reason=reason),
    )


def order_created_email(
    cardholder: "Cardholder", *, order: Order, prefix: str, window_minutes: float
) -> Notification:
    return notification(
        key=f"order_created:{order.pk}",
        cardholder=cardholder,
        kind="order_created",
        order=order,
        message=messages.email_order_created(
            order=order, cardholder=cardholder, prefix=prefix, window_minutes=window_minutes
        ),
    )
