"""After-sale cases of an order: disputes ("Not me" after shipping) and returns (issue 12)."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from core.models import TimeStampedModel
from orders.models.money import Refund
from orders.models.order import Order


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
        code = self.order.confirmation_code
        return f"Case about order #{code} ({self.get_status_display().lower()})"

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
        return (
            f"Return of order #{self.order.confirmation_code} ({self.get_status_display().lower()})"
        )

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
