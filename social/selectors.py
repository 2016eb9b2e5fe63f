"""Reads of the social app, for the other apps (DESIGN §2): the state of the feeds, the inbox's
undecided posts and the reply outbox. Other apps read social's tables only through these.

``post_ids`` arguments take a list of inbox ids or a query of them (``values("…_id")`` of
another app's rows): such a query is run inside this one, as a subquery, so a sweep over many
posts costs one round trip and no list of ids.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, F, Min, OuterRef, QuerySet
from django.db.models.functions import Left, TruncDate
from django.utils.module_loading import import_string

from core.lookups import AnyOf
from social.models import (
    OUTCOME_UNDECIDED,
    FeedCursor,
    FeedKind,
    PlatformAccount,
    Post,
    Reply,
    ReplyStatus,
)

PostIds = Iterable[int] | QuerySet


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


# --- Feeds ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeedState:
    account: str
    feed: str
    lag_seconds: float | None
    polled_at: datetime | None
    stopped: bool
    last_error: str
    failing_since: datetime | None = None


def feed_states(*, now: datetime) -> list[FeedState]:
    """Every feed read so far, by account: its lag (now minus its high-water mark), when it was
    last read, and whether it is stopped (usage cap) or failing."""
    return [
        FeedState(
            account=f"@{c.account.handle} ({c.account.platform})",
            feed=c.feed,
            lag_seconds=_age(now, c.high_water_mark),
            polled_at=c.polled_at,
            stopped=c.stopped,
            last_error=c.last_error,
            failing_since=c.failing_since,
        )
        for c in FeedCursor.objects.select_related("account").order_by("account_id", "feed")
    ]


@dataclass(frozen=True)
class FeedHorizon:
    """How far an account's inbox is known complete and decided: ``high_water_mark``, the
    platform time up to which its mentions feed has stored every post (None: not known yet);
    ``oldest_undecided``, the platform time of its oldest post stored but not yet decided."""

    high_water_mark: datetime | None = None
    oldest_undecided: datetime | None = None


def feed_horizons(*, account_ids: Iterable[int]) -> dict[int, FeedHorizon]:
    """The ``FeedHorizon`` of each account (an empty one for an account never read), in two
    queries whatever the number of accounts."""
    ids = set(account_ids)
    marks = dict(
        FeedCursor.objects.filter(account_id__in=ids, feed=FeedKind.MENTIONS).values_list(
            "account_id", "high_water_mark"
        )
    )
    undecided = dict(
        Post.objects.filter(account_id__in=ids, outcome=OUTCOME_UNDECIDED)
        .values("account_id")
        .annotate(oldest=Min("posted_at"))
        .values_list("account_id", "oldest")
    )
    return {
        account_id: FeedHorizon(
            high_water_mark=marks.get(account_id), oldest_undecided=undecided.get(account_id)
        )
        for account_id in ids
    }


def accounts_to_poll() -> list[PlatformAccount]:
    """The enabled brand accounts, whose feeds are read, in a stable order."""
    return list(PlatformAccount.objects.filter(enabled=True).order_by("id"))


def brand_handles() -> dict[str, list[str]]:
    """The handles of the enabled brand accounts by platform, for pages that say where to post
    (issue 13, item 7)."""
    handles: dict[str, list[str]] = {}
    accounts = PlatformAccount.objects.filter(enabled=True).order_by("id")
    for platform, handle in accounts.values_list("platform", "handle"):
        handles.setdefault(platform, []).append(handle)
    return handles


def feeds_of(account: PlatformAccount, *, now: datetime) -> list[tuple[str, tuple[str, ...]]]:
    """The feeds to read for ``account``: its mentions, and in feed mode "search" the recent
    posts carrying one of the hashtags that ``HASHCART["SEARCH_HASHTAGS_SOURCE"]`` names for
    the platform at ``now`` (the live campaigns'; when there are any)."""
    feeds: list[tuple[str, tuple[str, ...]]] = [(FeedKind.MENTIONS, ())]
    if account.feed_mode == "search":
        source = import_string(settings.HASHCART["SEARCH_HASHTAGS_SOURCE"])
        hashtags = tuple(source(platform=account.platform, now=now))
        if hashtags:
            feeds.append((FeedKind.SEARCH, hashtags))
    return feeds


# --- The inbox --------------------------------------------------------------------------------
def posts_undecided(*, received_before: datetime | None = None, limit: int = 100_000) -> list[int]:
    """Ids of inbox posts not yet decided, oldest first (only those received before
    ``received_before``, when given: the recovery sweep's, whose task was lost)."""
    posts = Post.objects.filter(outcome=OUTCOME_UNDECIDED)
    if received_before is not None:
        posts = posts.filter(received_at__lt=received_before)
    return list(posts.order_by("id").values_list("pk", flat=True)[:limit])


@dataclass(frozen=True)
class Backlog:
    """How many items wait (``by_kind``: per reply kind) and when the oldest arrived."""

    count: int
    oldest: datetime | None
    by_kind: dict[str, int] = field(default_factory=dict)


def posts_undecided_backlog() -> Backlog:
    """How many inbox posts wait for a decision, and when the oldest of them was received."""
    row = Post.objects.filter(outcome=OUTCOME_UNDECIDED).aggregate(
        n=Count("id"), oldest=Min("received_at")
    )
    return Backlog(count=row["n"], oldest=row["oldest"])


def posts_accounts(*, post_ids: PostIds) -> dict[int, int]:
    """The brand account (its id) each of ``post_ids`` was read from."""
    return dict(Post.objects.filter(pk__in=post_ids).values_list("pk", "account_id"))


def posts_account_ids(*, post_ids: PostIds) -> set[int]:
    """The brand accounts (their ids) that ``post_ids`` were read from, each once."""
    return set(Post.objects.filter(pk__in=post_ids).values_list("account_id", flat=True).distinct())


def posts_count(
    *, campaign_id: int, posted_from: datetime, posted_until: datetime, outcomes: Iterable[str]
) -> int:
    """Decided posts that asked for the campaign ``campaign_id`` (as the decision recorded),
    posted in [``posted_from``, ``posted_until``), with one of ``outcomes``. Costs what the
    campaign's posts cost, never the whole inbox (the ``post_campaign_idx`` index)."""
    return Post.objects.filter(
        campaign_id=campaign_id,
        posted_at__gte=posted_from,
        posted_at__lt=posted_until,
        outcome__in=list(outcomes),
    ).count()


def posts_per_day(
    *,
    campaign_ids: Iterable[int],
    posted_from: datetime,
    posted_until: datetime,
    outcomes: Iterable[str],
    tz: tzinfo,
) -> list[tuple[int, date, str, int]]:
    """Decided posts that asked for one of ``campaign_ids`` (as the decision recorded), posted
    in [``posted_from``, ``posted_until``), with one of ``outcomes``: ``(campaign id, day in
    ``tz``, outcome, count)`` rows, in no order. Read from the ``post_campaign_idx`` index
    (campaign, time and outcome are all in it), so its cost follows those campaigns' posts in
    the range, never the inbox's.

    On PostgreSQL, one range of the index per day and campaign (``_POSTS_PER_DAY_SQL``): each
    day's posts are counted as they are read, with no day to work out for each post (a time
    zone conversion per row cost more than reading the index: ``bench_sales_report``)."""
    campaign_ids, outcomes = list(campaign_ids), list(outcomes)
    if connection.vendor == "postgresql":
        days, starts, ends = day_bounds(start=posted_from, end=posted_until, tz=tz)
        with connection.cursor() as cursor:
            cursor.execute(
                _POSTS_PER_DAY_SQL,
                {
                    "days": days,
                    "starts": starts,
                    "ends": ends,
                    "campaigns": campaign_ids,
                    "outcomes": outcomes,
                },
            )
            return [tuple(row) for row in cursor.fetchall()]
    return posts_per_day_portable(
        campaign_ids=campaign_ids,
        posted_from=posted_from,
        posted_until=posted_until,
        outcomes=outcomes,
        tz=tz,
    )


def posts_per_day_portable(
    *,
    campaign_ids: list[int],
    posted_from: datetime,
    posted_until: datetime,
    outcomes: list[str],
    tz: tzinfo,
) -> list[tuple[int, date, str, int]]:
    """``posts_per_day`` on any database: each post's day worked out and grouped on."""
    return list(
        Post.objects.filter(
            campaign_id__in=campaign_ids,
            posted_at__gte=posted_from,
            posted_at__lt=posted_until,
            outcome__in=outcomes,
        )
        .annotate(day=TruncDate("posted_at", tzinfo=tz))
        .values_list("campaign_id", "day", "outcome")
        .annotate(n=Count("*"))
        .order_by()
    )


# A count per day (its bounds in ``d``) of each campaign's posts by outcome: a range of
# ``post_campaign_idx`` per day and campaign (``campaign_id = ANY`` implies its condition).
_POSTS_PER_DAY_SQL = """
SELECT x.campaign_id, d.day, x.outcome, x.n
FROM unnest(%(days)s::date[], %(starts)s::timestamptz[], %(ends)s::timestamptz[]) AS d(day, s, e)
CROSS JOIN LATERAL (
    SELECT p.campaign_id, p.outcome, COUNT(*) AS n
    FROM social_post p
    WHERE p.campaign_id = ANY(%(campaigns)s) AND p.posted_at >= d.s AND p.posted_at < d.e
      AND p.outcome = ANY(%(outcomes)s)
    GROUP BY p.campaign_id, p.outcome
) AS x
"""


def day_bounds(
    *, start: datetime, end: datetime, tz: tzinfo
) -> tuple[list[date], list[datetime], list[datetime]]:
    """The days in ``tz`` that [``start``, ``end``) touches, each with the part of the range
    it holds: (days, their starts, their ends), for a query to read day by day (here and in
    ``orders.reports``)."""
    days, starts, ends = [], [], []
    day = start.astimezone(tz).date()
    while True:
        day_start = datetime.combine(day, time.min, tzinfo=tz)
        if day_start >= end:
            break
        days.append(day)
        starts.append(max(day_start, start))
        ends.append(min(datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz), end))
        day += timedelta(days=1)
    return days, starts, ends


# --- The reply outbox -------------------------------------------------------------------------
def accounts_with_due_replies() -> list[int]:
    """Ids of the accounts with replies queued (due now or later), sorted."""
    return sorted(
        set(
            Reply.objects.filter(status=ReplyStatus.QUEUED)
            .values_list("account_id", flat=True)
            .distinct()
        )
    )


def replies_backlog() -> Backlog:
    """Replies not yet sent (queued or being sent): how many of each kind, and when the oldest
    was queued."""
    unsent = Reply.objects.filter(status__in=[ReplyStatus.QUEUED, ReplyStatus.SENDING])
    by_kind = dict(unsent.values_list("kind").annotate(n=Count("id")).order_by("kind"))
    return Backlog(
        count=sum(by_kind.values()),
        oldest=unsent.aggregate(oldest=Min("created_at"))["oldest"],
        by_kind=by_kind,
    )


def replies_sent_at(*, post_ids: PostIds, kind: str) -> dict[int, datetime]:
    """When the reply of ``kind`` to each of ``post_ids`` was posted, for those posted."""
    sent = Reply.objects.filter(in_reply_to_id__in=post_ids, kind=kind, status=ReplyStatus.SENT)
    return {
        post_id: sent_at
        for post_id, sent_at in sent.values_list("in_reply_to_id", "sent_at")
        if sent_at is not None  # always set on a sent reply (a constraint)
    }


# A reply that is queued, being sent or sent will be (or was) posted; a skipped or failed one
# never will.
_GOING_OUT = (ReplyStatus.QUEUED, ReplyStatus.SENDING, ReplyStatus.SENT)


def posts_unanswered(*, post_ids: PostIds, kind: str) -> list[int]:
    """Of ``post_ids``, those whose reply of ``kind`` will never be posted: none was queued, or
    it was skipped or failed for good."""
    going_out = Reply.objects.filter(
        in_reply_to_id=OuterRef("pk"), kind=kind, status__in=_GOING_OUT
    )
    return list(
        Post.objects.filter(pk__in=post_ids)
        .exclude(Exists(going_out))
        .order_by("id")
        .values_list("pk", flat=True)
    )


def posts_undecided_of(*, post_ids: list[int], fields: tuple[str, ...]) -> QuerySet[Post]:
    """The undecided posts among ``post_ids`` in id order, with only ``fields`` read, each with
    ``brand_user_id``: its brand account's platform user id. Unlocked (a look ahead of a
    decision); ``social.services.posts_lock_undecided`` locks them for it."""
    return (
        Post.objects.filter(AnyOf(F("pk"), post_ids), outcome=OUTCOME_UNDECIDED)
        .only(*fields)
        .annotate(brand_user_id=F("account__platform_user_id"))
        .order_by("id")
    )


def posts_with_brands(rows: Iterable[Post]) -> tuple[list[Post], dict[int, str]]:
    """The posts of ``posts_undecided_of`` (locked or not) as a list, with each one's brand
    account's platform user id by post id."""
    posts = list(rows)
    # ``brand_user_id`` is the annotation ``posts_undecided_of`` adds.
    return posts, {p.pk: p.brand_user_id for p in posts}  # type: ignore[attr-defined]


def posts_decided_roots(*, platforms: set[str], root_ids: list[str]) -> set[tuple[str, str]]:
    """The ``(platform, root_id)`` of decided posts among these roots: an undecided post whose
    root is here edits a post already decided. An index scan on the roots named (a subquery per
    post is planned as a scan of every decided post)."""
    return set(
        Post.objects.filter(AnyOf(F("root_id"), root_ids), platform__in=platforms)
        .exclude(outcome=OUTCOME_UNDECIDED)
        .values_list("platform", "root_id")
    )


# Characters of a post's text read to find what a purchase asks for (variant and quantity):
# the words after its hashtag are few, and a long post costs no more than this.
PURCHASE_TEXT_READ = 2000


def posts_texts(*, post_ids: Iterable[int], max_chars: int = PURCHASE_TEXT_READ) -> dict[int, str]:
    """The first ``max_chars`` characters of each post's text, by post id, in one query (the
    decider reads what a purchase asks for, or the words around a hashtag that almost matched;
    the rest of a long text is not read)."""
    ids = list(set(post_ids))
    if not ids:
        return {}
    rows = (
        Post.objects.filter(AnyOf(F("pk"), ids))
        .annotate(head=Left("text", max_chars))
        .values_list("pk", "head")
    )
    return dict(rows)
