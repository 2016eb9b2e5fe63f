"""Writes of the social app: reading feeds into the inbox, and sending the reply outbox.

Neither holds a database transaction while it talks to a platform (DESIGN §5.2): a feed is
claimed by a lease, read, then stored with its cursor in one transaction; replies are claimed
under the account's row lock together with their rate-budget tokens, sent, then marked.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.db.models import BigIntegerField, Case, CharField, F, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.module_loading import import_string

from core import outbox
from core.lengths import fit, fit_key, storable, storable_json
from core.outbox import Lease
from social.models import (
    EXTERNAL_ID_MAX_LENGTH,
    HANDLE_MAX_LENGTH,
    OUTCOME_MALFORMED,
    OUTCOME_UNDECIDED,
    POST_ID_MAX_LENGTH,
    FeedCursor,
    FeedKind,
    PlatformAccount,
    Post,
    Reply,
    ReplyPriority,
    ReplyStatus,
)
from social.platforms import adapter_for
from social.platforms.base import (
    PRIVATE_VISIBILITIES,
    AccountAuthError,
    DuplicateReply,
    InboundPost,
    PlatformAdapter,
    RateLimited,
    RejectedError,
    SentReply,
    TransientError,
    UsageCapped,
)
from social.selectors import posts_undecided_of, posts_with_brands

logger = logging.getLogger(__name__)
# After an authorisation failure, feeds and replies of the account wait this long to try again.
AUTH_RETRY_MINUTES = 15


def _conf(name: str) -> int:
    return int(settings.HASHCART[name])


# --- Feeds ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PollResult:
    """``stored``: undecided inbox ids of the posts read; ``more``: a full page, read again now;
    ``busy``: another poller holds the feed; ``error``: why the feed failed, if it did;
    ``waiting_until``: the platform's rate limit holds the feed until then (not a failure)."""

    stored: list[int] = field(default_factory=list)
    more: bool = False
    busy: bool = False
    error: str = ""
    waiting_until: datetime | None = None


def inbox_post_id(post_id: str) -> str:
    """The inbox's ``post_id`` of a platform's post id: the id itself, or its cut form if it is
    longer than the inbox keeps (``core.lengths.fit_key``), made storable. Look stored posts up
    with it."""
    return fit_key(storable(post_id), POST_ID_MAX_LENGTH)


def inbox_store(
    *, account: PlatformAccount, posts: list[InboundPost], now: datetime | None = None
) -> None:
    """Insert ``posts`` into the inbox, ignoring those already there (a post delivered twice is
    stored once). A ``malformed`` post is stored decided, with that outcome at ``now``. Runs in
    the caller's transaction.

    Ids and handles longer than the inbox keeps are cut here, deliberately (``core.lengths``):
    ids keep a digest of the whole, so two people never share one; handles end in "…". Text the
    database cannot hold (NUL, lone surrogates) is made storable here too, so one such post
    never fails the insert of its page.
    """
    now = now or timezone.now()
    Post.objects.bulk_create(
        [
            Post(
                platform=p.platform,
                account=account,
                post_id=inbox_post_id(p.post_id),
                root_id=inbox_post_id(p.root_id),
                author_id=fit_key(storable(p.author_id), EXTERNAL_ID_MAX_LENGTH),
                author_handle=fit(
                    storable(p.author_handle), HANDLE_MAX_LENGTH, max_bytes=HANDLE_MAX_LENGTH
                ),
                text=storable(p.text),
                hashtags=[storable(tag) for tag in p.hashtags],
                quoted_hashtags=[storable(tag) for tag in p.quoted_hashtags],
                kind=p.kind,
                visibility=p.visibility,
                posted_at=p.created_at,
                raw=storable_json(p.raw),
                outcome=OUTCOME_MALFORMED if p.malformed else "",
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

    One poller per feed: the cursor row is leased by compare-and-set (``core.outbox``; a lease
    lapses after ``HASHCART["OUTBOX"]["feeds"]`` if its holder dies). The posts and the cursor
    are written in one transaction, and only while the lease is still held. A rate limit keeps
    the lease until the platform's reset time, so nobody polls before it; a usage cap stops the
    feed. The search feed looks for ``hashtags`` (the live campaigns', which the caller knows).
    An adapter may read a backlog over several polls (``FetchResult.more``, its progress in the
    cursor): each poll's posts are committed with that progress, and the high-water mark moves
    only when the adapter gives one (it never claims posts it has not read, and never moves
    back).

    A read the platform refuses (a 4xx other than 401 and 429: ``RejectedError``), or that fails
    unexpectedly, is recorded on the cursor (``last_error``, ``failing_since``, an ERROR line),
    the lease is released so the next poll tries again, and the result carries the error; an
    authorisation failure is recorded the same way but holds the feed ``AUTH_RETRY_MINUTES``.
    While a feed is failing, a poll that finds it held returns its error too, so that no caller
    mistakes a failing feed for a quiet one. The next read that succeeds clears the failure.
    Raises ``TransientError`` after recording it, for the caller to retry with backoff.
    """
    cursor, _ = FeedCursor.objects.get_or_create(account_id=account_id, feed=feed)
    if cursor.stopped:
        return PollResult(error="stopped: usage cap reached")
    rows = FeedCursor.objects.filter(pk=cursor.pk)
    lease = outbox.claim(
        rows,
        now=now,
        lease=outbox.policy("feeds").lease,
        field="lease_until",
        token_field="lease_token",
    )
    if lease is None:
        held = FeedCursor.objects.values_list("failing_since", "last_error").get(pk=cursor.pk)
        return PollResult(busy=True, error=held[1] if held[0] is not None else "")
    account = PlatformAccount.objects.get(pk=account_id)
    page_size = _conf("FEED_PAGE_SIZE")
    failing = Coalesce(F("failing_since"), Value(now))
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
        lease.update(
            rows, lease_until=exc.reset_at, last_error=f"rate limited until {exc.reset_at}"
        )
        return PollResult(waiting_until=exc.reset_at)
    except UsageCapped as exc:
        lease.release(rows, stopped=True, last_error=f"usage cap: {exc}")
        logger.error("feed %s of %s stopped: usage cap reached (%s)", feed, account, exc)
        return PollResult(error=str(exc))
    except AccountAuthError as exc:
        # Nothing to retry until an operator authorises the account again: wait a while, say so.
        lease.update(
            rows,
            last_error=f"authorisation: {exc}"[:500],
            failing_since=failing,
            lease_until=now + timedelta(minutes=AUTH_RETRY_MINUTES),
        )
        PlatformAccount.objects.filter(pk=account_id).update(last_error=str(exc)[:500])
        logger.error("feed %s of %s: authorisation failed (%s)", feed, account, exc)
        return PollResult(error=str(exc))
    except TransientError as exc:
        lease.release(rows, last_error=str(exc)[:500])
        raise
    except Exception as exc:
        # A refused read (say a parameter the API no longer accepts) or a bug: retrying soon does
        # not help, an operator must look. Say so everywhere at once and free the feed.
        error = (
            f"read refused: {exc}"
            if isinstance(exc, RejectedError)
            else f"read failed unexpectedly: {type(exc).__name__}: {exc}"
        )[:500]
        lease.release(rows, last_error=error, failing_since=failing)
        logger.error(
            "feed %s of %s (account %s) failing: %s",
            feed,
            account,
            account_id,
            error,
            exc_info=not isinstance(exc, RejectedError),
        )
        return PollResult(error=error)
    malformed = [p for p in fetched.posts if p.malformed]
    with transaction.atomic():
        inbox_store(account=account, posts=fetched.posts, now=now)
        high_water_mark = fetched.high_water_mark
        if cursor.high_water_mark and (
            high_water_mark is None or high_water_mark < cursor.high_water_mark
        ):
            high_water_mark = cursor.high_water_mark  # it never moves back, nor is forgotten
        if not lease.release(
            rows,
            cursor=fetched.cursor,
            high_water_mark=high_water_mark,
            polled_at=now,
            last_error=_malformed_note(malformed),
            failing_since=None,
        ):
            # The lease lapsed and another poller took over: store nothing of ours.
            transaction.set_rollback(True)
            return PollResult(busy=True)
    stored = list(
        Post.objects.filter(
            platform=account.platform,
            post_id__in=[inbox_post_id(p.post_id) for p in fetched.posts],
            outcome="",
        )
        .order_by("id")
        .values_list("id", flat=True)
    )
    more = len(fetched.posts) >= page_size if fetched.more is None else fetched.more
    return PollResult(stored=stored, more=more)


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


def _stale_after() -> timedelta:
    """How old a queued low-priority reply may get before it is skipped as stale."""
    after = outbox.policy("replies").give_up_after()
    if after is None:  # never stale: the budget's room is then unbounded in time
        raise ImproperlyConfigured('HASHCART["OUTBOX"]["replies"] needs give_up_after_seconds')
    return after


def low_priority_room(account: PlatformAccount) -> int:
    """How many low-priority replies the account's budget can still send before they go stale:
    its budget over their give-up age (``HASHCART["OUTBOX"]["replies"]``), less those already
    waiting."""
    horizon = int(_stale_after().total_seconds())
    capacity = account.reply_budget * horizon // max(1, account.reply_budget_seconds)
    waiting = Reply.objects.filter(
        account=account, status=ReplyStatus.QUEUED, priority=ReplyPriority.OTHER
    )[:capacity].count()
    return max(0, capacity - waiting)


def replies_queue(*, drafts: list[ReplyDraft]) -> list[ReplyDraft]:
    """Queue replies in the caller's transaction (DESIGN §5.3); returns the drafts not dropped
    for lack of room (one that meets a row already there, by post and kind or by text, is
    among them: it is already answered).

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
    return kept


def replies_withdraw(
    *, post_ids: list[int], kinds: list[str], now: datetime, reason: str
) -> set[int]:
    """Withdraw the replies of ``kinds`` to ``post_ids`` that are not posted yet: mark skipped,
    with ``reason``, those queued and those whose sender died while sending them (a claim that
    lapsed before ``now``). Returns the ids of the posts whose reply of those kinds is out of
    reach: being sent right now (a live claim) or sent.

    Runs in the caller's transaction. Compare-and-set on the status: a sender that claimed a
    reply first keeps it, and the reply then shows in the result.
    """
    replies = Reply.objects.filter(in_reply_to_id__in=post_ids, kind__in=kinds)
    replies.filter(
        outbox.claimable(
            now=now, free=Q(status=ReplyStatus.QUEUED), held=Q(status=ReplyStatus.SENDING)
        )
    ).update(status=ReplyStatus.SKIPPED, last_error=reason[:500])
    return set(
        replies.filter(status__in=[ReplyStatus.SENDING, ReplyStatus.SENT]).values_list(
            "in_reply_to_id", flat=True
        )
    )


def replies_beyond_budget(*, kind: str, wait: timedelta, now: datetime) -> list[int]:
    """The inbox posts whose queued reply of ``kind`` the brand account's rate budget cannot
    post within ``wait`` of its queueing, in id order: the reply is told elsewhere instead
    (orders sends a confirmation request privately, ``orders.services.private``).

    The sender (``replies_send_due``) posts an account's queued replies in (priority, id)
    order, a token each. So the n-th queued reply of that order among those of its priority or
    higher is posted no sooner than when the bucket has given n tokens: the tokens it holds at
    ``now`` plus its refill from then on (from the platform's reset time after a 429), without
    the bucket's cap, since a backlog spends each token as it comes. A reply is returned when
    that moment is after its deadline (queued at + ``wait``), whether the deadline has passed
    or not: a reply the budget can post in time is never returned, however old it is, so a
    reply held back by anything but the budget (an outage, a retry) stays public. A read; no
    lock (a reply claimed meanwhile is simply not rewritten, ``reply_rewrite``).
    """
    replies = Reply.objects.filter(status=ReplyStatus.QUEUED)
    priority = replies.filter(kind=kind).values_list("priority", flat=True).order_by().first()
    if priority is None:
        return []
    beyond: list[int] = []
    accounts = replies.filter(kind=kind).values_list("account_id", flat=True).distinct()
    for account in PlatformAccount.objects.filter(pk__in=list(accounts)).order_by("pk"):
        tokens = _bucket(account, now)
        rate = account.reply_budget / max(1, account.reply_budget_seconds)
        refill_from = max(now, account.bucket_updated_at or now)
        ahead = replies.filter(account=account, priority__lte=priority).order_by("priority", "id")
        for position, (post_id, reply_kind, queued_at) in enumerate(
            ahead.values_list("in_reply_to_id", "kind", "created_at"), start=1
        ):
            deadline = queued_at + wait
            given = tokens + rate * max(0.0, (deadline - refill_from).total_seconds())
            if reply_kind == kind and position > given:
                beyond.append(post_id)
    return sorted(beyond)


def reply_rewrite(*, post_id: int, kind: str, text: str, priority: int) -> bool:
    """Replace the text and priority of the reply of ``kind`` to inbox post ``post_id`` while
    it is still queued; True if this call did. A reply being sent or sent is left as it is
    (False): compare-and-set on the status, so a sender that claimed it first keeps it, and
    one that claims it later sends the new text. If another reply of the account already has
    that text (they must differ, ``Reply``), the reply is skipped instead: it was going to
    say nothing the buyer needs. Runs in the caller's transaction.
    """
    queued = Reply.objects.filter(in_reply_to_id=post_id, kind=kind, status=ReplyStatus.QUEUED)
    try:
        with transaction.atomic():
            return bool(queued.update(text=text, priority=priority, updated_at=timezone.now()))
    except IntegrityError:
        return bool(
            queued.update(
                status=ReplyStatus.SKIPPED,
                last_error="rewritten to the text of another reply",
                updated_at=timezone.now(),
            )
        )


def replies_recover(*, now: datetime) -> bool:
    """The reply outbox's recovery sweep: put back in the queue the replies of every account
    whose sender died while sending them (``replies_reclaim``). True if replies wait in the
    queue, for the caller to start the senders."""
    replies_reclaim(now=now)
    return Reply.objects.filter(status=ReplyStatus.QUEUED).exists()


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


def replies_reclaim(*, now: datetime, account_id: int | None = None) -> list[int]:
    """Put back in the queue the replies whose sender died while sending them: ``sending`` with
    a claim that lapsed before ``now``, of one account or (the recovery sweep) of every account,
    whether or not it has anything else to send. Returns the ids of the replies put back.

    The only place a reply claim is taken back (the claim itself is taken in
    ``replies_send_due``). Resending one that was in fact posted is safe: the platform's
    idempotency key returns the first post, or X's duplicate refusal has it looked up.
    Compare-and-set on the status and the claim, so a sender that is still at work keeps its
    reply; each reply put back is logged with its id.
    """
    replies = Reply.objects.all()
    if account_id is not None:
        replies = replies.filter(account_id=account_id)
    reclaimed = outbox.reclaim(
        replies, now=now, held=Q(status=ReplyStatus.SENDING), values={"status": ReplyStatus.QUEUED}
    )
    for reply_id in reclaimed:
        logger.warning("reply %s: its sender's claim lapsed, queued again", reply_id)
    return reclaimed


def replies_send_due(*, account_id: int, now: datetime, limit: int = 100) -> SendResult:
    """Send the account's due replies, most urgent first, within its rate budget.

    First skips low-priority replies older than their give-up age
    (``HASHCART["OUTBOX"]["replies"]``) and takes back claims whose sender died
    (``replies_reclaim``). Then, under the account's row lock, takes up to
    ``limit`` tokens and claims as many replies (``sending``); sends each outside any
    transaction with the idempotency key ``reply-<id>``; marks each sent (a duplicate refusal:
    sent already, looked up with the adapter's ``find_reply``), failed (the platform refused it
    for good) or queued again with exponential backoff (a transient error). A rate limit from
    the platform stops the run: the bucket stays empty until the platform's reset time and the
    rest wait for it.
    """
    stale_before = now - _stale_after()
    Reply.objects.filter(
        account_id=account_id,
        status=ReplyStatus.QUEUED,
        priority=ReplyPriority.OTHER,
        created_at__lt=stale_before,
    ).update(status=ReplyStatus.SKIPPED, last_error="stale")
    replies_reclaim(now=now, account_id=account_id)
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
        # Locked and queued: the claim takes every one of them.
        lease = outbox.claim(
            Reply.objects.filter(pk__in=[r.pk for r in claimed]),
            now=now,
            lease=outbox.policy("replies").lease,
            free=Q(status=ReplyStatus.QUEUED),
            held=Q(status=ReplyStatus.SENDING),
            values={"status": ReplyStatus.SENDING},
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
        if lease is None:
            break  # never: the replies were locked and queued, so the claim took them
        rest = Reply.objects.filter(pk__in=[r.pk for r in claimed[position:]])
        try:
            if _send_one(adapter=adapter, account=account, reply=reply, now=now, lease=lease):
                sent.append(reply)
        except AccountAuthError as exc:
            # The account cannot post at all: no reply is at fault. Put the claim back, without
            # counting attempts, and try again later; the account shows the error meanwhile.
            retry_at = now + timedelta(minutes=AUTH_RETRY_MINUTES)
            PlatformAccount.objects.filter(pk=account_id).update(last_error=str(exc)[:500])
            lease.release(
                rest, status=ReplyStatus.QUEUED, next_attempt_at=retry_at, last_error=str(exc)
            )
            logger.error("replies of %s held: authorisation failed (%s)", account, exc)
            return SendResult(sent=sent, more=False, wait_until=retry_at)
        except RateLimited as exc:
            # The platform's own limit is the truth: empty the bucket until its reset time and
            # put this reply and the rest of the claim back, without counting an attempt.
            PlatformAccount.objects.filter(pk=account_id).update(
                bucket_tokens=0, bucket_updated_at=exc.reset_at
            )
            lease.release(
                rest, status=ReplyStatus.QUEUED, next_attempt_at=exc.reset_at, last_error=str(exc)
            )
            return SendResult(sent=sent, more=False, wait_until=exc.reset_at)
    wait_until = None
    rate = account.reply_budget / max(1, account.reply_budget_seconds)
    if more and int(tokens) <= len(claimed):
        if rate == 0:  # a budget of zero holds every reply until an operator raises it
            return SendResult(sent=sent)
        wait_until = now + timedelta(seconds=1 / rate)
    return SendResult(sent=sent, more=more and wait_until is None, wait_until=wait_until)


def _send_one(
    *, adapter: PlatformAdapter, account: PlatformAccount, reply: Reply, now: datetime, lease: Lease
) -> bool:
    # Every outcome is written only while the claim is still this sender's (``lease``).
    claim = lease.ours(Reply.objects.filter(pk=reply.pk))
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
    except DuplicateReply as exc:
        # Posted already: an earlier attempt whose answer was lost. Its id and time are found
        # on the platform (the buyer's window starts when it was really posted).
        found = _find_sent(adapter=adapter, account=account, reply=reply, error=exc)
        if found is None:
            return _retry_later(claim=claim, reply=reply, now=now, error=exc)
        _mark_sent(claim=claim, reply=reply, sent_at=found.posted_at, platform_id=found.platform_id)
        logger.warning(
            "reply %s was posted already as %s (found after a duplicate refusal)",
            reply.pk,
            found.platform_id,
        )
        return True
    except RejectedError as exc:
        claim.update(status=ReplyStatus.FAILED, last_error=str(exc)[:500])
        logger.error("reply %s refused for good: %s", reply.pk, exc)
        return False
    except TransientError as exc:
        return _retry_later(claim=claim, reply=reply, now=now, error=exc)
    # The clock is read again here on purpose: the buyer's 15 minutes start when the reply is
    # actually posted (DESIGN §3.3), which may be well after this batch began.
    _mark_sent(claim=claim, reply=reply, sent_at=timezone.now(), platform_id=platform_id)
    return True


def _mark_sent(
    *, claim: QuerySet[Reply], reply: Reply, sent_at: datetime, platform_id: str
) -> None:
    """Record ``reply`` as posted at ``sent_at`` and, in the same transaction, tell
    ``HASHCART["REPLY_SENT_HANDLER"]`` (orders opens the buyer's window from this instant)."""
    with transaction.atomic():
        if claim.update(
            status=ReplyStatus.SENT,
            sent_at=sent_at,
            platform_reply_id=platform_id,
            attempts=reply.attempts + 1,
            last_error="",
        ):
            import_string(settings.HASHCART["REPLY_SENT_HANDLER"])(
                post_id=reply.in_reply_to_id, kind=reply.kind, sent_at=sent_at
            )
    reply.status, reply.sent_at, reply.platform_reply_id = ReplyStatus.SENT, sent_at, platform_id


# How far before a reply was queued its post is looked for (clocks of X and ours differ a bit).
FIND_REPLY_MARGIN = timedelta(minutes=5)


def _find_sent(
    *, adapter: PlatformAdapter, account: PlatformAccount, reply: Reply, error: DuplicateReply
) -> SentReply | None:
    """The reply as posted on the platform, or None (not found yet, or the look-up failed for
    a while: the reply is retried). Rate limits and authorisation failures reach the caller."""
    try:
        return adapter.find_reply(
            account=account,
            in_reply_to_post_id=reply.in_reply_to.post_id,
            text=reply.text,
            since=reply.created_at - FIND_REPLY_MARGIN,
            idempotency_key=f"reply-{reply.pk}",
        )
    except TransientError as exc:
        logger.warning("reply %s: looking it up after %s failed: %s", reply.pk, error, exc)
        return None


def _retry_later(*, claim: QuerySet[Reply], reply: Reply, now: datetime, error: Exception) -> bool:
    """Queue the reply again with exponential backoff, or fail it after its last attempt
    (``HASHCART["OUTBOX"]["replies"]``)."""
    policy = outbox.policy("replies")
    attempts = reply.attempts + 1
    failed = policy.exhausted(attempts)
    claim.update(
        status=ReplyStatus.FAILED if failed else ReplyStatus.QUEUED,
        attempts=attempts,
        next_attempt_at=policy.retry_at(attempts=attempts, now=now),
        last_error=str(error)[:500],
    )
    if failed:
        logger.error("reply %s failed after %s attempts: %s", reply.pk, attempts, error)
    return False


# --- Decisions --------------------------------------------------------------------------------
def posts_record_outcomes(
    *, outcomes: dict[int, str], campaign_ids: dict[int, int], decided_at: datetime
) -> int:
    """Record a decider's outcomes of undecided inbox posts (by id) in the caller's
    transaction, in one UPDATE whatever their number: ``outcome`` (the decider's value, which
    social stores as text), ``decided_at``, and the campaign a purchase post asked for
    (``campaign_ids``; null for the others). Posts decided already are left alone. The caller
    holds the posts' row locks (it selected them ``FOR UPDATE``). Returns how many it recorded.
    """
    if not outcomes:
        return 0
    ids = list(outcomes)
    if connection.vendor == "postgresql":
        # Three arrays rather than a value per row: one short statement to send and to plan.
        with connection.cursor() as cursor:
            cursor.execute(
                f"""UPDATE {Post._meta.db_table} AS p
                SET outcome = v.outcome, campaign_id = v.campaign_id, decided_at = %s
                FROM unnest(%s::bigint[], %s::text[], %s::bigint[]) AS v(id, outcome, campaign_id)
                WHERE p.id = ANY(%s::bigint[]) AND p.id = v.id AND p.outcome = %s""",  # noqa: S608
                [
                    decided_at,
                    ids,
                    [outcomes[pk] for pk in ids],
                    [campaign_ids.get(pk) for pk in ids],
                    # The ids again on the table: its rows are found by primary key, not by
                    # hashing every undecided post (a flash sale's backlog).
                    ids,
                    OUTCOME_UNDECIDED,
                ],
            )
            return int(cursor.rowcount)
    by_outcome: dict[str, list[int]] = {}
    for post_id, outcome in outcomes.items():
        by_outcome.setdefault(outcome, []).append(post_id)
    by_campaign: dict[int, list[int]] = {}
    for post_id, campaign_id in campaign_ids.items():
        if post_id in outcomes:
            by_campaign.setdefault(campaign_id, []).append(post_id)
    # A WHEN per distinct outcome and campaign (a dozen at most), not per row.
    return Post.objects.filter(pk__in=ids, outcome=OUTCOME_UNDECIDED).update(
        outcome=Case(
            *(When(pk__in=pks, then=Value(outcome)) for outcome, pks in by_outcome.items()),
            output_field=CharField(),
        ),
        campaign_id=Case(
            *(When(pk__in=pks, then=Value(cid)) for cid, pks in by_campaign.items()),
            default=None,
            output_field=BigIntegerField(),
        ),
        decided_at=decided_at,
    )


def posts_lock_undecided(
    *, post_ids: list[int], fields: tuple[str, ...]
) -> tuple[list[Post], dict[int, str]]:
    """Lock the undecided posts among ``post_ids`` for their decision, skipping those another
    decider holds: the posts in id order (with only ``fields`` read) and each one's brand
    account's platform user id. Call in the transaction that records their outcomes."""
    return posts_with_brands(
        posts_undecided_of(post_ids=post_ids, fields=fields).select_for_update(
            skip_locked=True, of=("self",)
        )
    )


def replay_account_ensure(*, platform: str) -> tuple[PlatformAccount, bool]:
    """The brand account that replayed posts of ``platform`` are stored under when it has no
    enabled one: a disabled placeholder, made on first use (``True`` then), never polled."""
    return PlatformAccount.objects.get_or_create(
        platform=platform,
        platform_user_id=f"replay-{platform}",
        defaults={"handle": f"replay-{platform}", "enabled": False},
    )
