"""The fake world's own tables (DESIGN §2): the sandbox network, the sandbox gateway's ledger
and the sandbox carrier's labels.

The network stands in for a real platform in the demo, the tests and the benchmarks: users with
handles and stable numeric ids, posts that mention users, replies, reposts, quotes and edits.

The tables keep the names they had in the apps they came from (``social``, ``orders``,
``fulfillment``): moving them here changed no data (migration 0001 is state only).
"""

from django.db import models
from django.db.models.functions import Lower


class SandboxUser(models.Model):
    """A sandbox account. ``id`` is the immutable platform user id; the handle may change."""

    handle = models.CharField(max_length=50)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "social_sandboxuser"
        constraints = [
            models.UniqueConstraint(Lower("handle"), name="sandboxuser_unique_handle_ci"),
        ]

    def __str__(self) -> str:
        return f"@{self.handle}"


class SandboxPost(models.Model):
    """A post on the sandbox network. An edit is a new post whose ``edit_of`` is the original."""

    author = models.ForeignKey(SandboxUser, on_delete=models.CASCADE, related_name="posts")
    text = models.TextField()
    created_at = models.DateTimeField(db_index=True)
    mentions = models.ManyToManyField(SandboxUser, related_name="mentioned_in", blank=True)
    in_reply_to = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replies"
    )
    repost_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reposts"
    )
    quote_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="quotes"
    )
    edit_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="edits"
    )
    # Like Mastodon's Idempotency-Key: a retried send returns the post made the first time.
    idempotency_key = models.CharField(max_length=100, null=True, blank=True, unique=True)

    class Meta:
        db_table = "social_sandboxpost"

    def __str__(self) -> str:
        return f"{self.pk} @{self.author.handle}: {self.text[:40]}"


class SandboxLedgerEntry(models.Model):
    """The sandbox payment gateway's own books: one row per idempotency key it has seen.

    ``calls`` counts how often the key was presented, so tests can see a retried call charge once.
    """

    idempotency_key = models.CharField(max_length=64, unique=True)
    operation = models.CharField(max_length=16)
    token = models.CharField(max_length=255)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    approved = models.BooleanField()
    reference = models.CharField(max_length=100)
    decline_code = models.CharField(max_length=32, blank=True)
    calls = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "orders_sandboxledgerentry"
        verbose_name_plural = "sandbox ledger entries"

    def __str__(self) -> str:
        return f"{self.operation} {self.amount} {self.currency} ({self.reference})"


class SandboxLabel(models.Model):
    """A label of the sandbox carrier: its tracking number and when it was bought."""

    # The shipment's id, or a return's (``for_return``): one label each.
    shipment_id = models.BigIntegerField()
    for_return = models.BooleanField(default=False)
    tracking_number = models.CharField(max_length=32, unique=True)
    bought_at = models.DateTimeField()
    ends_in_exception = models.BooleanField(default=False)

    class Meta:
        db_table = "fulfillment_sandboxlabel"
        constraints = [
            models.UniqueConstraint(
                fields=["shipment_id", "for_return"], name="sandbox_label_once"
            ),
        ]

    def __str__(self) -> str:
        return self.tracking_number
