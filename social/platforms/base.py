"""The contract every social platform adapter meets (DESIGN §4).

An adapter does three things and holds no database transaction while it talks to the platform:

- ``fetch_mentions`` reads the brand account's mentions feed after a cursor and returns them as
  ``InboundPost`` values, with the new cursor and a high-water mark;
- ``send_reply`` posts a reply and returns the platform's id of it, with the visibility of
  the post it answers: a private post (Mastodon ``direct`` or ``private``) is answered by a
  direct message to its author, never publicly (DESIGN §4); ``fits`` says whether a reply's
  text meets the platform's length rule (``max_reply_length`` by its own counting), so that
  whoever writes replies can shorten them before they are queued;
- ``find_reply`` looks up a reply already posted, for a retry the platform refused as a
  duplicate (``DuplicateReply``): the first attempt was posted but its answer was lost;
- it raises the errors below, so that callers can tell waiting from giving up.

A read refused with a 4xx other than 401 and 429 raises ``RejectedError``: the poller records
it and shows it at once (``social.services.feed_poll``).

Normalisation is item by item (DESIGN §4): an item of a page that cannot be read (not an object,
no id, no author id, an unreadable ``created_at``) becomes an ``InboundPost`` whose ``malformed``
says why (``MalformedPost``), logged at ERROR with its ids; the poller stores it with the
outcome ``malformed`` and the rest of the page goes on.
"""

import abc
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from social.models import PlatformAccount, PostKind

logger = logging.getLogger(__name__)

# Old-style retweets ("RT @alice: ...") are reposts on every platform, even posted as new posts.
MANUAL_REPOST = re.compile(r"^\s*RT\s+@\w+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class InboundPost:
    """One post as Hashcart needs it, whatever the platform.

    ``hashtags`` are the hashtags the author wrote, as written (without ``#``): never those of
    quoted or reposted content, which are ``quoted_hashtags``. ``root_id`` is the first post of
    an edit chain (the post itself when it was never edited). ``kind`` is a
    ``social.models.PostKind`` value. ``visibility`` is who may see the post, in Mastodon's
    words (``public``, ``unlisted``, ``private``, ``direct``); replies keep it private.
    ``malformed``, when not empty, says why the item could not be read: nothing else in the
    post is to be trusted.
    """

    platform: str
    post_id: str
    root_id: str
    author_id: str
    author_handle: str
    text: str
    hashtags: tuple[str, ...]
    kind: str
    created_at: datetime
    quoted_hashtags: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)
    visibility: str = "public"
    malformed: str = ""


# Visibilities whose posts are answered privately (a direct message to the author).
PRIVATE_VISIBILITIES = frozenset({"private", "direct"})


@dataclass(frozen=True, slots=True)
class MalformedPost:
    """The one way a normaliser gives up on an item of a page (DESIGN §4): made for the item
    being read, then called with the reason it cannot be read, and its id and author id when it
    has usable ones; returns the post to store with the outcome ``malformed``::

        malformed = MalformedPost(platform="x", item=item, fetched_at=fetched_at)
        if not post_id:
            return malformed("no id")

    Without an id, the post's id is made from the item's content (``malformed-`` and a digest),
    so that reading the same item again stores it once. Logs the item at ERROR with its ids.
    """

    platform: str
    item: Any
    fetched_at: datetime

    def __call__(self, reason: str, *, post_id: str = "", author_id: str = "") -> InboundPost:
        if not post_id:
            content = json.dumps(self.item, sort_keys=True, default=str)
            post_id = "malformed-" + hashlib.sha256(content.encode()).hexdigest()[:40]
        logger.error(
            "%s item %s (author %s) is malformed: %s",
            self.platform,
            post_id,
            author_id or "?",
            reason,
        )
        return InboundPost(
            platform=self.platform,
            post_id=post_id,
            root_id=post_id,
            author_id=author_id,
            author_handle="",
            text="",
            hashtags=(),
            kind=PostKind.ORIGINAL,
            created_at=self.fetched_at,
            # The item as JSON can hold it: a client library's item may carry dates and others.
            raw={"malformed": reason, "item": json.loads(json.dumps(self.item, default=str))},
            malformed=reason,
        )


def oldest_first(post: InboundPost) -> tuple[int, str]:
    """Sort key of numeric post ids (X, Mastodon) as numbers, oldest first, without parsing."""
    return len(post.post_id), post.post_id


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A feed read: the posts (oldest first), the cursor to read from next time, and the platform
    time up to which every post is known to be in ``posts`` or read before (``None``: unknown,
    the feed's mark stays where it was). ``more``: whether the read stopped at its page budget
    with posts left to read, so that the poller reads again at once (``None``: the adapter does
    not know; a full page means more). An adapter that reads a backlog over several reads keeps
    its progress in ``cursor`` and must not move the mark past what is read."""

    posts: list[InboundPost]
    cursor: str
    high_water_mark: datetime | None
    more: bool | None = None


@dataclass(frozen=True, slots=True)
class SentReply:
    """A reply found on the platform: its id and the platform's time of posting."""

    platform_id: str
    posted_at: datetime


class PlatformError(Exception):
    """Base of the errors an adapter raises."""


class RateLimited(PlatformError):
    """The platform asked us to wait: send nothing before ``reset_at``."""

    def __init__(self, message: str, *, reset_at: datetime) -> None:
        super().__init__(message)
        self.reset_at = reset_at


class UsageCapped(PlatformError):
    """The account's or app's usage cap is reached: stop the feed and alert, do not retry."""


class TransientError(PlatformError):
    """A timeout or server error: retry later with backoff."""


class RejectedError(PlatformError):
    """The platform refused this request for good (a deleted or invisible target, a reply it does
    not permit, a parameter it does not accept). ``status``: the HTTP status, when there is one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DuplicateReply(RejectedError):
    """The platform refused a reply as a duplicate of one the account already posted (X's 403
    "duplicate content"). Not final: after a lost answer it is the retry of a reply that was
    posted, which the caller looks up with ``PlatformAdapter.find_reply``."""


class AccountAuthError(PlatformError):
    """The brand account's authorisation is missing, expired or revoked: nothing it sends can
    succeed until an operator authorises it again. Not a refusal of any one request: replies
    stay queued and the feed waits."""


class PlatformAdapter(abc.ABC):
    """One platform. Instances are cheap and hold no state between calls."""

    platform: str
    # The longest reply the platform accepts, in its own counting (see ``fits``).
    max_reply_length: ClassVar[int] = 500

    @classmethod
    def fits(cls, text: str) -> bool:
        """Whether ``text`` may be posted as a reply by the platform's length rule. By default
        every code point counts one; platforms that count otherwise override this."""
        return len(text) <= cls.max_reply_length

    @classmethod
    def post_url(cls, *, post_id: str, author_handle: str) -> str:
        """The public web page of a post (``post_id`` as stored, by ``author_handle``), for
        staff to open it on its platform; "" when the platform has none. Built from the ids
        alone, without asking the platform."""
        return ""

    @classmethod
    def replay_posts(cls, body: Any, *, fetched_at: datetime) -> list[InboundPost]:
        """The posts in ``body``, one response of the platform's API saved to a file (read by
        ``replay_posts``). An item that cannot be read is a ``malformed`` post; a body of any
        other shape holds no posts. By default a platform has no replayable responses."""
        return []

    @abc.abstractmethod
    def fetch_mentions(
        self, *, account: PlatformAccount, cursor: str, now: datetime, limit: int
    ) -> FetchResult:
        """Posts mentioning ``account`` after ``cursor`` ('' for the start), at most ``limit``.

        Raises ``RateLimited``, ``UsageCapped`` or ``TransientError``.
        """

    @abc.abstractmethod
    def send_reply(
        self,
        *,
        account: PlatformAccount,
        in_reply_to_post_id: str,
        text: str,
        idempotency_key: str,
        visibility: str = "public",
    ) -> str:
        """Post ``text`` as ``account`` in reply to a post; return the new post's platform id.

        ``visibility`` is the post's (``InboundPost.visibility``): a reply to a post in
        ``PRIVATE_VISIBILITIES`` must reach only its author (Mastodon: a ``direct`` status that
        mentions only them); a platform that cannot answer privately raises ``RejectedError``
        rather than answer publicly. Sending twice with one ``idempotency_key`` posts once where
        the platform supports keys. Raises ``RateLimited``, ``TransientError``,
        ``AccountAuthError``, ``DuplicateReply`` (the same text was posted already: look it up
        with ``find_reply``) or ``RejectedError``.
        """

    def find_reply(
        self,
        *,
        account: PlatformAccount,
        in_reply_to_post_id: str,
        text: str,
        since: datetime,
        idempotency_key: str = "",
    ) -> SentReply | None:
        """``account``'s reply with ``text`` to a post, posted at or after ``since``; None when
        there is none (yet). Called after ``DuplicateReply``, with the ``idempotency_key`` the
        reply was sent with (Bluesky keeps its replies at a record key made from it).
        Platforms whose idempotency keys make a retry return the first post never raise
        ``DuplicateReply`` and keep this default.
        Raises ``RateLimited``, ``TransientError`` or ``AccountAuthError``.
        """
        return None

    def fetch_search(
        self,
        *,
        account: PlatformAccount,
        cursor: str,
        now: datetime,
        limit: int,
        hashtags: tuple[str, ...],
    ) -> FetchResult:
        """Recent public posts carrying any of ``hashtags`` after ``cursor`` (feed mode
        "search"). Platforms without a search feed raise ``NotImplementedError``."""
        raise NotImplementedError(f"{self.platform} has no search feed")
