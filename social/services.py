"""Writes of the social app: reading feeds into the inbox, and sending the reply outbox.

Neither holds a database transaction while it talks to a platform (DESIGN §5.2): a feed is
claimed by a lease, read, then stored with its cursor in one transaction; replies are claimed
under the account's row lock together with their rate-budget tokens, sent, then marked.
"""

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from social.models import (
    FeedCursor,
    FeedKind,
    PlatformAccount,
    Post,
    PostOutcome,
    Reply,
    ReplyPriority,
    ReplyStatus,
)
from social.platforms import adapter_for
from social.platforms.base import (
    PRIVATE_VISIBILITIES,
    AccountAuthError,
    InboundPost,
    PlatformAdapter,
    RateLimited,
    RejectedError,
    TransientError,
    UsageCapped,
)

logger = logging.getLogger(__name__)
# After an authorisation failure, feeds and replies of the account wait this long to try again.
AUTH_RETRY_MINUTES = 15


def _conf(name: str) -> int:
    return int(settings.HASHCART[name])


# --- Feeds ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PollResult:
    """``stored``: undecided inbox ids of the posts read; ``more``: a full page, read again now;
    ``busy``: another poller holds the feed; ``error``: what went wrong, if anything."""

    stored: list[int] = field(default_factory=list)
    more: bool = False
    busy: bool = False
    error: str = ""


def inbox_store(
    *, account: PlatformAccount, posts: list[InboundPost], now: datetime | None = None
) -> None:
    """Insert ``posts`` into the inbox, ignoring those already there (a post delivered twice is
    stored once). A ``malformed`` post is stored decided, with that outcome at ``now``. Runs in
    the caller's transaction."""
    now = now or timezone.now()
    Post.objects.bulk_create(
        [
            Post(
                platform=p.platform,
                account=account,
                post_id=p.post_id,
                root_id=p.root_id,
                author_id=p.author_id,
                author_handle=p.author_handle,
                text=p.text,
                hashtags=list(p.hashtags),
                quoted_hashtags=list(p.quoted_hashtags),
                kind=p.kind,
                visibility=p.visibility,
                posted_at=p.created_at,
                raw=p.raw,
                outcome=PostOutcome.MALFORMED if p.malformed else "",
                decided_at=now if p.malformed else None,
            )
            for p in posts
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )


def feed_poll(
    *,
    account_id: int,
    now: datetime,
    feed: str = FeedKind.MENTIONS,
    hashtags: tuple[str, ...] = (),
) -> PollResult:
    """Read one page of a brand account's feed into the inbox and advance its cursor.

    One poller per feed: the cursor row is leased by compare-and-set (a lease lapses after
    ``POLL_LEASE_SECONDS`` if its holder dies). The posts and the cursor are written in one
    transaction, and only while the lease is still held. A rate limit keeps the lease until the
    platform's reset time, so nobody polls before it; a usage cap stops the feed. The search
    feed looks for ``hashtags`` (the live campaigns', which the caller knows).
    Raises ``TransientError`` after recording it, for the caller to retry with backoff.
    """
    cursor, _ = FeedCursor.objects.get_or_create(account_id=account_id, feed=feed)
    if cursor.stopped:
        return PollResult(error="stopped: usage cap reached")
    token = uuid.uuid4().hex
    leased = FeedCursor.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now), pk=cursor.pk
    ).update(lease_token=token, lease_until=now + timedelta(seconds=_conf("POLL_LEASE_SECONDS")))
    if not leased:
        return PollResult(busy=True)
    ours = FeedCursor.objects.filter(pk=cursor.pk, lease_token=token)
    account = PlatformAccount.objects.get(pk=account_id)
    page_size = _conf("FEED_PAGE_SIZE")
    try:
        adapter = adapter_for(account.platform)
        if feed == FeedKind.SEARCH:
            fetched = adapter.fetch_search(
                account=account, cursor=cursor.cursor, now=now, limit=page_size, hashtags=hashtags
            )
        else:
            fetched = adapter.fetch_mentions(
                account=account, cursor=cursor.cursor, now=now, limit=page_size
            )
    except RateLimited as exc:
        ours.update(lease_until=exc.reset_at, last_error=f"rate limited until {exc.reset_at}")
        return PollResult(error=str(exc))
    except UsageCapped as exc:
        ours.update(stopped=True, last_error=f"usage cap: {exc}", lease_token="", lease_until=None)
        logger.error("feed %s of %s stopped: usage cap reached (%s)", feed, account, exc)
        return PollResult(error=str(exc))
    except AccountAuthError as exc:
        # Nothing to retry until an operator authorises the account again: wait a while, say so.
        ours.update(
            last_error=f"authorisation: {exc}"[:500],
            lease_until=now + timedelta(minutes=AUTH_RETRY_MINUTES),
        )
        PlatformAccount.objects.filter(pk=account_id).update(last_error=str(exc)[:500])
        logger.error("feed %s of %s: authorisation failed (%s)", feed, account, exc)
        return PollResult(error=str(exc))
    except TransientError as exc:
        ours.update(last_error=str(exc)[:500], lease_token="", lease_until=None)
        raise
    malformed = [p for p in fetched.posts if p.malformed]
    with transaction.atomic():
        inbox_store(account=account, posts=fetched.posts, now=now)
        high_water_mark = fetched.high_water_mark
        if cursor.high_water_mark and high_water_mark and high_water_mark < cursor.high_water_mark:
            high_water_mark = cursor.high_water_mark  # it never moves back
        if not ours.update(
            cursor=fetched.cursor,
            high_water_mark=high_water_mark,
            polled_at=now,
            last_error=_malformed_note(malformed),
            lease_token="",
            lease_until=None,
        ):
            # The lease lapsed and another poller took over: store nothing of ours.
            transaction.set_rollback(True)
            return PollResult(busy=True)
    stored = list(
        Post.objects.filter(
            platform=account.platform, post_id__in=[p.post_id for p in fetched.posts], outcome=""
        )
        .order_by("id")
        .values_list("id", flat=True)
    )
    return PollResult(stored=stored, more=len(fetched.posts) >= page_size)


def _malformed_note(posts: list[InboundPost]) -> str:
    """The feed's last error after a read that stored ``posts`` as malformed ("" for none)."""
    if not posts:
        return ""
    ids = ", ".join(f"{p.post_id} ({p.malformed})" for p in posts[:5])
    return f"{len(posts)} malformed item(s) stored as malformed: {ids}"[:500]


# --- The reply outbox -------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplyDraft:
    """A reply to queue: to an inbox post, of a kind (one per post and kind), with a priority."""

    in_reply_to: Post
    kind: str
    text: str
    priority: int


def low_priority_room(account: PlatformAccount) -> int:
    """How many low-priority replies the account's budget can still send before they go stale:
    its budget over ``REPLY_STALE_MINUTES``, less those already waiting."""
    horizon = _conf("REPLY_STALE_MINUTES") * 60
    capacity = account.reply_budget * horizon // max(1, account.reply_budget_seconds)
    waiting = Reply.objects.filter(
        account=account, status=ReplyStatus.QUEUED, priority=ReplyPriority.OTHER
    )[:capacity].count()
    return max(0, capacity - waiting)


def replies_queue(*, drafts: list[ReplyDraft]) -> None:
    """Queue replies in the caller's transaction (DESIGN §5.3).

    Dropped: a draft whose post already has a reply of its kind, or whose text its account
    already queued or sent; and low-priority drafts beyond ``low_priority_room``, which the rate
    budget could only ever skip as stale (in a flash sale, most of the "sold out" answers).
    """
    room: dict[int, int] = {}
    kept = []
    for draft in drafts:
        account_id = draft.in_reply_to.account_id
        if draft.priority >= ReplyPriority.OTHER:
            if account_id not in room:
                room[account_id] = low_priority_room(PlatformAccount.objects.get(pk=account_id))
            if room[account_id] <= 0:
                continue
            room[account_id] -= 1
        kept.append(draft)
    Reply.objects.bulk_create(
        [
            Reply(
                account_id=d.in_reply_to.account_id,
                in_reply_to=d.in_reply_to,
                kind=d.kind,
                text=d.text,
                priority=d.priority,
            )
            for d in kept
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )


@dataclass(frozen=True)
class SendResult:
    """``sent``: replies posted now; ``more``: due replies left that the budget allows now;
    ``wait_until``: when the budget next allows one, if replies wait for it."""

    sent: list[Reply] = field(default_factory=list)
    more: bool = False
    wait_until: datetime | None = None


def _bucket(account: PlatformAccount, now: datetime) -> float:
    """Tokens in ``account``'s bucket at ``now`` (refilled continuously up to the budget)."""
    capacity = float(account.reply_budget)
    if account.bucket_tokens is None or account.bucket_updated_at is None:
        return capacity
    elapsed = max(0.0, (now - account.bucket_updated_at).total_seconds())
    rate = capacity / max(1, account.reply_budget_seconds)
    return min(capacity, account.bucket_tokens + elapsed * rate)


def replies_send_due(*, account_id: int, now: datetime, limit: int = 100) -> SendResult:
    """Send the account's due replies, most urgent first, within its rate budget.

    First skips low-priority replies older than ``REPLY_STALE_MINUTES`` and takes back claims
    whose sender died. Then, under the account's row lock, takes up to ``limit`` tokens and claims
    as many replies (``sending``); sends each outside any transaction with the idempotency key
    ``reply-<id>``; marks each sent, failed (the platform refused it for good) or queued again
    with exponential backoff (a transient error). A rate limit from the platform stops the run:
    the bucket stays empty until the platform's reset time and the rest wait for it.
    """
    stale_before = now - timedelta(minutes=_conf("REPLY_STALE_MINUTES"))
    Reply.objects.filter(
        account_id=account_id,
        status=ReplyStatus.QUEUED,
        priority=ReplyPriority.OTHER,
        created_at__lt=stale_before,
    ).update(status=ReplyStatus.SKIPPED, last_error="stale")
    Reply.objects.filter(
        account_id=account_id, status=ReplyStatus.SENDING, claimed_until__lt=now
    ).update(status=ReplyStatus.QUEUED)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    with transaction.atomic():
        account = PlatformAccount.objects.select_for_update().get(pk=account_id)
        tokens = _bucket(account, now)
        claimable = min(int(tokens), limit)
        claimed = (
            list(
                Reply.objects.select_for_update(skip_locked=True)
                .filter(due, account_id=account_id, status=ReplyStatus.QUEUED)
                .select_related("in_reply_to")
                .order_by("priority", "id")[:claimable]
            )
            if claimable
            else []
        )
        Reply.objects.filter(pk__in=[r.pk for r in claimed]).update(
            status=ReplyStatus.SENDING,
            claimed_until=now + timedelta(seconds=_conf("REPLY_CLAIM_SECONDS")),
        )
        account.bucket_tokens = tokens - len(claimed)
        # A reset time in the future (after a 429) stays: the bucket refills only from then on.
        account.bucket_updated_at = max(now, account.bucket_updated_at or now)
        account.save(update_fields=["bucket_tokens", "bucket_updated_at"])
        waiting = Reply.objects.filter(due, account_id=account_id, status=ReplyStatus.QUEUED)
        more = waiting.exists()
    adapter = adapter_for(account.platform)
    sent = []
    for position, reply in enumerate(claimed):
        try:
            if _send_one(adapter=adapter, account=account, reply=reply, now=now):
                sent.append(reply)
        except AccountAuthError as exc:
            # The account cannot post at all: no reply is at fault. Put the claim back, without
            # counting attempts, and try again later; the account shows the error meanwhile.
            retry_at = now + timedelta(minutes=AUTH_RETRY_MINUTES)
            PlatformAccount.objects.filter(pk=account_id).update(last_error=str(exc)[:500])
            Reply.objects.filter(
                pk__in=[r.pk for r in claimed[position:]], status=ReplyStatus.SENDING
            ).update(status=ReplyStatus.QUEUED, next_attempt_at=retry_at, last_error=str(exc))
            logger.error("replies of %s held: authorisation failed (%s)", account, exc)
            return SendResult(sent=sent, more=False, wait_until=retry_at)
        except RateLimited as exc:
            # The platform's own limit is the truth: empty the bucket until its reset time and
            # put this reply and the rest of the claim back, without counting an attempt.
            PlatformAccount.objects.filter(pk=account_id).update(
                bucket_tokens=0, bucket_updated_at=exc.reset_at
            )
            Reply.objects.filter(
                pk__in=[r.pk for r in claimed[position:]], status=ReplyStatus.SENDING
            ).update(status=ReplyStatus.QUEUED, next_attempt_at=exc.reset_at, last_error=str(exc))
            return SendResult(sent=sent, more=False, wait_until=exc.reset_at)
    wait_until = None
    rate = account.reply_budget / max(1, account.reply_budget_seconds)
    if more and int(tokens) <= len(claimed):
        if rate == 0:  # a budget of zero holds every reply until an operator raises it
            return SendResult(sent=sent)
        wait_until = now + timedelta(seconds=1 / rate)
    return SendResult(sent=sent, more=more and wait_until is None, wait_until=wait_until)


def _send_one(
    *, adapter: PlatformAdapter, account: PlatformAccount, reply: Reply, now: datetime
) -> bool:
    claim = Reply.objects.filter(pk=reply.pk, status=ReplyStatus.SENDING)
    # A private post is answered privately; public sends stay as they were for every adapter.
    private = reply.in_reply_to.visibility in PRIVATE_VISIBILITIES
    try:
        platform_id = adapter.send_reply(
            account=account,
            in_reply_to_post_id=reply.in_reply_to.post_id,
            text=reply.text,
            idempotency_key=f"reply-{reply.pk}",
            **({"visibility": reply.in_reply_to.visibility} if private else {}),
        )
    except RejectedError as exc:
        claim.update(status=ReplyStatus.FAILED, last_error=str(exc)[:500])
        return False
    except TransientError as exc:
        attempts = reply.attempts + 1
        failed = attempts >= _conf("REPLY_MAX_ATTEMPTS")
        claim.update(
            status=ReplyStatus.FAILED if failed else ReplyStatus.QUEUED,
            attempts=attempts,
            next_attempt_at=now + timedelta(seconds=min(3600, 2**attempts)),
            last_error=str(exc)[:500],
        )
        return False
    # The clock is read again here on purpose: the buyer's 15 minutes start when the reply is
    # actually posted (DESIGN §3.3), which may be well after this batch began.
    sent_at = timezone.now()
    claim.update(
        status=ReplyStatus.SENT,
        sent_at=sent_at,
        platform_reply_id=platform_id,
        attempts=reply.attempts + 1,
        last_error="",
    )
    reply.status, reply.sent_at, reply.platform_reply_id = ReplyStatus.SENT, sent_at, platform_id
    return True
