"""The Mastodon adapter, with Mastodon.py (DESIGN §4, issue 6).

- Feed: ``notifications(types=["mention"])``, paged with ``min_id`` (the cursor: the newest
  notification id read), oldest first.
- Identity: a person is keyed on their account's URI (``https://host/users/name``), which is
  the same from every server, unlike the server-local account id.
- Reblogs are ignored (a repost); an edit keeps its status id on Mastodon, so the inbox,
  unique per post id, never decides it twice.
- Text: statuses are HTML; hashtags are read from the text (twitter-text rules), as on X, up to
  ``MAX_TEXT`` characters, and only those Mastodon also lists in the status's ``tags`` (it does
  not tag a ``#`` inside a link), so no URL is looked for in the text.
- Item by item: a notification that cannot be read (not an object, a status without an id or
  an author, an unreadable date) is a ``malformed`` post; the rest of the page goes on.
- Replies: ``status_post`` with ``in_reply_to_id`` and Mastodon's idempotency key; a mention
  posted ``private`` or ``direct`` is answered by a ``direct`` status, which only the accounts
  it mentions (the buyer) see, never publicly.
"""

import html
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.utils import timezone

from social.credentials import credentials_decrypt
from social.hashtags import extract_hashtags
from social.models import PlatformAccount, PostKind
from social.platforms.base import (
    PRIVATE_VISIBILITIES,
    AccountAuthError,
    FetchResult,
    InboundPost,
    MalformedPost,
    PlatformAdapter,
    RateLimited,
    RejectedError,
    TransientError,
    oldest_first,
)

_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<br\s*/?>|</p>\s*<p>", re.IGNORECASE)
PAGE = 40  # Mastodon's largest notifications page
# Mastodon's own patterns for what it counts specially (``Account::MENTION_RE``, and links with
# a scheme); ASCII only, as its usernames are: anything else counts in full, which is safe.
_REMOTE_MENTION = re.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)@[\w.-]+\w", re.IGNORECASE | re.ASCII
)
_COUNTED_URL = re.compile(r"https?://\S+", re.IGNORECASE)
# Characters of a status's text read for hashtags. Mastodon's own limit is 500 by default but
# each server sets its own, and mentions arrive from any server of the fediverse: 5,000 is the
# documented default of GoToSocial, Pleroma and Akkoma, the largest in common use.
MAX_TEXT = 5_000
_VISIBILITIES = frozenset({"public", "unlisted", "private", "direct"})


def status_text(content: str) -> str:
    """The plain text of a status's HTML ``content``."""
    return html.unescape(_TAG.sub("", _BREAK.sub("\n", content or ""))).strip()


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _loose(tag: str) -> str:
    """Mastodon's sense of one tag: case and accents folded (it folds both; Hashcart does not,
    so this only checks that Mastodon tagged the hashtag, never which campaign it is)."""
    decomposed = unicodedata.normalize("NFKD", tag.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _hashtags(status: dict[str, Any], text: str) -> tuple[str, ...]:
    """The hashtags of the text that Mastodon also tagged (all of them when the status has no
    ``tags`` list at all, as in hand-written replays)."""
    tags = status.get("tags")
    if not isinstance(tags, list):
        return tuple(tag.text for tag in extract_hashtags(text, limit=MAX_TEXT))
    names = {_loose(str(t.get("name", ""))) for t in tags if isinstance(t, dict)}
    found = extract_hashtags(text, urls=(), limit=MAX_TEXT)
    return tuple(tag.text for tag in found if _loose(tag.text) in names)


def _id(value: Any) -> str:
    """A Mastodon id (ASCII digits; an integer is accepted), or "" for anything else. Any length:
    the inbox cuts one longer than it keeps, deliberately (``social.services.inbox_post_id``)."""
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text if text.isascii() and text.isdigit() else ""


def inbound_from_notification(notification: Any, *, fetched_at: datetime) -> InboundPost | None:
    """A mention notification as an ``InboundPost``; None for any other notification; a
    ``malformed`` post for one that cannot be read (DESIGN §4)."""
    malformed = MalformedPost(platform="mastodon", item=notification, fetched_at=fetched_at)
    if not isinstance(notification, dict):
        return malformed("not an object")
    if notification.get("type") != "mention":
        return None
    status = notification.get("status")
    if not isinstance(status, dict):
        return malformed("a mention without a status")
    post_id = _id(status.get("id"))
    account = status.get("account") or notification.get("account") or {}
    author = None
    if isinstance(account, dict):
        author = account.get("uri") or account.get("url") or account.get("id")
    author_id = str(author) if isinstance(author, str | int) and str(author) else ""
    if not post_id:
        return malformed("a status without an id", author_id=author_id)
    if not author_id:
        return malformed("a status without an author id", post_id=post_id)
    created_at = _when(status.get("created_at") or notification.get("created_at"))
    if created_at is None:
        return malformed("an unreadable created_at", post_id=post_id, author_id=author_id)
    text = status_text(str(status.get("content", "")))
    hashtags: tuple[str, ...] = ()
    if status.get("reblog"):
        kind = PostKind.REPOST
    else:
        kind = PostKind.REPLY if status.get("in_reply_to_id") else PostKind.ORIGINAL
        hashtags = _hashtags(status, text)
    quoted = status.get("quote") or {}
    quoted_status = quoted.get("quoted_status") if isinstance(quoted, dict) else None
    quoted_hashtags = (
        _hashtags(quoted_status, status_text(str(quoted_status.get("content", ""))))
        if isinstance(quoted_status, dict)
        else ()
    )
    if quoted_status:
        kind = PostKind.QUOTE
    visibility = status.get("visibility")
    return InboundPost(
        platform="mastodon",
        post_id=post_id,
        root_id=post_id,
        author_id=author_id,
        author_handle=str(account.get("acct", "")),
        text=text,
        hashtags=hashtags,
        kind=kind,
        created_at=created_at,
        quoted_hashtags=quoted_hashtags,
        raw={"notification_id": str(notification.get("id")), "status_id": post_id},
        # An unknown visibility is treated as the most private one.
        visibility=visibility if visibility in _VISIBILITIES else "direct",
    )


def inbound_from_notifications(
    notifications: list[Any], *, fetched_at: datetime | None = None
) -> list[InboundPost]:
    """The mentions of a notifications page, oldest first, each read on its own."""
    fetched_at = fetched_at or timezone.now()
    posts = [
        p
        for n in notifications
        if (p := inbound_from_notification(n, fetched_at=fetched_at)) is not None
    ]
    return sorted(posts, key=oldest_first)


def countable_text(text: str) -> str:
    """``text`` as Mastodon counts a status against its limit, or longer: a mention of a remote
    account counts as ``@user`` (its domain is free), a link as 23 characters (here: at least
    23), and every code point as one (Mastodon counts graphemes, never more)."""
    counted = _REMOTE_MENTION.sub(r"@\1", text)
    return _COUNTED_URL.sub(lambda link: "x" * max(23, len(link.group())), counted)


class MastodonAdapter(PlatformAdapter):
    platform = "mastodon"
    # Mastodon's default limit, counted by ``countable_text``.
    max_reply_length = 500

    @classmethod
    def fits(cls, text: str) -> bool:
        return len(countable_text(text)) <= cls.max_reply_length

    @classmethod
    def post_url(cls, *, post_id: str, author_handle: str) -> str:
        # Status ids are the brand's server's: its web page shows any status it knows at
        # /@acct/id, a remote author's included.
        if not post_id or not author_handle:
            return ""
        base = settings.MASTODON_API_BASE_URL.rstrip("/")
        return f"{base}/@{quote(author_handle, safe='@.')}/{quote(post_id, safe='')}"

    @classmethod
    def replay_posts(cls, body: Any, *, fetched_at: datetime) -> list[InboundPost]:
        """A notifications list, or one notification."""
        if isinstance(body, list):
            return inbound_from_notifications(body, fetched_at=fetched_at)
        if isinstance(body, dict) and body.get("type"):
            return inbound_from_notifications([body], fetched_at=fetched_at)
        return []

    def __init__(self, client: Any = None) -> None:
        self._client = client

    def client(self, account: PlatformAccount) -> Any:
        if self._client is not None:
            return self._client
        from mastodon import Mastodon

        credentials = credentials_decrypt(account.credentials_encrypted)
        return Mastodon(
            access_token=credentials.get("access_token"),
            api_base_url=credentials.get("api_base_url") or settings.MASTODON_API_BASE_URL,
            version_check_mode="none",
            ratelimit_method="throw",
            request_timeout=20,
        )

    def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        from mastodon import (
            MastodonError,
            MastodonNetworkError,
            MastodonNotFoundError,
            MastodonRatelimitError,
            MastodonServerError,
            MastodonUnauthorizedError,
        )
        from mastodon.errors import MastodonAPIError

        try:
            return function(*args, **kwargs)
        except MastodonRatelimitError as exc:
            # Mastodon.py keeps the server's X-RateLimit-Reset on the client (epoch seconds).
            reset = getattr(getattr(function, "__self__", None), "ratelimit_reset", None)
            now = timezone.now()
            reset_at = (
                datetime.fromtimestamp(reset, tz=UTC)
                if isinstance(reset, int | float) and reset > now.timestamp()
                else now + timedelta(minutes=5)
            )
            raise RateLimited("Mastodon rate limit", reset_at=reset_at) from exc
        except (MastodonNetworkError, MastodonServerError) as exc:
            raise TransientError(f"Mastodon unreachable or failing: {type(exc).__name__}") from exc
        except MastodonUnauthorizedError as exc:
            raise AccountAuthError(f"Mastodon refused the account's token: {exc}") from exc
        except (MastodonNotFoundError, MastodonAPIError) as exc:
            # Mastodon.py's API errors carry (message, status, reason, error) as their args.
            status = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
            raise RejectedError(f"Mastodon refused: {exc}", status=status) from exc
        except MastodonError as exc:  # a request Mastodon.py itself refuses to make
            raise RejectedError(f"Mastodon request refused: {type(exc).__name__}: {exc}") from exc

    def fetch_mentions(
        self, *, account: PlatformAccount, cursor: str, now: datetime, limit: int
    ) -> FetchResult:
        client = self.client(account)
        notifications: list[dict[str, Any]] = []
        newest = cursor
        while len(notifications) < limit:
            page = self._call(
                client.notifications, types=["mention"], min_id=newest or None, limit=PAGE
            )
            if not page:
                break
            notifications.extend(page)
            # A notification without a usable id is read (as malformed) but moves no cursor.
            ids = [int(i) for n in page if isinstance(n, dict) and (i := _id(n.get("id")))]
            newest = str(max(ids, default=int(newest or 0)))
            if len(page) < PAGE:
                break
        return FetchResult(
            posts=inbound_from_notifications(notifications, fetched_at=now),
            cursor=newest,
            high_water_mark=now - timedelta(seconds=5),
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
        # "private" is followers-only: the brand's followers would see the answer. A private
        # post is answered by a direct status, seen only by the accounts it mentions.
        status = self._call(
            self.client(account).status_post,
            text,
            in_reply_to_id=in_reply_to_post_id,
            visibility="direct" if visibility in PRIVATE_VISIBILITIES else "public",
            idempotency_key=idempotency_key,
        )
        return str(status["id"])
