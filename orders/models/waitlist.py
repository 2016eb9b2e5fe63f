"""The waitlist of sold-out campaigns, and the invitations to link sent to unlinked authors
(issue 13)."""

from django.db import models
from django.db.models import Q
from django.db.models.functions import MD5

from core.models import TimeStampedModel
from orders.models.order import Order
from social.models import EXTERNAL_ID_MAX_LENGTH


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
