"""A batch of inbox posts being decided: what it read, what it decided, what it will write.

``batch_load`` is the batch's first read and its first lock: the undecided posts among the
ids, ``FOR UPDATE SKIP LOCKED`` (a post another decider holds is left to it), each with its
brand account's user id; the decided posts of their edit chains; then the campaign index of
their platforms (``catalog.selectors.campaign_indexes``, kept between batches while the
campaigns do not change).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from accounts.selectors import Buyer
from catalog.grammar import VariantChoice
from catalog.models import Campaign
from catalog.selectors import CampaignIndex, campaign_indexes
from orders.models import Notification, Order, OrderEvent, PaymentOperation
from social.models import Post, ReplyPriority
from social.selectors import posts_decided_roots
from social.services import ReplyDraft, posts_lock_undecided

if TYPE_CHECKING:
    from accounts.models import Cardholder

# What deciding reads of a post: not the text or the raw payload, which can be large.
POST_FIELDS = (
    "platform",
    "account_id",
    "post_id",
    "root_id",
    "author_id",
    "author_handle",
    "hashtags",
    "quoted_hashtags",
    "kind",
    "posted_at",
)


@dataclass
class Purchase:
    """A post whose first purchase hashtag is ``campaign``'s."""

    post: Post
    campaign: Campaign


@dataclass
class Eligible:
    """A purchase by a linked cardholder while its campaign runs."""

    post: Post
    campaign: Campaign
    buyer: Buyer
    # What the post asks for (``orders.services.decide.asking``): units, and the variant of a
    # product with options.
    quantity: int = 1
    variant: VariantChoice | None = None


@dataclass
class Batch:
    """One batch's reads, decisions and pending writes."""

    posts: list[Post]
    now: datetime
    campaigns: dict[str, CampaignIndex]
    # Per post: its brand account's platform user id; the posts whose edit chain was decided.
    brand_user_ids: dict[int, str] = field(default_factory=dict)
    edits: set[int] = field(default_factory=set)
    outcomes: dict[int, str] = field(default_factory=dict)
    replies: list[ReplyDraft] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    events: list[OrderEvent] = field(default_factory=list)
    payments: list[PaymentOperation] = field(default_factory=list)
    new_orders: list[tuple[Order, Post]] = field(default_factory=list)
    # The campaign each purchase post asked for, whatever its outcome (the dashboard counts them).
    campaign_of: dict[int, int] = field(default_factory=dict)
    # Purchases by unlinked authors, who may be invited to link (``invites``).
    invites: list[Purchase] = field(default_factory=list)
    # E-mails to cardholders not loaded yet: (cardholder id, build from the cardholder).
    emails: list[tuple[int, Callable[["Cardholder"], Notification]]] = field(default_factory=list)

    def decide(
        self,
        post: Post,
        outcome: str,
        *,
        reply: str | None = None,
        priority: int = ReplyPriority.OTHER,
    ) -> None:
        """Record the post's outcome and, with ``reply``, queue that answer (of the same kind)."""
        self.outcomes[post.pk] = outcome
        if reply is not None:
            self.reply(post, outcome, reply, priority)

    def reply(self, post: Post, kind: str, text: str, priority: int) -> None:
        self.replies.append(ReplyDraft(in_reply_to=post, kind=kind, text=text, priority=priority))


def batch_load(*, post_ids: list[int], now: datetime) -> Batch | None:
    """Lock and read the undecided posts among ``post_ids`` (None if there are none), with their
    brand accounts' user ids and which of them edit a decided post."""
    posts, brand_user_ids = posts_lock_undecided(post_ids=post_ids, fields=POST_FIELDS)
    if not posts:
        return None
    # Edit chains with a decided post, found by their roots (an index scan on the roots named:
    # a subquery per post is planned as a scan of every decided post).
    decided_roots = posts_decided_roots(
        platforms={p.platform for p in posts}, root_ids=[p.root_id for p in posts]
    )
    return Batch(
        posts=posts,
        now=now,
        campaigns=campaign_indexes(platforms={p.platform for p in posts}),
        brand_user_ids=brand_user_ids,
        edits={p.pk for p in posts if (p.platform, p.root_id) in decided_roots},
    )
