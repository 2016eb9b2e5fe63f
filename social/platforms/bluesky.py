"""The Bluesky adapter (AT Protocol, XRPC over HTTP; DESIGN §4, issue 15).

The ``atproto`` SDK (MarshalX's) builds and checks what is sent: the reply record, its strong
refs and facets are its lexicon models (``atproto_client.models``), dumped as the lexicon's
JSON. Calls go over plain ``requests``, not the SDK's client, because its client refreshes
sessions by itself, in-process, where the refresh token must be spent once under the account
row's lock (``bluesky_auth``); and because the rate-limit headers, the idempotent retry of a
reply and the configurable service are simplest to honour on the wire (and ``responses``
plays the service in tests, as for X).

- Service: ``BLUESKY_SERVICE_URL`` (the account's PDS; ``https://bsky.social`` by default, which
  also serves the AppView's ``app.bsky.*`` reads), or the account's ``service_url`` credential.
- Feeds: the brand's notifications (``app.bsky.notification.listNotifications``, reasons
  ``mention`` and ``reply``) and, in feed mode "search", the live campaigns' hashtags
  (``app.bsky.feed.searchPosts`` with ``tag``, one query per hashtag, ``since`` the cursor
  less ``INDEX_DELAY``, for posts indexed late). Both page newest first by the service's
  cursor (an empty page with a new cursor reads on; a repeated cursor ends the query), down to
  the post last read (``indexedAt``, the cursor); a backlog longer than a read's budget is read
  over several reads, each committed by the poller with its posts, its progress in the cursor
  (``ReadProgress``), and the high-water mark moves only once a round has read down to the old
  cursor (or ``MAX_ROUND_PAGES``). No post read is older than the last round's mark: a view's
  ``indexedAt`` is the earlier of the record's ``createdAt`` and its indexing, so a backdated
  post would otherwise slip into a closed window. Quoted posts of notifications are fetched
  (``app.bsky.feed.getPosts``) so that their hashtags are known, best effort: a failed lookup
  leaves those quotes without quoted hashtags and the page goes on (``_quoted``).
- Replies: ``com.atproto.repo.createRecord`` of an ``app.bsky.feed.post`` whose ``reply.root``
  and ``reply.parent`` are strong refs (uri and cid: the post's own thread root when it is a
  reply, from ``getPosts``), with a mention facet for the author (their DID) and tag facets,
  at UTF-8 byte offsets. Its record key is derived from the reply's idempotency key
  (``record_key``), so a retry after a lost answer cannot post twice: the service refuses the
  existing key (today often with a 500), the record is found there (``getRecord``) and the
  retry is a ``DuplicateReply`` that ``find_reply`` answers with the same key.
- Rate limits: after a 429, no request of that account and method before ``ratelimit-reset``
  (a cache entry every worker sees; ``RateLimited``, which costs a reply no attempt), kept
  between a second and an hour away (5 minutes when it is missing or unreadable). Writes
  cost points (``WRITE_POINTS_*``): the account's reply budget must stay within them
  (``within_write_limits``; the default budget does).
- Sessions: ``bluesky_auth``; an access token the service refuses as expired is refreshed once
  and the call made again.
"""

import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import requests
from atproto_client import models
from atproto_client.models.utils import get_model_as_dict
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from social.credentials import credentials_decrypt
from social.hashtags import extract_hashtags
from social.models import PlatformAccount
from social.platforms.base import (
    AccountAuthError,
    DuplicateReply,
    FetchResult,
    InboundPost,
    PlatformAdapter,
    PlatformError,
    RateLimited,
    RejectedError,
    SentReply,
    TransientError,
)
from social.platforms.bluesky_auth import bluesky_session
from social.platforms.bluesky_posts import (
    MAX_TAG_BYTES,
    MAX_TAG_GRAPHEMES,
    POST,
    REASONS,
    graphemes,
    inbound_from_items,
    items_of,
    post_uri,
    quoted_uri,
    when,
)

logger = logging.getLogger(__name__)
TIMEOUT = (5, 20)
PAGE_SIZE = 100  # the largest page of listNotifications and searchPosts
GET_POSTS_MAX = 25  # uris per app.bsky.feed.getPosts
# Pages of one query a round reads at most (10,000 posts): more is a service going round in
# circles (cursors that repeat further apart than one page) or years of notifications on a
# first read; the round ends there, with an ERROR line, rather than never.
MAX_ROUND_PAGES = 100
# How long a post may take to show in notifications and search: the high-water mark lags a
# round's start by this much.
INDEX_DELAY = timedelta(seconds=30)
# A 429's hold: its ``ratelimit-reset`` (epoch seconds) kept between a second and an hour
# from now (a reset in 2100 would stop the account for good); without a readable one, 5 minutes.
HOLD_MIN = timedelta(seconds=1)
HOLD_MAX = timedelta(hours=1)
HOLD_UNKNOWN = timedelta(minutes=5)
# Bluesky's write limits per account (points; creating a record costs 3).
WRITE_POINTS_PER_HOUR = 5000
WRITE_POINTS_PER_DAY = 35000
CREATE_POINTS = 3
NOTIFICATIONS = "app.bsky.notification.listNotifications"
SEARCH = "app.bsky.feed.searchPosts"
GET_POSTS = "app.bsky.feed.getPosts"
CREATE_RECORD = "com.atproto.repo.createRecord"
GET_RECORD = "com.atproto.repo.getRecord"
SESSION = "com.atproto.server.*Session"  # createSession and refreshSession, one hold
_EXPIRED = ("ExpiredToken", "InvalidToken")


def within_write_limits(budget: int, seconds: int) -> bool:
    """Whether a reply budget (a token bucket of ``budget`` replies refilled over ``seconds``)
    can never post more than Bluesky's write points allow in an hour or a day: a full bucket
    emptied at once, plus what refills in the period."""
    rate = budget / max(1, seconds)
    return all(
        (budget + rate * period) * CREATE_POINTS <= points
        for period, points in ((3600, WRITE_POINTS_PER_HOUR), (86400, WRITE_POINTS_PER_DAY))
    )


# --- Record keys ---------------------------------------------------------------------------
_BASE32_SORTABLE = "234567abcdefghijklmnopqrstuvwxyz"
_TID_FROM = int(datetime(2023, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
_TID_SPAN = 365 * 86400 * 1_000_000  # microseconds


def record_key(idempotency_key: str) -> str:
    """A record key of TID syntax (``app.bsky.feed.post`` keys are TIDs: 13 base32-sortable
    characters of 53 bits of microseconds and 10 of clock id) made from ``idempotency_key``:
    the same key always gives the same record key. Its time part is a digest placed in 2023
    (never in the future: nothing sorts it ahead of real posts), so it says nothing of when."""
    digest = int.from_bytes(hashlib.sha256(idempotency_key.encode()).digest()[:8], "big")
    micros = _TID_FROM + (digest >> 10) % _TID_SPAN
    value = (micros << 10) | (digest & 0x3FF)
    return "".join(_BASE32_SORTABLE[(value >> (5 * i)) & 31] for i in range(12, -1, -1))


# --- The reply record ----------------------------------------------------------------------
# A post's AT URI (its id here): the author's DID and the record key.
_POST_URI = re.compile(
    r"at://(?P<did>did:[a-z]+:[A-Za-z0-9._:%-]+)/app\.bsky\.feed\.post/(?P<rkey>[A-Za-z0-9._~:-]+)"
)
_LEADING_MENTION = re.compile(r"@[A-Za-z0-9.-]*[A-Za-z0-9]…?")
# Characters of a handle a reply shows. A handle is a domain name of up to 253 characters, which
# would leave a 300-grapheme reply no room; the mention facet links the author's DID whatever
# its text says, so a longer handle is shown cut, with "…".
HANDLE_SHOWN = 64


def shown_text(text: str) -> str:
    """``text`` as posted: its opening ``@handle`` cut to ``HANDLE_SHOWN`` characters."""
    mention = _LEADING_MENTION.match(text)
    if mention is None or len(mention.group()) - 1 <= HANDLE_SHOWN:
        return text
    return mention.group()[: HANDLE_SHOWN + 1] + "…" + text[mention.end() :]


def _byte_slice(text: str, start: int, end: int) -> models.AppBskyRichtextFacet.ByteSlice:
    """The UTF-8 byte range of the code points ``text[start:end]``."""
    byte_start = len(text[:start].encode("utf-8"))
    return models.AppBskyRichtextFacet.ByteSlice(
        byte_start=byte_start, byte_end=byte_start + len(text[start:end].encode("utf-8"))
    )


def reply_facets(text: str, *, author_did: str) -> list[models.AppBskyRichtextFacet.Main]:
    """The facets of a reply: the mention it opens with (``@handle``: the author, by DID) and
    its hashtags (``#ConfirmABCDE``), at UTF-8 byte offsets."""
    facets = []
    mention = _LEADING_MENTION.match(text)
    if mention:
        facets.append(
            models.AppBskyRichtextFacet.Main(
                index=_byte_slice(text, *mention.span()),
                features=[models.AppBskyRichtextFacet.Mention(did=author_did)],
            )
        )
    for tag in extract_hashtags(text):
        if (
            len(tag.text.encode("utf-8")) <= MAX_TAG_BYTES
            and graphemes(tag.text) <= MAX_TAG_GRAPHEMES
        ):
            facets.append(
                models.AppBskyRichtextFacet.Main(
                    # The span covers the hash sign too, as Bluesky's own clients write it.
                    index=_byte_slice(text, tag.start, tag.end),
                    features=[models.AppBskyRichtextFacet.Tag(tag=tag.text)],
                )
            )
    return facets


def reply_record(*, text: str, parent: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The ``app.bsky.feed.post`` record answering the post view ``parent`` with ``text`` (as
    shown: ``shown_text``): ``reply.parent`` is the post, ``reply.root`` its thread's root (the
    post itself when it starts one)."""
    text = shown_text(text)
    parent_ref = models.ComAtprotoRepoStrongRef.Main(uri=parent["uri"], cid=parent["cid"])
    own_reply = (parent.get("record") or {}).get("reply")
    root = own_reply.get("root") if isinstance(own_reply, dict) else None
    root_ref = (
        models.ComAtprotoRepoStrongRef.Main(uri=root["uri"], cid=root["cid"])
        if isinstance(root, dict) and root.get("uri") and root.get("cid")
        else parent_ref
    )
    record = models.AppBskyFeedPost.Record(
        text=text,
        created_at=now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        facets=reply_facets(text, author_did=parent["author"]["did"]) or None,
        reply=models.AppBskyFeedPost.ReplyRef(root=root_ref, parent=parent_ref),
    )
    return dict(get_model_as_dict(record))


# --- Reading -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReadProgress:
    """Where a feed stands: every post indexed up to ``since`` is read; during a round (a
    backlog read over several reads, ``started`` set) the round has also read its first
    ``index`` queries down to ``since`` and the current one up to its page cursor ``page``.
    ``newest``: the newest ``indexedAt`` the round has seen, the next ``since``. ``mark``: the
    high-water mark of the last round read to its end: a post first listed after it cannot
    have been indexed before it, whatever time it gives itself."""

    since: str = ""
    mark: str = ""
    newest: str = ""
    started: str = ""
    queries: str = ""
    index: int = 0
    page: str = ""
    pages: int = 0  # of the current query, this round

    PREFIX = "round1:"

    def encode(self) -> str:
        if not self.started and not self.mark:
            return self.since
        return self.PREFIX + json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def decode(cls, cursor: str) -> "ReadProgress":
        if not cursor.startswith(cls.PREFIX):
            return cls(since=cursor)
        try:
            fields = json.loads(cursor[len(cls.PREFIX) :])
            return cls(**{k: fields[k] for k in asdict(cls()) if k in fields})
        except (ValueError, TypeError):
            return cls()


def _later(a: str, b: str) -> str:
    """The later of two ISO datetimes ("" is before every one)."""
    parsed = [(when(x), x) for x in (a, b) if when(x) is not None]
    return max(parsed)[1] if parsed else ""


Page = tuple[list[Any], str, dict[str, Any]]  # items, the next page's cursor, quoted records


class BlueskyAdapter(PlatformAdapter):
    platform = "bluesky"
    # ``app.bsky.feed.post``'s text: at most 300 graphemes and 3,000 UTF-8 bytes, as posted
    # (``shown_text``: a long handle is cut).
    max_reply_length = 300
    max_reply_bytes = 3000

    @classmethod
    def fits(cls, text: str) -> bool:
        text = shown_text(text)
        return (
            len(text.encode("utf-8")) <= cls.max_reply_bytes
            and graphemes(text) <= cls.max_reply_length
        )

    @classmethod
    def post_url(cls, *, post_id: str, author_handle: str) -> str:
        # A post id is its AT URI, at://<did>/app.bsky.feed.post/<rkey>: the web app's page
        # is /profile/<did>/post/<rkey>.
        match = _POST_URI.fullmatch(post_id)
        if match is None:
            return ""
        return f"https://bsky.app/profile/{match['did']}/post/{match['rkey']}"

    @classmethod
    def replay_posts(cls, body: Any, *, fetched_at: datetime) -> list[InboundPost]:
        """A ``listNotifications``, ``searchPosts``, ``getPosts`` or ``getPostThread``
        response, or a list of notifications or post views."""
        return inbound_from_items(items_of(body), fetched_at=fetched_at)

    def __init__(self, session: requests.Session | None = None) -> None:
        self.http = session or requests.Session()

    # --- Transport ---
    @staticmethod
    def _service(account: PlatformAccount) -> str:
        credentials = credentials_decrypt(account.credentials_encrypted)
        url = credentials.get("service_url") or settings.BLUESKY_SERVICE_URL
        return str(url).rstrip("/")

    @staticmethod
    def _blocked_key(account_id: int, nsid: str) -> str:
        return f"bluesky:rate-limited:{account_id}:{nsid}"

    def _rate_limited(
        self, account: PlatformAccount, nsid: str, response: requests.Response
    ) -> None:
        now = timezone.now()
        reset = str(response.headers.get("ratelimit-reset") or "").strip()
        reset_at = now + HOLD_UNKNOWN
        # ASCII digits only: "²" is a digit to ``str.isdigit`` but not to ``int``.
        if reset.isascii() and reset.isdigit():
            try:
                value = int(reset)  # a Python int: no overflow until compared or converted
                if value < (now + HOLD_MIN).timestamp():
                    reset_at = now + HOLD_MIN
                elif value > (now + HOLD_MAX).timestamp():
                    reset_at = now + HOLD_MAX
                else:
                    reset_at = datetime.fromtimestamp(value, tz=UTC)
            except (ValueError, OverflowError):  # past ``int``'s digit limit
                pass
        seconds = max(1, int((reset_at - now).total_seconds()) + 1)
        cache.set(self._blocked_key(account.pk, nsid), reset_at, timeout=seconds)
        raise RateLimited(
            f"Bluesky rate limit on {nsid} until {reset_at:%H:%M:%S}", reset_at=reset_at
        )

    def _call(
        self,
        account: PlatformAccount,
        nsid: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One XRPC call as the account (a query with ``params``, a procedure with ``body``).

        Raises ``RateLimited`` (before sending while a reset is pending), ``TransientError``
        (unreachable, 5xx, not JSON), ``AccountAuthError`` (the session cannot be had) or
        ``RejectedError`` (any other 4xx; its message names the XRPC error)."""
        now = timezone.now()
        # A 429 to a session's login or refresh holds every call: none has a token before it.
        for key in (self._blocked_key(account.pk, nsid), self._blocked_key(account.pk, SESSION)):
            blocked_until = cache.get(key)
            if blocked_until and blocked_until > now:
                raise RateLimited(
                    "Bluesky rate limit: waiting for its reset", reset_at=blocked_until
                )
        service = self._service(account)
        session = partial(
            bluesky_session,
            account_id=account.pk,
            did=account.platform_user_id,
            service_url=service,
            now=now,
            http=self.http,
            rate_limited=lambda _, response: self._rate_limited(account, SESSION, response),
        )
        token = str(session()["access_jwt"])
        for attempt in (1, 2):
            try:
                response = self.http.request(
                    "POST" if body is not None else "GET",
                    f"{service}/xrpc/{nsid}",
                    params=params,
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=TIMEOUT,
                )
            except requests.RequestException as exc:
                raise TransientError(f"Bluesky unreachable: {type(exc).__name__}") from exc
            error, message = _problem(response)
            if response.status_code in (400, 401) and error in _EXPIRED and attempt == 1:
                token = str(session(stale=token)["access_jwt"])
                continue
            break
        if response.status_code == 429:
            self._rate_limited(account, nsid, response)
        if response.status_code >= 500:
            raise TransientError(f"Bluesky {nsid} answered {response.status_code} {error}")
        if response.status_code == 401 or error in _EXPIRED:
            raise AccountAuthError(f"Bluesky refused the account's session: {error} {message}")
        if response.status_code >= 400:
            raise RejectedError(
                f"Bluesky refused {nsid}: {response.status_code} {error} {message}".strip(),
                status=response.status_code,
            )
        try:
            return dict(response.json())
        except ValueError as exc:
            raise TransientError(f"Bluesky {nsid} answered without JSON") from exc

    # --- Feeds ---
    def _quoted(self, account: PlatformAccount, items: list[Any]) -> dict[str, Any]:
        """The records of the posts that notifications quote, by AT URI (``getPosts``).

        Best effort: a lookup that fails (``PlatformError``: a 429, which also holds the method
        for its reset, a 5xx, a refusal) leaves its quotes unknown and the page is read all the
        same. An unknown quote has no ``quoted_hashtags``. That is the safe side: only a post's
        own hashtags ever buy, so the quote is at worst decided ``no_campaign`` rather than
        ``ignored_repost`` (neither orders nor answers), and the quoted post, if it is a
        purchase, counts only as its own author's, read on its own."""
        uris = sorted(
            {
                uri
                for item in items
                if isinstance(item, dict)
                and item.get("reason") in REASONS
                and isinstance(item.get("record"), dict)
                and (uri := quoted_uri(item["record"]))
            }
        )
        quoted: dict[str, Any] = {}
        for start in range(0, len(uris), GET_POSTS_MAX):
            try:
                body = self._call(
                    account, GET_POSTS, params={"uris": uris[start : start + GET_POSTS_MAX]}
                )
            except PlatformError as exc:
                logger.warning("Bluesky quoted posts of %s left unknown: %s", account, exc)
                continue
            views = body.get("posts")
            for view in views if isinstance(views, list) else []:
                if isinstance(view, dict) and post_uri(view.get("uri")):
                    quoted[view["uri"]] = view.get("record")
        return quoted

    def _notifications_page(self, account: PlatformAccount, page: str, since: str) -> Page:
        params: dict[str, Any] = {"limit": PAGE_SIZE, "reasons": list(REASONS)}
        if page:
            params["cursor"] = page
        body = self._call(account, NOTIFICATIONS, params=params)
        items = items_of(body)
        return items, str(body.get("cursor") or ""), self._quoted(account, items)

    def _search_page(self, account: PlatformAccount, page: str, since: str, *, tag: str) -> Page:
        params: dict[str, Any] = {"q": f"#{tag}", "tag": [tag], "sort": "latest"}
        params["limit"] = PAGE_SIZE
        since_at = when(since)
        if since_at is not None:
            # ``since`` filters on the time a post gives itself (the earlier of its createdAt
            # and its indexing): one indexed a little after a newer post was read is asked for
            # again, with what was read just before (the inbox stores each post once).
            params["since"] = (since_at - INDEX_DELAY).isoformat()
        if page:
            params["cursor"] = page
        body = self._call(account, SEARCH, params=params)
        return items_of(body), str(body.get("cursor") or ""), {}

    def _read(
        self,
        queries: Sequence[Callable[[str, str], Page]],
        *,
        fingerprint: str,
        cursor: str,
        now: datetime,
        limit: int,
    ) -> FetchResult:
        """Read on in the round ``cursor`` is in (or start one), at most ``limit`` posts' worth
        of pages: each of ``queries`` (``query(page, since)``) newest first until a page
        reaches ``since`` or the service has no more (no cursor, or the cursor just used: an
        empty page with a new cursor reads on), one after the other. A round's queries
        changing (a campaign went live) reads them all again over its range.

        A post's time is at least the last round's high-water mark (``ReadProgress.mark``;
        before there is one, ``since`` less ``INDEX_DELAY``): the ``indexedAt`` of a view is
        the earlier of the record's own ``createdAt`` and its indexing, so a post backdated by
        its author's client would otherwise slip into a closed campaign's window."""
        progress = ReadProgress.decode(cursor)
        if not progress.started:
            progress = replace(progress, started=now.isoformat(), queries=fingerprint)
        elif progress.queries != fingerprint:
            progress = replace(progress, queries=fingerprint, index=0, page="", pages=0)
        since = when(progress.since)
        floor = when(progress.mark) or (since - INDEX_DELAY if since is not None else None)
        posts: list[InboundPost] = []
        newest, index, page, pages = progress.newest, progress.index, progress.page, progress.pages
        budget = max(1, math.ceil(limit / PAGE_SIZE))
        while index < len(queries) and budget > 0:
            items, next_page, quoted = queries[index](page, progress.since)
            budget, pages = budget - 1, pages + 1
            posts.extend(
                replace(post, created_at=floor)
                if floor is not None and not post.malformed and post.created_at < floor
                else post
                for post in inbound_from_items(items, fetched_at=now, quoted=quoted)
            )
            times = [
                t
                for item in items
                if isinstance(item, dict) and (t := when(item.get("indexedAt"))) is not None
            ]
            for t in times:
                newest = _later(newest, t.isoformat())
            # A page holding a post indexed at or before ``since`` reaches what was read.
            reached = since is not None and any(t <= since for t in times)
            # A service that answers the cursor it was given would be read for ever.
            read_on = bool(next_page) and next_page != page and not reached
            if read_on and pages >= MAX_ROUND_PAGES:
                logger.error(
                    "Bluesky query %s of %s: %s pages in one round, ending it there (cursor %s)",
                    index,
                    fingerprint,
                    pages,
                    next_page[:100],
                )
                read_on = False
            if read_on:
                page = next_page
            else:
                index, page, pages = index + 1, "", 0
        if index < len(queries):
            progress = replace(progress, newest=newest, index=index, page=page, pages=pages)
            return FetchResult(
                posts=posts, cursor=progress.encode(), high_water_mark=None, more=True
            )
        mark = (when(progress.started) or now) - INDEX_DELAY
        done = ReadProgress(since=_later(progress.since, newest), mark=mark.isoformat())
        return FetchResult(posts=posts, cursor=done.encode(), high_water_mark=mark, more=False)

    def fetch_mentions(
        self, *, account: PlatformAccount, cursor: str, now: datetime, limit: int
    ) -> FetchResult:
        query = partial(self._notifications_page, account)
        return self._read([query], fingerprint="notifications", cursor=cursor, now=now, limit=limit)

    def fetch_search(
        self,
        *,
        account: PlatformAccount,
        cursor: str,
        now: datetime,
        limit: int,
        hashtags: tuple[str, ...],
    ) -> FetchResult:
        """One ``searchPosts`` query per hashtag (its ``tag`` filter ANDs several), each from
        ``since`` (the newest ``indexedAt`` read) on."""
        tags = sorted(set(hashtags), key=str.lower)
        queries = [partial(self._search_page, account, tag=tag) for tag in tags]
        fingerprint = hashlib.sha256("\n".join(tags).encode()).hexdigest()[:12]
        return self._read(queries, fingerprint=fingerprint, cursor=cursor, now=now, limit=limit)

    # --- Replies ---
    def _post_view(self, account: PlatformAccount, uri: str) -> dict[str, Any]:
        body = self._call(account, GET_POSTS, params={"uris": [uri]})
        for view in body.get("posts") or []:
            if isinstance(view, dict) and view.get("uri") == uri and view.get("cid"):
                return view
        raise RejectedError(f"the post replied to is deleted or not visible: {uri}", status=404)

    def _own_record(self, account: PlatformAccount, rkey: str) -> dict[str, Any] | None:
        """The brand's post at ``rkey``, or None when there is none."""
        params = {"repo": account.platform_user_id, "collection": POST, "rkey": rkey}
        try:
            return self._call(account, GET_RECORD, params=params)
        except RejectedError as exc:
            if exc.status in (400, 404):  # RecordNotFound
                return None
            raise

    def send_reply(
        self,
        *,
        account: PlatformAccount,
        in_reply_to_post_id: str,
        text: str,
        idempotency_key: str,
        visibility: str = "public",
    ) -> str:
        # Every Bluesky post is public (``visibility`` is always "public" here).
        parent = self._post_view(account, in_reply_to_post_id)
        rkey = record_key(idempotency_key)
        body = {
            "repo": account.platform_user_id,
            "collection": POST,
            "rkey": rkey,
            "record": reply_record(text=text, parent=parent, now=timezone.now()),
        }
        try:
            created = self._call(account, CREATE_RECORD, body=body)
        except (RejectedError, TransientError) as exc:
            # A record already at this key is this reply, posted by an attempt whose answer
            # was lost: the service refuses the key (a 4xx, or a 500 on most PDSes today).
            if isinstance(exc, RejectedError) and exc.status not in (400, 409):
                raise
            try:
                existing = self._own_record(account, rkey)
            except (RejectedError, TransientError):
                raise exc from None
            if existing is None:
                raise
            raise DuplicateReply(f"a record exists at {rkey}: {exc}", status=409) from exc
        uri = post_uri(created.get("uri"))
        if not uri:
            raise TransientError("Bluesky created the reply but answered no uri")
        return uri

    def find_reply(
        self,
        *,
        account: PlatformAccount,
        in_reply_to_post_id: str,
        text: str,
        since: datetime,
        idempotency_key: str = "",
    ) -> SentReply | None:
        """The brand's post at the record key of ``idempotency_key``, when it answers
        ``in_reply_to_post_id``; posted at its ``createdAt`` (written by us)."""
        if not idempotency_key:
            return None
        found = self._own_record(account, record_key(idempotency_key))
        value = (found or {}).get("value")
        if not isinstance(value, dict) or not post_uri((found or {}).get("uri")):
            return None
        reply = value.get("reply")
        parent = reply.get("parent") if isinstance(reply, dict) else None
        if not isinstance(parent, dict) or parent.get("uri") != in_reply_to_post_id:
            return None
        return SentReply(
            platform_id=str((found or {})["uri"]),
            posted_at=when(value.get("createdAt")) or since,
        )


def _problem(response: requests.Response) -> tuple[str, str]:
    """The XRPC error name and message of a response ("" when it has none)."""
    if response.status_code < 400:
        return "", ""
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    if not isinstance(body, dict):
        return "", str(body)[:200]
    return str(body.get("error") or ""), str(body.get("message") or "")[:300]
