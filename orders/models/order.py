"""Orders placed by post, their states, and the audit trail of every change (DESIGN §3.3 to §3.5).

The allowed transitions are declared here, once, with django-fsm-2; the status field is
protected (no direct assignment) and saves are compare-and-set on the status
(``ConcurrentTransitionMixin``), so two workers racing on one order cannot both win.
Services in ``orders.services`` run the transitions; the methods below only move the state.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from core.codes import CONFIRMATION_CODE
from core.models import TimeStampedModel
from social.models import EXTERNAL_ID_MAX_LENGTH, HANDLE_MAX_LENGTH

# Five characters from an alphabet without the look-alikes 0/O, 1/I/L (DESIGN §3.3), as
# ``core.codes`` defines them.
CONFIRMATION_ALPHABET = CONFIRMATION_CODE.alphabet
CONFIRMATION_CODE_LENGTH = CONFIRMATION_CODE.length


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending confirmation"
    CONFIRMED = "confirmed", "Confirmed"
    # The card's bank asks the buyer to authenticate (3-D Secure): they do it privately, within
    # the window (``orders.services.authentication``).
    AUTHENTICATION_REQUIRED = "authentication_required", "Awaiting card authentication"
    PAID = "paid", "Paid"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"
    DECLINED = "declined", "Declined"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    REFUNDED = "refunded", "Refunded"


# Room for the longest status name ("authentication_required").
STATUS_MAX_LENGTH = 32

# Statuses that hold a unit of the campaign's stock. A refunded order (in part or in full) still
# holds its unit: the buyer may keep the goods. Its unit goes back only when staff say the goods
# came back (``Order.restocked_at`` set, once, by ``orders.services.refunds.order_refund``), so an
# order holds a unit when its status is one of these and it is not restocked (``holds_stock``).
STOCK_HOLDING_STATUSES = frozenset(
    {
        OrderStatus.PENDING,
        OrderStatus.CONFIRMED,
        OrderStatus.AUTHENTICATION_REQUIRED,
        OrderStatus.PAID,
        OrderStatus.SHIPPED,
        OrderStatus.DELIVERED,
        OrderStatus.PARTIALLY_REFUNDED,
        OrderStatus.REFUNDED,
    }
)
# Statuses in which the payment was captured, so money may be given back (DESIGN §3.4).
REFUNDABLE_STATUSES = (
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
    OrderStatus.PARTIALLY_REFUNDED,
)
# Statuses staff may cancel from: before shipping (``order_cancel``).
CANCELLABLE_STATUSES = (OrderStatus.PENDING, OrderStatus.CONFIRMED, OrderStatus.PAID)
# Statuses in which the buyer may ask for a return (with the delivery recorded, within
# ``HASHCART["RETURN_DAYS"]`` of it: ``orders.services.returns``).
RETURNABLE_STATUSES = (OrderStatus.DELIVERED, OrderStatus.PARTIALLY_REFUNDED)
# Statuses in which "Not me" opens a dispute instead of cancelling: the goods left, the payment
# was captured, and not all of it was given back (``orders.services.disputes``).
DISPUTABLE_STATUSES = (
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
    OrderStatus.PARTIALLY_REFUNDED,
)


def holds_stock() -> Q:
    """The orders that hold a unit of their campaign's stock (``Campaign.stock_reserved`` counts
    them): a stock-holding status, and not restocked after a refund."""
    return Q(status__in=STOCK_HOLDING_STATUSES, restocked_at__isnull=True)


class OrderStage(models.IntegerChoices):
    """How far a sale went after its confirmation, whatever became of it later (the sales
    report's funnel: ``orders.reports``). The status cannot say it alone: a cancelled order may
    have been paid, a refunded one delivered."""

    NOT_PAID = 0, "Not paid"
    PAID = 1, "Paid"
    SHIPPED = 2, "Shipped"
    DELIVERED = 3, "Delivered"


# The stage each transition reaches: ``orders.services.common.order_transition`` writes it in
# the transition's own UPDATE. Each runs from the stage just below it, so none lowers it.
STAGE_OF_TRANSITION = {
    "pay": OrderStage.PAID,
    "ship": OrderStage.SHIPPED,
    "deliver": OrderStage.DELIVERED,
}


class CancelReason(models.TextChoices):
    """Who or what cancelled an order: recorded on its ``cancelled`` event and told in its
    e-mail. The last four are the lockdowns of ``accounts.services.Lockdown`` (same values)."""

    NOT_ME = "not_me", "The buyer, with the 'Not me' link"
    BUYER = "buyer", "The buyer, on their settings page"
    MERCHANT = "merchant", "The merchant's staff"
    OPERATOR = "operator", "An operator"
    PAUSED = "paused", "Buying by post paused"
    UNLINKED = "unlinked", "The identity that posted it was unlinked"
    CARD_REMOVED = "card_removed", "Its card was removed"
    CONSENT_WITHDRAWN = "consent_withdrawn", "Consent to buying by post withdrawn"


class Order(ConcurrentTransitionMixin, TimeStampedModel):
    """One unit of a campaign's product, bought by a cardholder's post.

    The product, price and shipping address are copied at creation (the snapshot), so later edits
    of the campaign or card do not change what was bought or where it goes. ``author_id`` is the
    platform user id of the purchase post: only that id may confirm (DESIGN §3.3).
    """

    merchant = models.ForeignKey(
        "catalog.Merchant", on_delete=models.PROTECT, related_name="orders"
    )
    campaign = models.ForeignKey(
        "catalog.Campaign", on_delete=models.PROTECT, related_name="orders"
    )
    cardholder = models.ForeignKey(
        "accounts.Cardholder", on_delete=models.PROTECT, related_name="orders"
    )
    card = models.ForeignKey("accounts.Card", on_delete=models.PROTECT, related_name="orders")
    purchase_post = models.OneToOneField(
        "social.Post", on_delete=models.PROTECT, null=True, blank=True, related_name="order"
    )
    platform = models.CharField(max_length=16)
    author_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    author_handle = models.CharField(max_length=HANDLE_MAX_LENGTH)

    status = FSMField(
        max_length=STATUS_MAX_LENGTH,
        choices=OrderStatus.choices,
        default=OrderStatus.PENDING,
        protected=True,
    )
    confirmation_code = models.CharField(max_length=CONFIRMATION_CODE_LENGTH)
    reply_posted_at = models.DateTimeField(null=True, blank=True)
    # When the confirmation request went to the buyer privately because the public reply budget
    # could not post it in time (``orders.services.private``): the window then opens when that
    # e-mail is sent, and the public reply only says "check your e-mail".
    request_private_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # Above the cardholder's threshold an order also needs a click on a private e-mail link
    # within the window (DESIGN §8): both the public confirmation and the click confirm it.
    email_confirm_required = models.BooleanField(default=False)
    email_confirmed_at = models.DateTimeField(null=True, blank=True)
    post_confirmed_at = models.DateTimeField(null=True, blank=True)
    payment_reference = models.CharField(max_length=255, blank=True)  # Stripe: ids up to 255
    # While the card's bank waits for the buyer to authenticate: the end of their window, the
    # confirmation window's length after the gateway asked (``orders.services.authentication``).
    authentication_expires_at = models.DateTimeField(null=True, blank=True)

    quantity = models.PositiveSmallIntegerField(default=1)
    # The variant bought (issue 13), None for a product without options; ``variant_label``
    # (``M / Blue``) and ``product_sku`` (the variant's SKU then) are its snapshot.
    variant = models.ForeignKey(
        "catalog.ProductVariant",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders",
    )
    variant_label = models.CharField(max_length=160, blank=True)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    # Sales tax, computed when the order is made (``orders.tax``, DESIGN §3.8): ``subtotal`` is
    # unit price times quantity; ``tax_lines`` the tax by jurisdiction, as strings
    # ({"jurisdiction", "rate", "amount"}); ``total`` what the card is authorized for.
    price_includes_tax = models.BooleanField(default=False)
    subtotal = models.DecimalField(max_digits=12, decimal_places=2)
    tax_total = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    tax_lines = models.JSONField(default=list, blank=True)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    product_name = models.CharField(max_length=200)
    product_sku = models.CharField(max_length=64)
    hashtag = models.CharField(max_length=100)
    ship_to = models.JSONField(default=dict)

    # Money given back (DESIGN §3.4): ``refund_requested_total`` is every refund asked for
    # (queued, running, returned or failed: a failed one may still be retried), raised by one
    # conditional UPDATE when a refund is requested; ``refunded_total`` is what the gateway
    # confirmed. The check constraints keep ``0 <= refunded <= requested <= total`` whatever
    # the writers do, so money back never exceeds what was captured.
    refund_requested_total = models.DecimalField(
        max_digits=12, decimal_places=2, default=0, editable=False
    )
    refunded_total = models.DecimalField(max_digits=12, decimal_places=2, default=0, editable=False)
    # When staff said the goods came back and the unit went back to stock (at most once).
    restocked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The furthest of paid, shipped and delivered it reached, never lowered (``OrderStage``):
    # written with the transition that reaches it (and by a delivery after a refund, which
    # moves no status), so the sales report reads its funnel from an index, not the audit rows.
    furthest_stage = models.PositiveSmallIntegerField(
        choices=OrderStage.choices, default=OrderStage.NOT_PAID, editable=False
    )

    class Meta:
        permissions = [
            ("cancel_order", "Can cancel orders"),
            ("refund_order", "Can refund orders"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["cardholder", "campaign"],
                condition=Q(status="pending"),
                name="order_one_pending_per_buyer_campaign",
            ),
            models.UniqueConstraint(
                fields=["confirmation_code"],
                condition=Q(status="pending"),
                name="order_unique_pending_code",
            ),
            models.CheckConstraint(
                condition=Q(confirmation_code__regex=r"^[2-9A-HJKMNP-Z]{5}$"),
                name="order_confirmation_code_alphabet",
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_quantity_positive"),
            # The subtotal is the price times the quantity; the total adds the tax unless the
            # price already includes it.
            models.CheckConstraint(
                condition=Q(unit_price__gt=0)
                & Q(tax_total__gte=0)
                & Q(subtotal=F("unit_price") * F("quantity"))
                & (
                    Q(price_includes_tax=False, total=F("subtotal") + F("tax_total"))
                    | Q(price_includes_tax=True, total=F("subtotal"))
                ),
                name="order_total_is_price_times_quantity",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in OrderStatus]), name="order_status_known"
            ),
            models.CheckConstraint(
                condition=Q(refunded_total__gte=0)
                & Q(refunded_total__lte=F("refund_requested_total"))
                & Q(refund_requested_total__lte=F("total")),
                name="order_refunds_within_total",
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "-id"], name="order_merchant_idx"),
            models.Index(fields=["merchant", "status", "-id"], name="order_merchant_status_idx"),
            models.Index(fields=["status", "-id"], name="order_status_idx"),
            models.Index(fields=["campaign", "status"], name="order_campaign_status_idx"),
            models.Index(fields=["cardholder", "-id"], name="order_cardholder_idx"),
            models.Index(fields=["confirmation_code"], name="order_code_idx"),
            # Support search (``orders.search``): a handle in any case, and a date range per
            # merchant (staff) or across merchants (operators), listed newest first in the
            # indexes' order (``orders.admin_filters.date_range_ordering``; a backward scan).
            models.Index(Upper("author_handle"), name="order_author_handle_upper_idx"),
            # The same merchant-and-date index serves the sales report's orders of a merchant
            # placed in a date range (``orders.reports``): a range scan, never the merchant's
            # whole history. It covers every column the report reads, so a year of a large
            # merchant's orders is an index-only scan rather than a read of their rows. The
            # funnel is ``confirmed_at`` and ``furthest_stage`` (two bytes, not the status).
            models.Index(
                fields=["merchant", "created_at", "id"],
                include=[
                    "platform",
                    "currency",
                    "furthest_stage",
                    "confirmed_at",
                    "quantity",
                    "total",
                    "tax_total",
                    "campaign",
                ],
                name="order_merchant_created_idx",
            ),
            models.Index(fields=["-created_at", "-id"], name="order_created_idx"),
            # The sales report's refunds (``orders.reports``) need each refunded order's
            # merchant, platform and currency: from this index alone, which holds only the
            # orders with money given back (a refund that went through raises
            # ``refunded_total``), not from every order the merchant ever had.
            models.Index(
                fields=["merchant", "id"],
                include=["platform", "currency", "campaign"],
                condition=Q(refunded_total__gt=0),
                name="order_refunded_idx",
            ),
            models.Index(
                fields=["expires_at"],
                condition=Q(status="pending"),
                name="order_pending_expiry_idx",
            ),
        ]

    def __str__(self) -> str:
        # The one number staff and buyers know an order by (issue 14): its code, never its pk.
        return f"Order #{self.confirmation_code}"

    # --- Transitions (DESIGN §3.4). Side effects live in services, never here. -----------------
    @transition(field=status, source=OrderStatus.PENDING, target=OrderStatus.CONFIRMED)
    def confirm(self) -> None:
        """The buyer posted the confirmation hashtag in time."""

    @transition(
        field=status,
        source=OrderStatus.CONFIRMED,
        target=OrderStatus.AUTHENTICATION_REQUIRED,
    )
    def require_authentication(self) -> None:
        """The card's bank asks the buyer to authenticate before it authorizes (3-D Secure)."""

    @transition(
        field=status,
        source=[OrderStatus.CONFIRMED, OrderStatus.AUTHENTICATION_REQUIRED],
        target=OrderStatus.PAID,
    )
    def pay(self) -> None:
        """The card was authorized; the shipment is scheduled in the same transaction."""

    @transition(field=status, source=OrderStatus.PAID, target=OrderStatus.SHIPPED)
    def ship(self) -> None:
        """The label was bought and the payment captured."""

    @transition(field=status, source=OrderStatus.SHIPPED, target=OrderStatus.DELIVERED)
    def deliver(self) -> None:
        """The carrier reported delivery."""

    @transition(field=status, source=OrderStatus.PENDING, target=OrderStatus.EXPIRED)
    def expire(self) -> None:
        """No confirmation within the window; the unit goes back to stock."""

    @transition(
        field=status,
        source=[OrderStatus.CONFIRMED, OrderStatus.AUTHENTICATION_REQUIRED],
        target=OrderStatus.DECLINED,
    )
    def decline(self) -> None:
        """The authorization was refused (or its authentication failed or lapsed); the unit
        goes back to stock."""

    @transition(
        field=status,
        source=[
            OrderStatus.PENDING,
            OrderStatus.CONFIRMED,
            OrderStatus.AUTHENTICATION_REQUIRED,
            OrderStatus.PAID,
        ],
        target=OrderStatus.CANCELLED,
    )
    def cancel(self) -> None:
        """Cancelled by the buyer ("Not me"), staff or ops; a paid order's authorization is
        voided, and so is one waiting for the buyer's authentication."""

    @transition(field=status, source=list(REFUNDABLE_STATUSES), target=OrderStatus.REFUNDED)
    def refund_fully(self) -> None:
        """A refund succeeded and, with the earlier ones, gave back the whole captured total."""

    @transition(
        field=status, source=list(REFUNDABLE_STATUSES), target=OrderStatus.PARTIALLY_REFUNDED
    )
    def refund_partly(self) -> None:
        """A refund succeeded and part of the captured total is still not given back."""


class OrderEvent(models.Model):
    """The audit trail: one row per thing that happened to an order, who did it and when."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField()
    kind = models.CharField(max_length=32)
    from_status = models.CharField(max_length=STATUS_MAX_LENGTH, blank=True)
    to_status = models.CharField(max_length=STATUS_MAX_LENGTH, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(max_length=64, default="system")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["order", "id"], name="orderevent_order_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_status}→{self.to_status}"
