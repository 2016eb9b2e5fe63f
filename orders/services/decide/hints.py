"""Near misses: a private hint to a linked cardholder whose post almost matched (DESIGN §3.7).

A post that matched nothing (no purchase, confirmation or link hashtag of ours) but comes from a
linked cardholder and almost matched gets one e-mail saying what was understood and what to post
instead, and the outcome ``near_miss``: nothing public, nothing reserved. The near misses, first
that applies:

1. a confirmation of one of the author's pending orders written with a space
   (``#Confirm ABC12``), or with a code one character away from that order's
   (``#ConfirmABC13``, ``#Confirm ABC13``);
2. a running campaign's purchase hashtag split by spaces (``#Buy KindleFireHD``);
3. an unknown hashtag one or two edits from a running campaign's (``#BuyKindelFireHD``): two
   only for hashtags of ``CLOSE_TWO_FROM`` characters or more, and none when two campaigns are
   as close.

Everything else is ``no_campaign``, silent, as before. Classifying (``hint_for``) is pure; the
reads are one statement each for the whole batch, and only when a post may be a near miss: the
authors' links, the posts' texts (the words after a hashtag, for 1 and 2), the authors' pending
orders. Bounded work per post: its first ``MAX_TAGS`` hashtags of at most ``MAX_KEY`` characters,
``MAX_WORDS`` words after each, the first ``TEXT_HEAD`` characters of its text.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

from django.utils import timezone

from accounts.selectors import buyers_for_identities
from catalog.models import Campaign
from core.codes import CONFIRMATION_CODE
from orders import messages
from orders.messages import Hint
from orders.models import Notification, Order, OrderStatus
from orders.outcomes import PostOutcome
from orders.services.common import notification
from orders.services.decide.batch import Batch
from social.hashtags import extract_hashtags, hashtag_key
from social.models import Post
from social.selectors import posts_texts

if TYPE_CHECKING:
    from accounts.models import Cardholder

TEXT_HEAD = 1000
MAX_TAGS = 5
MAX_KEY = 60
MAX_WORDS = 4
CLOSE_TWO_FROM = 8
HINT = "hint"  # the e-mail's kind
_PUNCTUATION = ".,;:!?)]}\"'\u00bb\u201d\u2019\u2026"
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class OpenOrder:
    """A pending order of the author, as a confirmation hint needs it."""

    code: str
    prefix: str


def hints_decide(batch: Batch, posts: list[Post]) -> None:
    """Decide ``posts`` (none matched anything of ours): ``near_miss`` with a private e-mail for
    a linked author's near miss, else ``no_campaign``."""
    live = {platform: _live(batch, platform) for platform in {p.platform for p in posts}}
    suspects = [
        p
        for p in posts
        if (keys := _keys(p)) and _suspect(keys, _prefixes(batch, p.platform), live[p.platform])
    ]
    buyers = buyers_for_identities(identities={(p.platform, p.author_id) for p in suspects})
    linked = [p for p in suspects if (p.platform, p.author_id) in buyers]
    texts = posts_texts(post_ids=[p.pk for p in linked], max_chars=TEXT_HEAD)
    orders = _open_orders(linked)
    hinted: set[int] = set()
    for post in linked:
        hint = hint_for(
            keys=_keys(post),
            text=texts.get(post.pk, ""),
            orders=orders.get((post.platform, post.author_id), []),
            live=[c for c in live[post.platform] if c.starts_at <= post.posted_at < c.ends_at],
        )
        if hint is None:
            continue
        hinted.add(post.pk)
        batch.decide(post, PostOutcome.NEAR_MISS)
        batch.emails.append(
            (
                buyers[(post.platform, post.author_id)].cardholder_id,
                partial(hint_email, post_id=post.pk, hint=hint),
            )
        )
    for post in posts:
        if post.pk not in hinted:
            batch.decide(post, PostOutcome.NO_CAMPAIGN)


def hint_email(cardholder: "Cardholder", *, post_id: int, hint: Hint) -> Notification:
    """At most one hint an hour per cardholder (the key; a second in the hour is dropped by the
    outbox's unique key): a burst of near misses cannot flood their inbox or the outbox that
    carries reminders and private confirmation requests."""
    hour = timezone.now().strftime("%Y%m%d%H")
    return notification(
        key=f"{HINT}:{cardholder.pk}:{hour}",
        cardholder=cardholder,
        kind=HINT,
        message=messages.email_hint(cardholder=cardholder, hint=hint),
    )


def _keys(post: Post) -> list[str]:
    return [k for k in (hashtag_key(t) for t in post.hashtags[:MAX_TAGS]) if len(k) <= MAX_KEY]


def _prefixes(batch: Batch, platform: str) -> tuple[str, ...]:
    index = batch.campaigns.get(platform)
    return index.prefix_keys(now=batch.now) if index is not None else ()


def _live(batch: Batch, platform: str) -> list[Campaign]:
    """The platform's campaigns not paused and not over a day before the batch began (each
    post then keeps those running when it was posted)."""
    index = batch.campaigns.get(platform)
    if index is None:
        return []
    return [
        c
        for found in index.by_key.values()
        for c in found
        if not c.paused and c.ends_at > batch.now - _DAY and c.starts_at <= batch.now
    ]


def _suspect(keys: list[str], prefixes: Iterable[str], live: list[Campaign]) -> bool:
    """Whether the post may be a near miss, by its hashtags alone (no read needed)."""
    prefixes = tuple(prefixes)
    for key in keys:
        if any(key == p or CONFIRMATION_CODE.after(key, p) is not None for p in prefixes):
            return True
        for campaign in live:
            target = campaign.hashtag_key
            if (len(key) > 1 and target.startswith(key)) or _close(key, target) is not None:
                return True
    return False


def _open_orders(posts: list[Post]) -> dict[tuple[str, str], list[OpenOrder]]:
    """The pending orders of the posts' authors, by (platform, author id), in one query."""
    if not posts:
        return {}
    rows = Order.objects.filter(
        status=OrderStatus.PENDING,
        author_id__in={p.author_id for p in posts},
        platform__in={p.platform for p in posts},
    ).values_list("platform", "author_id", "confirmation_code", "campaign__confirm_prefix")
    found: dict[tuple[str, str], list[OpenOrder]] = {}
    for platform, author_id, code, prefix in rows.order_by("id"):
        found.setdefault((platform, author_id), []).append(OpenOrder(code=code, prefix=prefix))
    return found


def hint_for(
    *,
    keys: list[str],
    text: str,
    orders: list[OpenOrder],
    live: list[Campaign],
) -> Hint | None:
    """The hint for a post with hashtag ``keys`` and ``text`` from an author with pending
    ``orders``, while ``live`` campaigns run; None when it is no near miss (module docstring)."""
    followed = _followed(text, keys)
    return (
        _confirmation_hint(keys, followed, orders)
        or _split_hint(followed, live)
        or _close_hint(keys, live)
    )


def _followed(text: str, keys: list[str]) -> list[tuple[str, list[str]]]:
    """Each of the post's own hashtags in ``text`` (as written) with the words right after it,
    trailing punctuation dropped, up to a hashtag or a mention."""
    wanted = set(keys)
    found = []
    for tag in extract_hashtags(text[:TEXT_HEAD])[: MAX_TAGS * 2]:
        if hashtag_key(tag.text) not in wanted:
            continue
        rest = text[tag.end : tag.end + 40 * MAX_WORDS]
        words = []
        if rest[:1].isspace():
            for word in rest.split()[:MAX_WORDS]:
                if word[0] in "#@\uff03":  # a hashtag (either hash sign) or a mention
                    break
                word = word.rstrip(_PUNCTUATION)
                if not word:
                    break
                words.append(word)
        found.append((tag.text, words))
    return found


def _confirmation_hint(
    keys: list[str], followed: list[tuple[str, list[str]]], orders: list[OpenOrder]
) -> Hint | None:
    # What the post wrote as a code after one of its orders' prefixes: spaced, or joined.
    written: list[tuple[OpenOrder, str, str]] = []  # (order, code written, as written)
    for order in orders:
        prefix_key = hashtag_key(order.prefix)
        for tag, words in followed:
            if hashtag_key(tag) == prefix_key and words:
                written.append((order, words[0].upper(), f"#{tag} {words[0]}"))
        for key in keys:
            code = CONFIRMATION_CODE.after(key, prefix_key)
            if code is not None:
                written.append((order, code, f"#{order.prefix}{code}"))
    for wanted_distance in (0, 1):
        matches = {
            (order.code, order.prefix, as_written)
            for order, code, as_written in written
            if _distance(code, order.code, 1) == wanted_distance
            and (wanted_distance == 1 or " " in as_written)
        }
        if len({m[0] for m in matches}) == 1:
            code, prefix, as_written = sorted(matches)[0]
            how = "with a space" if wanted_distance == 0 else "one character differs"
            return Hint(
                understood=f"{as_written}, a confirmation of your order {code} ({how})",
                instead=f"#{prefix}{code}",
            )
    return None


def _split_hint(followed: list[tuple[str, list[str]]], live: list[Campaign]) -> Hint | None:
    for tag, words in followed:
        joined = hashtag_key(tag)
        for count, word in enumerate(words, start=1):
            joined += hashtag_key(word)
            found = [c for c in live if c.hashtag_key == joined]
            if found:
                campaign = found[0]
                as_written = " ".join([f"#{tag}", *words[:count]])
                return Hint(
                    understood=f"{as_written}, an order for {campaign.product.name} split by "
                    "a space",
                    instead=f"#{campaign.hashtag}",
                )
    return None


def _close_hint(keys: list[str], live: list[Campaign]) -> Hint | None:
    for key in keys:
        scored = [(d, c) for c in live if (d := _close(key, c.hashtag_key)) is not None]
        if not scored:
            continue
        best = min(d for d, _ in scored)
        nearest = {c.hashtag_key: c for d, c in scored if d == best}
        if len(nearest) == 1:
            campaign = next(iter(nearest.values()))
            return Hint(
                understood=f"an order for {campaign.product.name}, but the hashtag was not "
                "quite right",
                instead=f"#{campaign.hashtag}",
            )
    return None


def _close(key: str, target: str) -> int | None:
    """The edit distance of a hashtag key from a campaign's, when it is 1, or 2 for a campaign
    hashtag of ``CLOSE_TWO_FROM`` characters or more; else None."""
    limit = 2 if len(target) >= CLOSE_TWO_FROM else 1
    distance = _distance(key, target, limit)
    return distance if 1 <= distance <= limit else None


def _distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance of ``a`` and ``b`` if at most ``limit``, else ``limit + 1``: only
    the band of width ``2 * limit + 1`` around the diagonal is computed."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    over = limit + 1
    previous = [j if j <= limit else over for j in range(len(b) + 1)]
    for i in range(1, len(a) + 1):
        current = [i if i <= limit else over] + [over] * len(b)
        for j in range(max(1, i - limit), min(len(b), i + limit) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost, over)
        if min(current) > limit:
            return over
        previous = current
    return min(previous[len(b)], over)
