"""Orders placed by post, their states, and the audit trail of every change (DESIGN §3.3 to §3.5).

The allowed transitions are declared here, once, with django-fsm-2; the status field is
protected (no direct assignment) and saves are compare-and-set on the status
(``ConcurrentTransitionMixin``), so two workers racing on one order cannot both win.
Services in ``orders.services`` run the transitions; the methods below only move the state.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import MD5
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from core.codes import CONFIRMATION_CODE
from core.lengths import EMAIL_SUBJECT_MAX_LENGTH
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
            models.Index(fields=["author_handle"], name="order_author_handle_idx"),
            models.Index(
                fields=["expires_at"],
                condition=Q(status="pending"),
                name="order_pending_expiry_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Order {self.pk} ({self.product_name}, {self.status})"

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


class PaymentOperationKind(models.TextChoices):
    AUTHORIZE = "authorize", "Authorize"
    CAPTURE = "capture", "Capture"
    VOID = "void", "Void"
    REFUND = "refund", "Refund"


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class RefundStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    PROCESSING = "processing", "Processing"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Refund(TimeStampedModel):
    """Money given back on a captured order, in full or in part (DESIGN §3.4): one row per
    refund asked for, run by its payment operation (``PaymentOperation.refund``) through the
    payment outbox with its own idempotency key, ``order-<id>-refund-<number>``.

    ``status`` follows the operation: ``requested`` until first tried, ``processing`` while tried
    (and retried), ``succeeded`` once the gateway confirmed it, ``failed`` when the gateway
    refused it or retries gave up (``retry_payments`` may run it again). Written by
    ``orders.services.refunds``.
    """

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    number = models.PositiveSmallIntegerField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    reason = models.CharField(max_length=500)
    # Who asked: a staff login (``requested_by``), or the system (``actor_label`` says which).
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(max_length=64, default="system")
    # Staff said the goods came back: the unit went back to stock with this refund.
    restock = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=RefundStatus.choices, default=RefundStatus.REQUESTED
    )
    idempotency_key = models.CharField(max_length=64, unique=True)
    # The gateway's id of the refund (Stripe's are up to 255 characters).
    reference = models.CharField(max_length=255, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order", "number"], name="refund_number_per_order"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"Refund {self.number} of order {self.order_id}: {self.amount} ({self.status})"


class PaymentOperation(TimeStampedModel):
    """The payment outbox: a call to the gateway, written with the state change that needs it.

    One per order and operation, except refunds (one per ``Refund``); its idempotency key
    (``order-<id>-<operation>``, a refund's ``order-<id>-refund-<number>``) is sent to the
    gateway, so a call repeated after a crash is charged once (DESIGN §5.5).
    """

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payment_operations")
    operation = models.CharField(max_length=16, choices=PaymentOperationKind.choices)
    # The refund a ``refund`` operation runs (and only those have one).
    refund = models.OneToOneField(
        Refund, on_delete=models.PROTECT, null=True, blank=True, related_name="operation"
    )
    idempotency_key = models.CharField(max_length=64, unique=True)
    status = models.CharField(
        max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    # The gateway's answer: a decline code (Stripe's longest is under 40 characters) and the
    # gateway's id (Stripe's are up to 255 characters).
    result = models.CharField(max_length=64, blank=True)
    reference = models.CharField(max_length=255, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["order", "operation"],
                condition=~Q(operation="refund"),
                name="payment_op_once",
            ),
            models.CheckConstraint(
                condition=Q(operation="refund", refund__isnull=False)
                | (~Q(operation="refund") & Q(refund__isnull=True)),
                name="payment_op_refund_has_refund",
            ),
        ]
        indexes = [
            models.Index(fields=["id"], condition=Q(status="pending"), name="payment_op_due_idx"),
            # /healthz and pipeline_status look for failed operations on every call.
            models.Index(fields=["id"], condition=Q(status="failed"), name="payment_op_failed_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.operation} order {self.order_id} ({self.status})"


class Notification(TimeStampedModel):
    """The e-mail outbox: one message to a cardholder, sent after the transaction commits.

    ``key`` is unique (for example ``order_created:42``), so a decision made twice e-mails once.
    Orders' e-mails name their order; accounts' (link, card and address changes) have none.
    Queued by ``orders.services.notifications.email_queue``.
    """

    key = models.CharField(max_length=100, unique=True)
    cardholder = models.ForeignKey(
        "accounts.Cardholder", on_delete=models.CASCADE, related_name="notifications"
    )
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    kind = models.CharField(max_length=32)
    to_email = models.EmailField()
    # Cut with an ellipsis by ``orders.services.common.notification`` (``core.lengths.fit``).
    subject = models.CharField(max_length=EMAIL_SUBJECT_MAX_LENGTH)
    body = models.TextField()
    # An HTML alternative to ``body`` (the receipt); plain text only when empty.
    html_body = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    # The sender's lease and the next try's time (core.outbox, HASHCART["OUTBOX"]["emails"]).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["id"], condition=Q(status="pending"), name="notification_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.to_email} ({self.status})"


class PaymentReconciliation(models.Model):
    """One comparison of the gateway's books with the orders (``reconcile_payments``, daily by
    beat): what it read and every mismatch found (``orders.services.reconcile``), or why the
    gateway could not be read. ``pipeline_status`` shows the latest."""

    ran_at = models.DateTimeField()
    since = models.DateTimeField()
    records = models.PositiveIntegerField(default=0)
    orders = models.PositiveIntegerField(default=0)
    # [{"kind": ..., "order_id": ..., "detail": ...}], in the order found.
    mismatches = models.JSONField(default=list)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["-ran_at"], name="reconciliation_latest_idx")]

    def __str__(self) -> str:
        return f"reconciliation {self.ran_at:%Y-%m-%d %H:%M} ({len(self.mismatches)} mismatches)"


class DocumentSeries(models.TextChoices):
    """The numbered documents a merchant issues, each series numbered on its own (DESIGN §3.8).
    The letter each carries in its number is ``orders.receipts.SERIES_LETTER``."""

    RECEIPT = "receipt", "Receipt"
    CREDIT_NOTE = "credit_note", "Credit note"


class DocumentSequence(models.Model):
    """The last number issued in one merchant's series: gapless because the number is taken by
    incrementing this row under its row lock, in the transaction that creates the document
    (``orders.services.receipts.document_number_take``). A transaction that rolls back gives its
    number back with it; two that commit never share one.

    ``prefix`` is fixed when the series starts (the merchant's slug in capitals then), so that
    renaming the merchant does not change the look of a series halfway through.
    """

    merchant = models.ForeignKey("catalog.Merchant", on_delete=models.PROTECT, related_name="+")
    series = models.CharField(max_length=16, choices=DocumentSeries.choices)
    prefix = models.CharField(max_length=50)  # a slug's length
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "series"], name="document_sequence_once"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix} {self.series} at {self.last_number}"


class Receipt(models.Model):
    """The numbered receipt of a paid order, issued in the transaction that made it paid.

    ``content`` is the receipt as issued (``orders.receipts.ReceiptContent`` as JSON): the
    e-mail and every PDF download are rendered from it, so a receipt never changes after issue,
    whatever later happens to the merchant, card or campaign. One per order (a retried payment
    task issues none more), and one per number within a merchant.
    """

    merchant = models.ForeignKey(
        "catalog.Merchant", on_delete=models.PROTECT, related_name="receipts"
    )
    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="receipt")
    number = models.PositiveIntegerField()
    # The number as printed (``orders.receipts.document_reference``): PREFIX-R-000123.
    reference = models.CharField(max_length=64, unique=True)
    issued_at = models.DateTimeField()
    content = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "number"], name="receipt_number_once"),
            models.CheckConstraint(condition=Q(number__gte=1), name="receipt_number_positive"),
        ]

    def __str__(self) -> str:
        return f"Receipt {self.reference}"


class CreditNote(models.Model):
    """The numbered credit note of a refund that went through, referring to the order's receipt
    (DESIGN §3.8): numbered in the merchant's ``credit_note`` series in the transaction that
    records the refund as given, its content kept as issued (``orders.receipts``, the receipt's
    shape). One per refund."""

    merchant = models.ForeignKey(
        "catalog.Merchant", on_delete=models.PROTECT, related_name="credit_notes"
    )
    refund = models.OneToOneField(
        "orders.Refund", on_delete=models.PROTECT, related_name="credit_note"
    )
    # The receipt it gives money back on (an order paid before receipts existed has none).
    receipt = models.ForeignKey(
        Receipt, on_delete=models.PROTECT, null=True, blank=True, related_name="credit_notes"
    )
    number = models.PositiveIntegerField()
    reference = models.CharField(max_length=64, unique=True)  # PREFIX-C-000007
    issued_at = models.DateTimeField()
    content = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "number"], name="credit_note_number_once"),
            models.CheckConstraint(condition=Q(number__gte=1), name="credit_note_number_positive"),
        ]

    def __str__(self) -> str:
        return f"Credit note {self.reference}"


class TaxRate(models.Model):
    """A sales-tax rate by destination (DESIGN §3.8), read by ``orders.tax.table.TableTax``.

    A row without ``zip_prefix`` is the state's rate; a row with one (the first three digits of
    the ZIP code) is a local rate added on top for that prefix, an approximation of the local
    jurisdictions it covers. Loaded from ``orders/tax/rates/`` by a data migration, replaced by
    ``tax_rates_import``.
    """

    state = models.CharField(max_length=2)
    zip_prefix = models.CharField(max_length=3, blank=True)
    jurisdiction = models.CharField(max_length=100)
    rate = models.DecimalField(max_digits=7, decimal_places=5)
    source = models.CharField(max_length=200)
    effective_date = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["state", "zip_prefix", "jurisdiction"], name="taxrate_unique"
            ),
            models.CheckConstraint(
                condition=Q(rate__gte=0) & Q(rate__lt=1), name="taxrate_rate_fraction"
            ),
            models.CheckConstraint(condition=Q(state__regex=r"^[A-Z]{2}$"), name="taxrate_state"),
            models.CheckConstraint(
                condition=Q(zip_prefix="") | Q(zip_prefix__regex=r"^[0-9]{3}$"),
                name="taxrate_zip_prefix",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.jurisdiction} {self.rate}"


class DisputeStatus(models.TextChoices):
    OPENED = "opened", "Opened"
    RESOLVED_REFUND_ON_RETURN = "resolved_refund_on_return", "Refund on return"
    RESOLVED_REFUND = "resolved_refund", "Refunded without return"
    REJECTED = "rejected", "Rejected"
    ESCALATED = "escalated", "Escalated to the operator"


class Dispute(ConcurrentTransitionMixin, TimeStampedModel):
    """A cardholder's "Not me" on an order that has shipped (DESIGN §3.4, §8): a case the
    merchant's staff answer by ``deadline`` (``HASHCART["DISPUTE_DAYS"]`` after it opened), by a
    refund on return, a refund without return, or a rejection with a reason; the cardholder may
    escalate a rejection to the operator. One case per order (the one-to-one key): a second
    "Not me" finds it. Written by ``orders.services.disputes``.
    """

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="dispute")
    # The order's merchant, copied: the back office lists a merchant's cases by it.
    merchant = models.ForeignKey(
        "catalog.Merchant", on_delete=models.PROTECT, related_name="disputes"
    )
    status = FSMField(
        max_length=32,
        choices=DisputeStatus.choices,
        default=DisputeStatus.OPENED,
        protected=True,
    )
    opened_at = models.DateTimeField()
    deadline = models.DateTimeField()
    # What staff told the buyer when resolving it: the rejection's reason, or a note.
    note = models.CharField(max_length=500, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [
            ("refund_dispute", "Can resolve disputes by a refund without return"),
            ("refund_dispute_on_return", "Can resolve disputes by a refund on return"),
            ("reject_dispute", "Can reject disputes"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in DisputeStatus]),
                name="dispute_status_known",
            ),
            models.CheckConstraint(
                condition=Q(deadline__gt=F("opened_at")), name="dispute_deadline_after_opening"
            ),
            # A rejection always says why (the buyer sees it, and may escalate it).
            models.CheckConstraint(
                condition=~Q(status__in=["rejected", "escalated"]) | ~Q(note=""),
                name="dispute_rejection_has_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "status", "deadline"], name="dispute_queue_idx"),
            models.Index(fields=["status", "deadline"], name="dispute_status_idx"),
        ]

    def __str__(self) -> str:
        return f"Dispute of order {self.order_id} ({self.status})"

    @transition(
        field=status, source=DisputeStatus.OPENED, target=DisputeStatus.RESOLVED_REFUND_ON_RETURN
    )
    def refund_on_return(self) -> None:
        """Staff will refund once the goods come back: a return is opened, approved."""

    @transition(field=status, source=DisputeStatus.OPENED, target=DisputeStatus.RESOLVED_REFUND)
    def refund(self) -> None:
        """Staff refunded what was left to refund, without asking for the goods back."""

    @transition(field=status, source=DisputeStatus.OPENED, target=DisputeStatus.REJECTED)
    def reject(self) -> None:
        """Staff rejected the case, with a reason the buyer sees."""

    @transition(field=status, source=DisputeStatus.REJECTED, target=DisputeStatus.ESCALATED)
    def escalate(self) -> None:
        """The buyer asked the operator to look at the rejection."""


class ReturnStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    APPROVED = "approved", "Approved"
    REFUSED = "refused", "Refused"
    LABEL_BOUGHT = "label_bought", "Return label sent"
    RECEIVED = "received", "Received back"
    REFUNDED = "refunded", "Refunded"


# Returns still under way: at most one per order (``return_one_open_per_order``).
OPEN_RETURN_STATUSES = (
    ReturnStatus.REQUESTED,
    ReturnStatus.APPROVED,
    ReturnStatus.LABEL_BOUGHT,
    ReturnStatus.RECEIVED,
)


class Return(ConcurrentTransitionMixin, TimeStampedModel):
    """Goods sent back for a refund (DESIGN §3.4): asked for by the buyer within
    ``HASHCART["RETURN_DAYS"]`` of delivery, or opened approved by staff resolving a dispute by
    a refund on return. Staff approve (saying whether the unit goes back to stock) or refuse it
    with a note the buyer reads; an approved return gets a label from the carrier (bought by
    ``fulfillment``, which records it here through ``orders.services.returns``); when the carrier
    delivers it back, or staff mark it received, the refund of what is left runs
    (``order_refund``), and the return is ``refunded`` when the gateway confirms it.
    """

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="returns")
    # The order's merchant, copied: the back office lists a merchant's returns by it.
    merchant = models.ForeignKey(
        "catalog.Merchant", on_delete=models.PROTECT, related_name="returns"
    )
    dispute = models.OneToOneField(
        Dispute, on_delete=models.PROTECT, null=True, blank=True, related_name="return_case"
    )
    status = FSMField(
        max_length=16,
        choices=ReturnStatus.choices,
        default=ReturnStatus.REQUESTED,
        protected=True,
    )
    reason = models.CharField(max_length=500)
    requested_at = models.DateTimeField()
    # What staff told the buyer when approving or refusing (a refusal always says why).
    note = models.CharField(max_length=500, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Staff said the unit goes back to stock when the goods arrive.
    restock = models.BooleanField(default=False)
    # The return label, as for an outbound shipment (``fulfillment.models.Shipment``).
    carrier = models.CharField(max_length=32, blank=True)
    tracking_number = models.CharField(max_length=255, blank=True)
    label_url = models.URLField(max_length=2048, blank=True)
    carrier_reference = models.CharField(max_length=255, blank=True)
    label_claimed_until = models.DateTimeField(null=True, blank=True)
    label_bought_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    refund = models.OneToOneField(
        Refund, on_delete=models.PROTECT, null=True, blank=True, related_name="return_case"
    )

    class Meta:
        permissions = [
            ("approve_return", "Can approve or refuse returns"),
            ("receive_return", "Can mark returns received"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["order"],
                condition=~Q(status="refused"),
                name="return_one_open_per_order",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in ReturnStatus]),
                name="return_status_known",
            ),
            models.CheckConstraint(
                condition=~Q(status="refused") | ~Q(note=""), name="return_refusal_has_note"
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "status", "-id"], name="return_queue_idx"),
            models.Index(fields=["status", "-id"], name="return_status_idx"),
            models.Index(fields=["carrier_reference"], name="return_carrier_ref_idx"),
        ]

    def __str__(self) -> str:
        return f"Return of order {self.order_id} ({self.status})"

    @transition(field=status, source=ReturnStatus.REQUESTED, target=ReturnStatus.APPROVED)
    def approve(self) -> None:
        """Staff accept the goods back; a label is bought next."""

    @transition(field=status, source=ReturnStatus.REQUESTED, target=ReturnStatus.REFUSED)
    def refuse(self) -> None:
        """Staff refuse the return, with a note the buyer reads."""

    @transition(field=status, source=ReturnStatus.APPROVED, target=ReturnStatus.LABEL_BOUGHT)
    def buy_label(self) -> None:
        """The carrier sold the return label; the buyer is e-mailed it."""

    @transition(
        field=status,
        source=[ReturnStatus.APPROVED, ReturnStatus.LABEL_BOUGHT],
        target=ReturnStatus.RECEIVED,
    )
    def receive(self) -> None:
        """The goods came back (the carrier delivered them, or staff say so); the refund runs."""

    @transition(field=status, source=ReturnStatus.RECEIVED, target=ReturnStatus.REFUNDED)
    def refund_done(self) -> None:
        """The gateway confirmed the return's refund."""


class WaitlistStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    # Given a pending order (``WaitlistEntry.order``) when a unit came back.
    PROMOTED = "promoted", "Promoted to an order"
    LEFT = "left", "Left by the cardholder"
    # No longer eligible when their turn came (blocked, over a limit, no card): told by e-mail.
    SKIPPED = "skipped", "Skipped: no longer eligible"
    # The campaign ended with the entry still waiting: told by e-mail.
    CLOSED = "closed", "Closed with the campaign"


# The only moves an entry makes, all from ``waiting`` (``orders.services.waitlist`` changes the
# status by compare-and-set on ``waiting``, so each happens once).
WAITLIST_TRANSITIONS = {
    WaitlistStatus.WAITING: (
        WaitlistStatus.PROMOTED,
        WaitlistStatus.LEFT,
        WaitlistStatus.SKIPPED,
        WaitlistStatus.CLOSED,
    ),
}


class WaitlistEntry(TimeStampedModel):
    """A purchase post that met a sold-out campaign from an eligible cardholder (issue 13).

    The queue of a campaign is its ``waiting`` entries in post order (``posted_at``, then
    ``post_id``: the inbox post's row id breaks ties), first in, first out. At most one waiting
    entry per cardholder and campaign (a constraint): a second post while waiting is a
    duplicate. An entry asks for one unit (``quantity`` is 1 for now).

    One queue per campaign, whatever the variants: promotion reads each waiting post again and
    passes over an entry whose variant has no unit free (``orders.services.waitlist``).
    ``variant`` records what the post asked for when it joined, for staff's demand per variant.
    """

    merchant = models.ForeignKey(
        "catalog.Merchant", on_delete=models.PROTECT, related_name="waitlist_entries"
    )
    # No foreign key constraint in the database: its check takes FOR KEY SHARE on the campaign's
    # row, which would queue the sold-out path (joining, decided without locks) behind every
    # holder of ``campaigns_lock``. Campaigns are never deleted once referenced (PROTECT).
    campaign = models.ForeignKey(
        "catalog.Campaign",
        on_delete=models.PROTECT,
        related_name="waitlist_entries",
        db_constraint=False,
    )
    cardholder = models.ForeignKey(
        "accounts.Cardholder", on_delete=models.PROTECT, related_name="waitlist_entries"
    )
    post = models.OneToOneField(
        "social.Post", on_delete=models.PROTECT, related_name="waitlist_entry"
    )
    # The post's time, copied: the queue's order without a join.
    posted_at = models.DateTimeField()
    # The variant the post names (or the buyer's saved choices fill) when it joined, for staff's
    # demand per variant; blank when the product has no options or the post names none.
    # Promotion reads the post again (``orders.services.waitlist``), so this is not binding.
    variant = models.ForeignKey(
        "catalog.ProductVariant",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="waitlist_entries",
    )
    quantity = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(
        max_length=16, choices=WaitlistStatus.choices, default=WaitlistStatus.WAITING
    )
    order = models.OneToOneField(
        Order,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="waitlist_entry",
    )
    # When it left ``waiting``, and why (skipped or closed), for the buyer's page and support.
    ended_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name_plural = "waitlist entries"
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "cardholder"],
                condition=Q(status="waiting"),
                name="waitlist_one_waiting_per_buyer_campaign",
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="waitlist_quantity_positive"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in WaitlistStatus]),
                name="waitlist_status_known",
            ),
            models.CheckConstraint(
                condition=Q(status="promoted", order__isnull=False)
                | (~Q(status="promoted") & Q(order__isnull=True)),
                name="waitlist_order_iff_promoted",
            ),
        ]
        indexes = [
            models.Index(
                fields=["campaign", "posted_at", "post"],
                condition=Q(status="waiting"),
                name="waitlist_queue_idx",
            ),
            models.Index(fields=["cardholder", "-id"], name="waitlist_cardholder_idx"),
            models.Index(fields=["merchant", "-id"], name="waitlist_merchant_idx"),
        ]

    def __str__(self) -> str:
        return f"Waitlist entry {self.pk} ({self.status})"


class Invitation(models.Model):
    """An invitation to link, answered once to an unlinked author per campaign (DESIGN §3.7).

    Unique per (platform, author, campaign): deciders racing on two posts of one author insert
    one row, and only the post whose row it is gets the public invitation. A row whose reply the
    reply budget could not afford is deleted again, so a later post may get one.
    """

    platform = models.CharField(max_length=16)
    author_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    # No foreign key constraint in the database, as for ``WaitlistEntry.campaign``: its check
    # would queue the batch deciding strangers' posts behind every holder of ``campaigns_lock``.
    campaign = models.ForeignKey(
        "catalog.Campaign", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    post = models.OneToOneField("social.Post", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            # On a digest of the author id, which may be longer than an index entry holds.
            models.UniqueConstraint(
                "platform", MD5("author_id"), "campaign", name="invitation_once_per_campaign"
            ),
        ]

    def __str__(self) -> str:
        return f"invitation of {self.platform}:{self.author_id} to campaign {self.campaign_id}"
