"""The money and messages around an order: payment operations and refunds (the payment outbox),
the e-mail outbox, reconciliation, numbered receipts and credit notes, and sales-tax rates
(DESIGN §3.6, §3.8)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.lengths import EMAIL_SUBJECT_MAX_LENGTH
from core.models import TimeStampedModel
from orders.models.order import Order


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
        indexes = [
            # The sales report's refunds by the day they went through (``orders.reports``):
            # only succeeded ones, so the index stays as small as the money given back.
            models.Index(
                fields=["succeeded_at"],
                condition=Q(status="succeeded"),
                name="refund_succeeded_idx",
            ),
        ]

    def __str__(self) -> str:
        code = self.order.confirmation_code
        return f"Refund {self.number} of order #{code}: {self.amount} ({self.status})"


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
            # The sales report leaves out shipped orders whose capture has not gone through
            # (``orders.reports``): the few open rows of the outbox by order, not a scan of
            # every operation ever run. Same statuses as ``orders.reports._OPEN_STATUSES``.
            models.Index(
                fields=["order"],
                condition=Q(status__in=["pending", "processing", "failed"]),
                name="payment_op_open_idx",
            ),
        ]

    def __str__(self) -> str:
        code = self.order.confirmation_code
        return f"{self.operation} of order #{code} ({self.status})"


# The kind of the e-mails that alert a merchant's staff (``Notification`` with no cardholder).
STAFF_ALERT = "staff_alert"


class Notification(TimeStampedModel):
    """The e-mail outbox: one message to a cardholder, sent after the transaction commits.

    ``key`` is unique (for example ``order_created:42``), so a decision made twice e-mails once.
    Orders' e-mails name their order; accounts' (link, card and address changes) have none.
    Queued by ``orders.services.notifications.email_queue``.

    Staff alerts (``STAFF_ALERT``, ``orders.services.alerts``) ride the same retried outbox to a
    merchant's alert recipients: they alone have no cardholder (a check constraint).
    """

    key = models.CharField(max_length=100, unique=True)
    cardholder = models.ForeignKey(
        "accounts.Cardholder",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
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
        constraints = [
            models.CheckConstraint(
                condition=Q(cardholder__isnull=False) | Q(kind=STAFF_ALERT),
                name="notification_to_cardholder_or_staff_alert",
            ),
        ]
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
