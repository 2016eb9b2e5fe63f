"""Social platforms: the brand accounts, the inbox of posts, feed cursors and the reply outbox.

``social`` knows nothing about orders: it stores what the platforms deliver and sends what it is
asked to send (DESIGN §2). Decisions about a post are written back as its ``outcome``.
"""

from typing import ClassVar

from django.db import models
from django.db.models import Q
from django.db.models.functions import MD5

from core.models import TimeStampedModel

# How long what platforms send may be (DESIGN §4: every stored length fits). Values are stored
# whole up to these and cut deliberately beyond, at ingest (``core.lengths``):
# a person's platform id: Mastodon keys people on their account URI, up to a URL's 2,048;
EXTERNAL_ID_MAX_LENGTH = 2048
# a handle: a Mastodon ``acct`` is ``user@domain`` of a remote server, as long as it likes;
HANDLE_MAX_LENGTH = 2048
# a post's id (X: 19 digits; Mastodon: a server's string id, ULIDs on some servers; Bluesky:
# an AT URI, ``at://<did>/app.bsky.feed.post/<rkey>``, about 70 characters).
POST_ID_MAX_LENGTH = 255


class Platform(models.TextChoices):
    SANDBOX = "sandbox", "Sandbox"
    X = "x", "X"
    MASTODON = "mastodon", "Mastodon"
    BLUESKY = "bluesky", "Bluesky"


class PlatformAccount(TimeStampedModel):
    """The brand account on one platform: its feed is polled and it sends the replies."""

    # Re-encrypted by ``rotate_credentials`` (``core.crypto``).
    encrypted_fields: ClassVar[tuple[str, ...]] = ("credentials_encrypted",)

    platform = models.CharField(max_length=16, choices=Platform.choices)
    platform_user_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    handle = models.CharField(max_length=HANDLE_MAX_LENGTH)
    enabled = models.BooleanField(default=True)
    # Token bucket for replies (DESIGN §5.3); X allows 100 posts per 15 minutes per user token.
    reply_budget = models.PositiveIntegerField(default=100)
    reply_budget_seconds = models.PositiveIntegerField(default=15 * 60)
    # The bucket's state: tokens left at ``bucket_updated_at`` (null: a full bucket).
    bucket_tokens = models.FloatField(null=True, blank=True)
    bucket_updated_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Secrets of the account (OAuth tokens), encrypted with HASHCART_CREDENTIALS_KEY
    # (``social.credentials``): never stored or shown in clear.
    credentials_encrypted = models.TextField(blank=True, editable=False)
    feed_mode = models.CharField(
        max_length=16,
        choices=[("mentions", "Mentions"), ("search", "Mentions and recent search")],
        default="mentions",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "platform_user_id"], name="platformaccount_unique_user"
            ),
        ]

    def __str__(self) -> str:
        return f"@{self.handle} ({self.get_platform_display()})"


class PostKind(models.TextChoices):
    ORIGINAL = "original", "Original"
    REPLY = "reply", "Reply"
    REPOST = "repost", "Repost"
    QUOTE = "quote", "Quote"


# A post's ``outcome`` is written by whoever decides it (orders: ``orders.outcomes``), as text
# social does not interpret: a new outcome costs social no migration. Social knows two values:
# undecided (the indexed marker the deciders look for) and ``malformed``, which it records
# itself for an item it could not read, stored as it came, under ``raw``, and never decided
# (DESIGN §4).
OUTCOME_UNDECIDED = ""
OUTCOME_MALFORMED = "malformed"


class Post(models.Model):
    """The inbox: every post a feed delivered, stored before anything else is done with it.

    ``(platform, post_id)`` is unique, so a post delivered twice is stored once. ``root_id`` is
    the first post of an edit chain (the post itself when never edited). ``outcome`` is
    ``OUTCOME_UNDECIDED`` until the post is decided, and decided posts are never decided again.
    """

    platform = models.CharField(max_length=16, choices=Platform.choices)
    account = models.ForeignKey(PlatformAccount, on_delete=models.PROTECT, related_name="posts")
    post_id = models.CharField(max_length=POST_ID_MAX_LENGTH)
    root_id = models.CharField(max_length=POST_ID_MAX_LENGTH)
    author_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    author_handle = models.CharField(max_length=HANDLE_MAX_LENGTH)
    text = models.TextField()
    hashtags = models.JSONField(default=list, blank=True)
    # Hashtags inside content this post quotes: never a purchase (DESIGN §3.2, ignored_repost).
    quoted_hashtags = models.JSONField(default=list, blank=True)
    kind = models.CharField(max_length=16, choices=PostKind.choices, default=PostKind.ORIGINAL)
    # Who may see the post (Mastodon's words); a private post is answered privately.
    visibility = models.CharField(max_length=16, default="public")
    posted_at = models.DateTimeField(help_text="The platform's timestamp of the post.")
    received_at = models.DateTimeField(auto_now_add=True)
    raw = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=32, blank=True, default=OUTCOME_UNDECIDED)
    decided_at = models.DateTimeField(null=True, blank=True)
    # The campaign a purchase post asked for, recorded by the decision (an id, not a foreign key:
    # social knows nothing of catalog). Dashboards count a campaign's posts by it, not by scanning.
    campaign_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "post_id"], name="post_unique_platform_id"),
            models.CheckConstraint(
                condition=(Q(outcome=OUTCOME_UNDECIDED) & Q(decided_at__isnull=True))
                | (~Q(outcome=OUTCOME_UNDECIDED) & Q(decided_at__isnull=False)),
                name="post_outcome_with_decided_at",
            ),
        ]
        indexes = [
            models.Index(fields=["platform", "root_id"], name="post_root_idx"),
            models.Index(
                fields=["id"], condition=Q(outcome=OUTCOME_UNDECIDED), name="post_undecided_idx"
            ),
            # Covers the dashboard's count (outcome included): an index-only scan on PostgreSQL.
            models.Index(
                fields=["campaign_id", "posted_at"],
                include=["outcome"],
                condition=Q(campaign_id__isnull=False),
                name="post_campaign_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.platform}:{self.post_id} by @{self.author_handle}"


class FeedKind(models.TextChoices):
    MENTIONS = "mentions", "Mentions"
    SEARCH = "search", "Hashtag search"


class FeedCursor(models.Model):
    """Where one feed of a brand account has been read up to.

    ``cursor`` is the platform's opaque position; ``high_water_mark`` is the platform time up to
    which every post is known to be stored (the expiry sweep trusts nothing later, DESIGN §3.3).
    """

    account = models.ForeignKey(PlatformAccount, on_delete=models.CASCADE, related_name="cursors")
    feed = models.CharField(max_length=16, choices=FeedKind.choices, default=FeedKind.MENTIONS)
    # Opaque and platform-made (an id, or a pagination token): stored whole, whatever its length.
    cursor = models.TextField(blank=True)
    high_water_mark = models.DateTimeField(null=True, blank=True)
    polled_at = models.DateTimeField(null=True, blank=True)
    stopped = models.BooleanField(default=False, help_text="Usage-capped: not polled until reset.")
    last_error = models.TextField(blank=True)
    # Set when a read fails in a way that needs an operator (the platform refused it with a 4xx,
    # the account's authorisation, an unexpected error), cleared by the next read that succeeds.
    # /healthz is unhealthy while it is set: a refused read shows at once, not after the lag.
    failing_since = models.DateTimeField(null=True, blank=True)
    # One poller per feed: a lease taken by compare-and-set, lapsing if its holder dies.
    lease_token = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "feed"], name="feedcursor_unique_feed"),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.feed}"


class ReplyPriority(models.IntegerChoices):
    """Lower sends first (DESIGN §5.3)."""

    CONFIRMATION_REQUEST = 0, "Confirmation request"
    RESULT = 1, "Confirmation or decline"
    OTHER = 2, "Other"


class ReplyStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


class Reply(TimeStampedModel):
    """The outbox: a reply written in the same transaction as the decision that causes it.

    ``(in_reply_to, kind)`` is unique, so deciding a post twice cannot queue a second reply;
    ``(account, text)`` is unique, so no two identical texts are ever sent (X rejects them, and a
    repeated generic answer to the same person says nothing new).
    """

    account = models.ForeignKey(PlatformAccount, on_delete=models.PROTECT, related_name="replies")
    in_reply_to = models.ForeignKey(Post, on_delete=models.PROTECT, related_name="replies")
    kind = models.CharField(max_length=32)
    text = models.TextField()
    priority = models.PositiveSmallIntegerField(
        choices=ReplyPriority.choices, default=ReplyPriority.OTHER
    )
    status = models.CharField(
        max_length=16, choices=ReplyStatus.choices, default=ReplyStatus.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    platform_reply_id = models.CharField(max_length=POST_ID_MAX_LENGTH, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "replies"
        constraints = [
            models.UniqueConstraint(fields=["in_reply_to", "kind"], name="reply_unique_per_post"),
            # On a digest of the text: a reply naming a 2,048-character handle can be larger
            # than a B-tree index entry holds (2,704 bytes on PostgreSQL).
            models.UniqueConstraint("account", MD5("text"), name="reply_unique_text"),
            models.CheckConstraint(
                condition=~Q(status="sent") | (Q(sent_at__isnull=False) & ~Q(platform_reply_id="")),
                name="reply_sent_has_platform_id",
            ),
        ]
        indexes = [
            models.Index(
                fields=["account", "priority", "id"],
                condition=Q(status="queued"),
                name="reply_queued_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"reply to {self.in_reply_to_id} ({self.kind}, {self.status})"
