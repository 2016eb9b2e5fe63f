"""The sandbox adapter: reads and writes the sandbox network in the database (DESIGN §4)."""

from datetime import datetime, timedelta
from itertools import takewhile
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from sandbox.models import SandboxPost, SandboxUser
from sandbox.services import sandbox_post_create
from social.hashtags import MAX_TEXT, extract_hashtags
from social.models import PlatformAccount, PostKind
from social.platforms.base import (
    MANUAL_REPOST,
    DuplicateReply,
    FetchResult,
    InboundPost,
    MalformedPost,
    PlatformAdapter,
    RejectedError,
    SentReply,
)


def _settle() -> timedelta:
    # Posts are read only once they are this old, so that a post whose transaction commits a
    # moment after a later id's is not skipped by the cursor.
    return timedelta(milliseconds=settings.HASHCART["SANDBOX_SETTLE_MS"])


def sandbox_inbound(post: SandboxPost) -> InboundPost:
    """The ``InboundPost`` for a sandbox post (its author must be loaded)."""
    hashtags: tuple[str, ...] = ()
    if post.repost_of_id is not None or MANUAL_REPOST.match(post.text):
        kind, hashtags = PostKind.REPOST, ()
    else:
        kind = (
            PostKind.QUOTE
            if post.quote_of_id is not None
            else PostKind.REPLY
            if post.in_reply_to_id is not None
            else PostKind.ORIGINAL
        )
        hashtags = tuple(tag.text for tag in extract_hashtags(post.text, limit=MAX_TEXT))
    return InboundPost(
        platform="sandbox",
        post_id=str(post.pk),
        root_id=str(post.edit_of_id or post.pk),
        author_id=str(post.author_id),
        author_handle=post.author.handle,
        text=post.text,
        hashtags=hashtags,
        kind=kind,
        created_at=post.created_at,
        quoted_hashtags=tuple(t.text for t in extract_hashtags(post.quote_of.text, limit=MAX_TEXT))
        if post.quote_of is not None
        else (),
        raw={
            "id": post.pk,
            "author_id": post.author_id,
            "text": post.text,
            "in_reply_to_id": post.in_reply_to_id,
            "repost_of_id": post.repost_of_id,
            "quote_of_id": post.quote_of_id,
            "edit_of_id": post.edit_of_id,
            "created_at": post.created_at.isoformat(),
        },
    )


def sandbox_replay_inbound(item: Any, now: datetime) -> InboundPost:
    """One post of a replayed sandbox file (``{"id", "handle", "text", "author_id"?,
    "created_at"?, "in_reply_to"?, "repost_of"?, "quote_of"?, "edit_of"?}``), or a ``malformed``
    post saying what is missing."""

    malformed = MalformedPost(platform="sandbox", item=item, fetched_at=now)
    if not isinstance(item, dict):
        return malformed("not an object")
    raw_id, text, handle = (
        item.get("id"),
        item.get("text"),
        item.get("handle") or item.get("author"),
    )
    post_id = str(raw_id) if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else ""
    if not post_id or len(post_id) > 64:
        return malformed("no id")
    if not isinstance(handle, str) or not handle.strip():
        return malformed("no author (handle)", post_id=post_id)
    author_id = str(item.get("author_id") or f"replay:{handle.lower()}")
    if not isinstance(text, str):
        return malformed("no text", post_id=post_id, author_id=author_id)
    created = item.get("created_at")
    try:
        created_at = datetime.fromisoformat(created) if created else now
    except (TypeError, ValueError):
        return malformed("an unreadable created_at", post_id=post_id, author_id=author_id)
    if created_at.tzinfo is None:
        return malformed("a created_at without a time zone", post_id=post_id, author_id=author_id)
    repost = bool(item.get("repost_of")) or bool(MANUAL_REPOST.match(text))
    kind = (
        PostKind.REPOST
        if repost
        else PostKind.QUOTE
        if item.get("quote_of")
        else PostKind.REPLY
        if item.get("in_reply_to")
        else PostKind.ORIGINAL
    )
    return InboundPost(
        platform="sandbox",
        post_id=post_id,
        root_id=str(item.get("edit_of") or post_id),
        author_id=author_id,
        author_handle=handle,
        text=text,
        hashtags=() if repost else tuple(t.text for t in extract_hashtags(text, limit=MAX_TEXT)),
        kind=kind,
        created_at=created_at,
        raw=item,
    )


class SandboxAdapter(PlatformAdapter):
    platform = "sandbox"
    # The sandbox stands in for X in the demo: replies up to 280 characters, each counting one
    # (without X's weights), so that a reply the demo shows is one X would take in Latin text.
    max_reply_length = 280

    @classmethod
    def post_url(cls, *, post_id: str, author_handle: str) -> str:
        # The sandbox network's page of the post, while the network's pages are on.
        if not settings.HASHCART["SANDBOX_PAGE"] or not post_id.isdigit():
            return ""
        return reverse("sandbox:post_page", args=[int(post_id)])

    @classmethod
    def replay_posts(cls, body: Any, *, fetched_at: datetime) -> list[InboundPost]:
        """A list of posts (``sandbox_replay_inbound``)."""
        if isinstance(body, list):
            return [sandbox_replay_inbound(item, fetched_at) for item in body]
        return []

    def fetch_mentions(
        self, *, account: PlatformAccount, cursor: str, now: datetime, limit: int
    ) -> FetchResult:
        horizon = now - _settle()
        page = list(
            SandboxPost.objects.filter(
                mentions__id=int(account.platform_user_id), id__gt=int(cursor or 0)
            )
            .select_related("author", "quote_of")
            .order_by("id")[:limit]
        )
        # The cursor is an id, so the page stops at the first post not yet settled: taking a
        # later, settled one would move the cursor past the unsettled one for good.
        posts = list(takewhile(lambda post: post.created_at <= horizon, page))
        if len(posts) < len(page):
            # What is left unread is no older than its oldest post: the mark stays below that.
            unread = min(post.created_at for post in page[len(posts) :])
            high_water_mark = min(horizon, unread - timedelta(microseconds=1))
        elif len(page) < limit:
            high_water_mark = horizon  # a short page: everything up to the horizon was read
        else:
            high_water_mark = posts[-1].created_at
        return FetchResult(
            posts=[sandbox_inbound(post) for post in posts],
            cursor=str(posts[-1].pk) if posts else cursor,
            high_water_mark=high_water_mark,
        )

    def send_reply(
        self,
        *,
        account: PlatformAccount,
        in_reply_to_post_id: str,
        text: str,
        idempotency_key: str,
        visibility: str = "public",
    ) -> str:
        # The sandbox network is public: every post, and so every reply, is "public".
        brand = SandboxUser.objects.filter(pk=int(account.platform_user_id)).first()
        if brand is None:
            raise RejectedError(f"The sandbox has no user {account.platform_user_id}.")
        if not SandboxPost.objects.filter(pk=int(in_reply_to_post_id)).exists():
            raise RejectedError("The post replied to no longer exists.")
        # As X does, the same text twice from one account is refused, unless it is the retry of
        # one send (its idempotency key), which returns the first post.
        if (
            SandboxPost.objects.filter(author=brand, text=text)
            .exclude(idempotency_key=idempotency_key)
            .exists()
        ):
            raise DuplicateReply("You are not allowed to create a post with duplicate content.")
        post = sandbox_post_create(
            handle=brand.handle,
            text=text,
            now=timezone.now(),
            in_reply_to_id=int(in_reply_to_post_id),
            idempotency_key=idempotency_key,
        )
        return str(post.pk)

    def find_reply(
        self,
        *,
        account: PlatformAccount,
        in_reply_to_post_id: str,
        text: str,
        since: datetime,
        idempotency_key: str = "",
    ) -> SentReply | None:
        post = (
            SandboxPost.objects.filter(
                author_id=int(account.platform_user_id),
                in_reply_to_id=int(in_reply_to_post_id),
                text=text,
                created_at__gte=since,
            )
            .order_by("id")
            .first()
        )
        return (
            None if post is None else SentReply(platform_id=str(post.pk), posted_at=post.created_at)
        )
