"""Classifying a batch's posts: pure, no database (DESIGN §3.2).

``classify`` settles the posts that need no cardholder data (malformed, own, repost, edit, no
campaign) and sorts the rest into purchases, confirmations and link claims. What it needs was
read before: the posts with their brand and edit-chain flags, the campaign index, and the
orders that candidate confirmations may refer to (``confirmation_candidates`` says which codes
to look for).
"""

from dataclasses import dataclass, field

from accounts.services import LinkClaim, link_code_of
from catalog.models import Campaign
from core.codes import CONFIRMATION_CODE
from orders.models import Order
from orders.outcomes import PostOutcome
from orders.services.decide.batch import Batch, Purchase
from social.hashtags import hashtag_key
from social.models import Post, PostKind


@dataclass
class Classified:
    purchases: list[Purchase] = field(default_factory=list)
    # Confirmations: each post with the codes of its author's orders it names.
    confirmations: list[tuple[Post, set[str]]] = field(default_factory=list)
    links: list[LinkClaim] = field(default_factory=list)
    # Posts that matched nothing of ours: ``no_campaign``, or a near miss (``hints``).
    unmatched: list[Post] = field(default_factory=list)


def confirmation_candidates(batch: Batch) -> dict[int, set[str]]:
    """Per post, the codes it writes as ``#<prefix><CODE>`` with a prefix in use on its
    platform (upper-cased for lookup), only those made of the codes' alphabet:
    ``#ConfirmOrder`` holds none."""
    candidates: dict[int, set[str]] = {}
    for post in batch.posts:
        index = batch.campaigns.get(post.platform)
        prefixes = index.prefix_keys(now=batch.now) if index is not None else ()
        codes = {
            code
            for tag in post.hashtags
            for prefix in prefixes
            if (code := CONFIRMATION_CODE.after(hashtag_key(tag), prefix)) is not None
            and CONFIRMATION_CODE.matches(code)
        }
        if codes:
            candidates[post.pk] = codes
    return candidates


def classify(batch: Batch, candidates: dict[int, set[str]], orders: list[Order]) -> Classified:
    """Decide the posts that need no cardholder data; return the purchases, confirmations and
    link claims (``#Link<CODE>``, DESIGN §6).

    A post is a confirmation only when one of its hashtags is ``#<prefix><CODE>`` for an order of
    the post's author on its platform (pending, or expired for the "too late" answer), with that
    order's own campaign prefix: any other hashtag that merely looks like one (another merchant's
    prefix cut from a purchase hashtag, ``#ConfirmOrder``, a prefix ``Link2``…) goes on to linking
    and purchase matching, so no merchant's prefix can swallow others' posts."""
    found = Classified()
    decided_roots: set[tuple[str, str]] = set()
    for post in batch.posts:
        root = (post.platform, post.root_id)
        if not post.author_id.strip():
            # Nobody to link, answer or charge: never "not linked" (issue 10, item 5).
            batch.decide(post, PostOutcome.MALFORMED)
        elif post.author_id == batch.brand_user_ids[post.pk]:
            batch.decide(post, PostOutcome.IGNORED_OWN)
        elif post.kind == PostKind.REPOST:
            batch.decide(post, PostOutcome.IGNORED_REPOST)
        elif post.pk in batch.edits or root in decided_roots:
            batch.decide(post, PostOutcome.IGNORED_EDIT)
        else:
            _sort(batch, found, post, candidates.get(post.pk, set()), orders)
        decided_roots.add(root)  # later edits of this post in the batch are edits
    return found


def _sort(
    batch: Batch, found: Classified, post: Post, candidates: set[str], orders: list[Order]
) -> None:
    post_keys = [hashtag_key(tag) for tag in post.hashtags]
    codes = codes_of_own_orders(post, post_keys, candidates, orders)
    matched = campaign_for(batch, post, post_keys)
    link_code = link_code_of(post_keys)
    if codes:
        found.confirmations.append((post, codes))
    elif matched is None and link_code is not None:
        # A campaign hashtag that happens to look like #Link<CODE> stays a purchase.
        found.links.append(
            LinkClaim(
                key=post.pk,
                code=link_code,
                platform=post.platform,
                author_id=post.author_id,
                author_handle=post.author_handle,
                posted_at=post.posted_at,
            )
        )
    elif matched is not None:
        found.purchases.append(Purchase(post=post, campaign=matched))
        batch.campaign_of[post.pk] = matched.pk
    elif campaign_for(batch, post, [hashtag_key(t) for t in post.quoted_hashtags]):
        # The purchase hashtag is only in what this post quotes.
        batch.decide(post, PostOutcome.IGNORED_REPOST)
    else:
        found.unmatched.append(post)


def codes_of_own_orders(
    post: Post, post_keys: list[str], codes: set[str], orders: list[Order]
) -> set[str]:
    """The ``codes`` for which ``orders`` hold one of the post's author on its platform, written
    with that order's campaign prefix."""
    if not codes:
        return set()
    keys = set(post_keys)
    return {
        o.confirmation_code
        for o in orders
        if o.confirmation_code in codes
        and o.author_id == post.author_id
        and o.platform == post.platform
        and hashtag_key(o.campaign.confirm_prefix + o.confirmation_code) in keys
    }


def campaign_for(batch: Batch, post: Post, post_keys: list[str]) -> Campaign | None:
    """The campaign of the post's first purchase hashtag: the one running when it was posted,
    else the latest to start (to answer that it is closed)."""
    index = batch.campaigns.get(post.platform)
    if index is None:
        return None
    for key in post_keys:
        candidates = index.by_key.get(key)
        if candidates:
            running = [c for c in candidates if c.starts_at <= post.posted_at < c.ends_at]
            return (running or sorted(candidates, key=lambda c: c.starts_at))[-1]
    return None
