"""Two-day shipments of paid orders (DESIGN §7)."""

from django.db import models
from django.db.models import F, Q
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from core.models import TimeStampedModel

# What staff may type and carriers may send (the longest known number is 34 characters; this
# leaves room for any carrier). Longer is refused at entry, never cut: it is looked up.
TRACKING_NUMBER_MAX_LENGTH = 255
CARRIER_MAX_LENGTH = 32


class ShipmentStatus(models.TextChoices):
    AWAITING_LABEL = "awaiting_label", "Awaiting label"
    LABEL_BOUGHT = "label_bought", "Label bought"
    IN_TRANSIT = "in_transit", "In transit"
    DELIVERED = "delivered", "Delivered"
    EXCEPTION = "exception", "Exception"
    CANCELLED = "cancelled", "Cancelled"


class Shipment(ConcurrentTransitionMixin, TimeStampedModel):
    """The shipment of one paid order: ships by ``ship_by``, arrives by ``promised_delivery``."""

    order = models.OneToOneField("orders.Order", on_delete=models.PROTECT, related_name="shipment")
    merchant = models.ForeignKey(
        "catalog.Merchant", on_delete=models.PROTECT, related_name="shipments"
    )
    status = FSMField(
        max_length=16,
        choices=ShipmentStatus.choices,
        default=ShipmentStatus.AWAITING_LABEL,
        protected=True,
    )
    service = models.CharField(max_length=32, default="two_day")
    ship_by = models.DateField()
    promised_delivery = models.DateField()
    carrier = models.CharField(max_length=CARRIER_MAX_LENGTH, blank=True)
    tracking_number = models.CharField(max_length=TRACKING_NUMBER_MAX_LENGTH, blank=True)
    label_url = models.URLField(max_length=2048, blank=True)  # the carrier's (signed) URL
    # The carrier's own id for the shipment (EasyPost's ``shp_…``), recorded before buying so
    # that a retried purchase finds the label it already bought. Only a label Hashcart bought
    # has one (a label recorded by hand clears it): carrier tracking is matched by it alone.
    carrier_reference = models.CharField(max_length=255, blank=True)
    # One buyer of the label at a time: a lease taken by compare-and-set, lapsing if it dies.
    label_claimed_until = models.DateTimeField(null=True, blank=True)
    exception_reason = models.CharField(max_length=200, blank=True)
    label_bought_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(promised_delivery__gt=F("ship_by")),
                name="shipment_delivery_after_ship_by",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in ShipmentStatus]),
                name="shipment_status_known",
            ),
            # A carrier never issues one tracking number twice for labels Hashcart bought; the
            # numbers merchants type in (``mark_shipped``) are not trusted to be unique.
            models.UniqueConstraint(
                fields=["carrier", "tracking_number"],
                condition=~Q(carrier_reference="") & ~Q(tracking_number=""),
                name="shipment_bought_tracking_unique",
            ),
        ]
        permissions = [("ship_shipment", "Can buy labels and mark shipments shipped")]
        indexes = [
            models.Index(fields=["merchant", "-id"], name="shipment_merchant_idx"),
            models.Index(fields=["merchant", "status", "ship_by"], name="shipment_queue_idx"),
            models.Index(fields=["status", "-id"], name="shipment_status_idx"),
            models.Index(fields=["tracking_number"], name="shipment_tracking_idx"),
        ]

    def __str__(self) -> str:
        # By the order's code, the one order number staff see (one query if the order is not
        # loaded: lists select it with the shipment).
        return f"Shipment of order #{self.order.confirmation_code} ({self.get_status_display()})"

    @property
    def progress(self) -> str:
        """Where the parcel is, in the words every view prints for it (the shipment admin, the
        order's pages for staff and buyer): its order says "Shipped" from the moment the label
        is bought (that is when the payment is captured), but the parcel leaves only when the
        carrier scans it, so a shipped order shows these words rather than "Shipped" alone."""
        match self.status:
            case ShipmentStatus.AWAITING_LABEL:
                day = self.ship_by
                return f"Awaiting label, ships by {day:%a} {day.day} {day:%b}"
            case ShipmentStatus.LABEL_BOUGHT:
                return "Label bought, awaiting the carrier's scan"
            case ShipmentStatus.IN_TRANSIT:
                return "In transit with the carrier"
            case ShipmentStatus.EXCEPTION:
                return f"Delivery problem: {self.exception_reason or 'reported by the carrier'}"
        return str(self.get_status_display())  # delivered, cancelled

    @transition(
        field=status, source=ShipmentStatus.AWAITING_LABEL, target=ShipmentStatus.LABEL_BOUGHT
    )
    def buy_label(self) -> None:
        """A label was bought from the carrier (the payment is captured then)."""

    @transition(field=status, source=ShipmentStatus.LABEL_BOUGHT, target=ShipmentStatus.IN_TRANSIT)
    def hand_over(self) -> None:
        """The carrier scanned the parcel."""

    @transition(
        field=status,
        source=[ShipmentStatus.IN_TRANSIT, ShipmentStatus.EXCEPTION],
        target=ShipmentStatus.DELIVERED,
    )
    def deliver(self) -> None:
        """The carrier reported delivery."""

    @transition(
        field=status,
        source=[ShipmentStatus.LABEL_BOUGHT, ShipmentStatus.IN_TRANSIT],
        target=ShipmentStatus.EXCEPTION,
    )
    def report_exception(self) -> None:
        """The carrier reported a problem (address, damage, delay)."""

    @transition(
        field=status,
        source=[ShipmentStatus.AWAITING_LABEL, ShipmentStatus.LABEL_BOUGHT],
        target=ShipmentStatus.CANCELLED,
    )
    def cancel(self) -> None:
        """The order was cancelled before the parcel left."""


class TrackingEvent(models.Model):
    """What the carrier said about a shipment, once per (time, status): polls and webhooks may
    report the same event more than once."""

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="events")
    occurred_at = models.DateTimeField()
    status = models.CharField(max_length=32)
    description = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=16, default="poll")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shipment", "occurred_at", "status"], name="tracking_event_once"
            ),
        ]
        indexes = [models.Index(fields=["shipment", "occurred_at"], name="tracking_shipment_idx")]

    def __str__(self) -> str:
        return f"{self.status} at {self.occurred_at:%Y-%m-%d %H:%M}"


class ClosureDate(models.Model):
    """A day carriers and warehouses are closed beyond the public holidays (operators set
    them in the admin): not a business day for ship-by or delivery promises."""

    day = models.DateField(unique=True)
    reason = models.CharField(max_length=200)

    class Meta:
        ordering = ["day"]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} ({self.reason})"
