"""The X API v2 adapter (DESIGN §4, issue 6), on plain ``requests``.

Why not the official SDK: ``xdk`` sends only the new "post" spelling that no recording has,
and a configurable base URL, both spellings and X's rate-limit headers are simplest to honour
on the wire. Every request is built by ``mentions_request`` / ``reply_request`` (tested
against X's OpenAPI specifications of both spellings).

- Mentions (``GET /2/users/:id/mentions``) and recent search (``GET /2/tweets/search/recent``)
  are read by one loop, ``XAdapter._read``: newest first, after ``since_id`` (the cursor), at
  most ``limit`` posts' worth of pages per read. A backlog longer than that is read over several
  reads ("a round"), each committed by the poller with its posts: the cursor then carries the
  round's progress (``ReadProgress``) and the next read pages on back with ``until_id`` below
  the oldest post read. ``since_id`` moves to the round's newest id (the first page's
  ``newest_id``, or the greatest id read when a page has none) only once the round has read
  every page down to the old ``since_id``, and the high-water mark moves only then, to the
  round's start (less X's index delay): while a round is open, posts older than those read are
  still unread, so the mark must not claim them (pending orders expire behind it).
- Spelling: X is renaming "tweet" to "post" in its API (v2.159 asks for ``tweet.fields`` and
  expands ``referenced_tweets.id``; v2.167 has ``post.fields`` and ``referenced_posts``). With
  ``X_FIELD_SPELLING=auto`` (the default) the adapter asks in the spelling that last worked for
  the account (a cache entry every worker sees; "tweet" at first); a 400 that names one of the
  spelled parameters is retried once in the other spelling, which is then remembered and the
  switch logged. ``tweet`` or ``post`` forces one. Responses are read in either spelling.
- Rate limits: after a 429, no request for that account and endpoint before
  ``x-rate-limit-reset`` (a cache entry every worker sees); a usage-capped answer stops the feed
  (``UsageCapped``); 5xx and timeouts are ``TransientError``.
- Replies: ``POST /2/tweets`` with ``reply.in_reply_to_tweet_id``. A 403 is told apart by its
  detail: duplicate content is ``DuplicateReply`` (the retry of a reply whose answer was lost:
  ``find_reply`` looks it up in the brand's own timeline, ``GET /2/users/:id/tweets``); a
  deleted or invisible target, or a conversation the brand may not reply in, is final for that
  reply; an app or account that may not post at all is ``AccountAuthError`` (every reply waits).
"""

import hashlib
import html
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from twitter_text import parse_tweet

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
    UsageCapped,
    oldest_first,
)
from social.platforms.x_auth import x_access_token
from social.platforms.x_posts import inbound_from_page

TIMEOUT = (5, 20)
PAGE_SIZE = 100  # the largest page of mentions and of recent search


@dataclass(frozen=True)
class XRequest:
    method: str
    path: str  # as in the OpenAPI document, with its parameters filled in
    template: str  # the OpenAPI path template
    params: dict[str, str]
    json: dict[str, Any] | None = None
    spelling: str = ""  # the spelling its parameters are in ("" when it has none)


# What a mentions read asks for, per spelling, as each specification allows it: v2.167 has no
# field for referenced posts or the edit history (they come by default) and expands
# ``referenced_posts``; v2.159 names them in ``tweet.fields`` and expands ``referenced_tweets.id``.
# The expansion brings the quoted posts, whose hashtags must not count as a purchase.
_MENTIONS_SHAPE = {
    "tweet": (
        "tweet.fields",
        "created_at,entities,referenced_tweets,edit_history_tweet_ids,author_id",
        "author_id,referenced_tweets.id",
    ),
    "post": ("post.fields", "created_at,entities", "author_id,referenced_posts"),
}


def mentions_request(
    *, user_id: str, since_id: str, page: str, spelling: str, until_id: str = ""
) -> XRequest:
    fields_name, fields, expansions = _MENTIONS_SHAPE[spelling]
    params = {"max_results": str(PAGE_SIZE), "expansions": expansions, fields_name: fields}
    if since_id:
        params["since_id"] = since_id
    if until_id:
        params["until_id"] = until_id
    if page:
        params["pagination_token"] = page
    return XRequest(
        "GET", f"/2/users/{user_id}/mentions", "/2/users/{id}/mentions", params, spelling=spelling
    )


SEARCH_QUERY_LIMIT = 512  # characters: the recent-search limit of X's basic access


def search_queries(hashtags: tuple[str, ...], limit: int = SEARCH_QUERY_LIMIT) -> list[str]:
    """Recent-search queries that together cover ``hashtags``, retweets excluded, each at most
    ``limit`` characters: ``(#A OR #B) -is:retweet``, split into several when longer."""
    suffix = " -is:retweet"
    queries: list[str] = []
    group: list[str] = []
    for tag in sorted(set(hashtags), key=str.lower):
        candidate = [*group, f"#{tag}"]
        if len(f"({' OR '.join(candidate)}){suffix}") > limit and group:
            queries.append(f"({' OR '.join(group)}){suffix}")
            candidate = [f"#{tag}"]
        group = candidate
    if group:
        queries.append(f"({' OR '.join(group)}){suffix}")
    return queries


def search_request(
    *, query: str, since_id: str, page: str, spelling: str, until_id: str = ""
) -> XRequest:
    fields_name, fields, expansions = _MENTIONS_SHAPE[spelling]
    params = {
        "query": query,
        "max_results": str(PAGE_SIZE),
        "sort_order": "recency",  # newest first: paging back with until_id relies on it
        "expansions": expansions,
        fields_name: fields,
    }
    if since_id:
        params["since_id"] = since_id
    if until_id:
        params["until_id"] = until_id
    if page:
        params["next_token"] = page
    path = "/2/tweets/search/recent"
    return XRequest("GET", path, path, params, spelling=spelling)


def reply_request(*, in_reply_to: str, text: str) -> XRequest:
    """``POST /2/tweets`` with ``reply.in_reply_to_tweet_id``: the same in both specifications."""
    body = {"text": text, "reply": {"in_reply_to_tweet_id": in_reply_to}}
    return XRequest("POST", "/2/tweets", "/2/tweets", {}, body)


def _blocked_key(account_id: int, template: str) -> str:
    return f"x:rate-limited:{account_id}:{template}"


logger = logging.getLogger(__name__)
SPELLINGS = ("tweet", "post")
_OTHER_SPELLING = {"tweet": "post", "post": "tweet"}
# The words a 400 names when it refuses a spelling: the fields parameter, or a spelled value.
_SPELLED = {
    "tweet": ("tweet.fields", "referenced_tweets", "edit_history_tweet_ids"),
    "post": ("post.fields", "referenced_posts"),
}


def _spelling_key(account_id: int) -> str:
    return f"x:spelling:{account_id}"


def spelling_for(account: PlatformAccount) -> str:
    """The spelling to ask ``account``'s requests in: the forced one, else the one that last
    worked for the account, else "tweet" (every recording's)."""
    forced = settings.X_FIELD_SPELLING
    if forced in SPELLINGS:
        return str(forced)
    remembered = cache.get(_spelling_key(account.pk))
    return remembered if remembered in SPELLINGS else "tweet"


class SpellingRefused(RejectedError):
    """X refused a request because of a parameter in its spelling (a 400 naming it)."""


def _names_spelling(response: requests.Response, spelling: str) -> bool:
    """Whether a 400 names one of ``spelling``'s parameters or values: in X's invalid-request
    problem (its ``parameter``, ``value`` and ``detail``, v2.167) or its ``errors`` (each one's
    ``parameters`` and ``message``, as X answers today)."""
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    said = [str(body.get(key, "")) for key in ("parameter", "value", "detail")]
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            said.append(str(error.get("message", "")))
            parameters = error.get("parameters")
            if isinstance(parameters, dict):
                said.extend(f"{name} {values}" for name, values in parameters.items())
    text = " ".join(said)
    return any(word in text for word in _SPELLED[spelling])


class XAdapter(PlatformAdapter):
    platform = "x"
    # twitter-text's weighted length: most characters weigh 1, CJK and emoji 2, a URL 23.
    max_reply_length = 280

    @classmethod
    def fits(cls, text: str) -> bool:
        parsed = parse_tweet(text)
        return parsed.valid and parsed.weightedLength <= cls.max_reply_length

    @classmethod
    def post_url(cls, *, post_id: str, author_handle: str) -> str:
        if not post_id.isdigit():
            return ""
        # X redirects a wrong handle to the right one; "i" stands in for a missing handle.
        return f"https://x.com/{quote(author_handle or 'i', safe='')}/status/{post_id}"

    @classmethod
    def replay_posts(cls, body: Any, *, fetched_at: datetime) -> list[InboundPost]:
        """A search or mentions response (``data`` with ``includes``)."""
        if isinstance(body, dict) and "data" in body:
            return inbound_from_page(body, fetched_at=fetched_at)
        return []

    def __init__(self, session: requests.Session | None = None) -> None:
        self.session = session or requests.Session()

    def _send(self, account: PlatformAccount, request: XRequest) -> dict[str, Any]:
        now = timezone.now()
        blocked_until = cache.get(_blocked_key(account.pk, request.template))
        if blocked_until and blocked_until > now:
            raise RateLimited("X rate limit: waiting for its reset", reset_at=blocked_until)
        token = x_access_token(account_id=account.pk, now=now, session=self.session)
        try:
            response = self.session.request(
                request.method,
                settings.X_API_BASE_URL.rstrip("/") + request.path,
                params=request.params or None,
                json=request.json,
                headers={"Authorization": f"Bearer {token}"},
                timeout=TIMEOUT,
            )
        except requests.RequestException as exc:
            raise TransientError(f"X unreachable: {type(exc).__name__}") from exc
        if response.status_code == 429:
            self._rate_limited(account, request, response, now)
        if response.status_code >= 500:
            raise TransientError(f"X answered {response.status_code}")
        if response.status_code == 401:
            raise AccountAuthError(f"X refused the account's token: {_problem(response)}")
        if (
            response.status_code == 400
            and request.spelling
            and _names_spelling(response, request.spelling)
        ):
            raise SpellingRefused(f"X refused: 400 {_problem(response)}", status=400)
        if response.status_code >= 400:
            raise RejectedError(
                f"X refused: {response.status_code} {_problem(response)}",
                status=response.status_code,
            )
        try:
            return dict(response.json())
        except ValueError as exc:  # a 2xx that is not JSON: a proxy's page, a truncated body
            raise TransientError(f"X answered {response.status_code} without JSON") from exc

    def _send_spelled(
        self, account: PlatformAccount, build: Callable[..., XRequest]
    ) -> dict[str, Any]:
        """Send the request ``build`` makes in the account's spelling; when X refuses that
        spelling (and none is forced), send it once more in the other and remember that one."""
        spelling = spelling_for(account)
        try:
            return self._send(account, build(spelling=spelling))
        except SpellingRefused as exc:
            if settings.X_FIELD_SPELLING in SPELLINGS:
                raise
            other = _OTHER_SPELLING[spelling]
            body = self._send(account, build(spelling=other))
            cache.set(_spelling_key(account.pk), other, timeout=None)
            logger.warning(
                "X account %s: the %r spelling was refused (%s); asking in %r from now on",
                account.handle,
                spelling,
                exc,
                other,
            )
            return body

    @staticmethod
    def _rate_limited(
        account: PlatformAccount, request: XRequest, response: requests.Response, now: datetime
    ) -> None:
        problem = _problem(response)
        if "usage-capped" in problem or "UsageCapExceeded" in problem:
            raise UsageCapped(f"X usage cap: {problem}")
        reset = response.headers.get("x-rate-limit-reset", "")
        reset_at = (
            datetime.fromtimestamp(int(reset), tz=UTC)
            if reset.isdigit()
            else now + timedelta(minutes=15)
        )
        seconds = max(1, int((reset_at - now).total_seconds()) + 1)
        cache.set(_blocked_key(account.pk, request.template), reset_at, timeout=seconds)
        raise RateLimited(f"X rate limit until {reset_at:%H:%M:%S}", reset_at=reset_at)

    def _read(
        self,
        account: PlatformAccount,
        requests_for: Sequence[Callable[..., XRequest]],
        *,
        fingerprint: str,
        cursor: str,
        now: datetime,
        limit: int,
    ) -> FetchResult:
        """Read on in the round ``cursor`` is in (or start one), at most ``limit`` posts' worth
        of pages: each of ``requests_for`` (``request(spelling=, since_id=, until_id=, page=)``,
        one per query) newest first down to the round's ``since_id``, one after the other.

        The result's cursor is the round's progress while pages are left (``more``, no new
        high-water mark), else the round's newest id with the mark at the round's start.
        ``fingerprint`` names the queries: when they change mid-round (a campaign went live),
        the round reads them all again over its range (posts already stored are ignored).
        """
        progress = ReadProgress.decode(cursor)
        if progress.started is None:
            progress = ReadProgress(since=progress.since, started=now, queries=fingerprint)
        elif progress.queries != fingerprint:
            progress = replace(progress, queries=fingerprint, index=0, until="")
        posts: list[InboundPost] = []
        newest, index, until = progress.newest, progress.index, progress.until
        chain_until, page = until, ""  # a page token is good only with its chain's parameters
        budget = max(1, math.ceil(limit / PAGE_SIZE))
        while index < len(requests_for) and budget > 0:
            body = self._send_spelled(
                account,
                partial(
                    requests_for[index], since_id=progress.since, until_id=chain_until, page=page
                ),
            )
            budget -= 1
            meta = body.get("meta") or {}
            posts.extend(inbound_from_page(body, fetched_at=now))
            ids = _page_ids(body)
            newest = max([newest, str(meta.get("newest_id") or ""), *ids], key=_id_key)
            page = str(meta.get("next_token") or "")
            if page:  # the chain goes on below the oldest post read so far
                read = [str(meta.get("oldest_id") or ""), *ids, until]
                until = min((i for i in read if i), key=_id_key, default="")
            else:  # this query is read down to since_id
                index, until, chain_until = index + 1, "", ""
        posts.sort(key=oldest_first)
        if index < len(requests_for):
            progress = replace(progress, newest=newest, index=index, until=until)
            return FetchResult(
                posts=posts, cursor=progress.encode(), high_water_mark=None, more=True
            )
        started = progress.started or now
        return FetchResult(
            posts=posts,
            cursor=max(progress.since, newest, key=_id_key),
            high_water_mark=started - timedelta(seconds=settings.X_INDEX_DELAY_SECONDS),
            more=False,
        )

    def fetch_mentions(
        self, *, account: PlatformAccount, cursor: str, now: datetime, limit: int
    ) -> FetchResult:
        request = partial(mentions_request, user_id=account.platform_user_id)
        return self._read(
            account, [request], fingerprint="mentions", cursor=cursor, now=now, limit=limit
        )

    def fetch_search(
        self,
        *,
        account: PlatformAccount,
        cursor: str,
        now: datetime,
        limit: int,
        hashtags: tuple[str, ...],
    ) -> FetchResult:
        """Every query's pages after ``since_id``; post ids are global and increasing, so one
        cursor (the newest id seen) serves all queries, committed after all were read."""
        queries = search_queries(hashtags)
        requests_for = [partial(search_request, query=q) for q in queries]
        fingerprint = hashlib.sha256("\n".join(queries).encode()).hexdigest()[:12]
        return self._read(
            account, requests_for, fingerprint=fingerprint, cursor=cursor, now=now, limit=limit
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
        # Every post X's feeds deliver is public (``visibility`` is always "public" here).
        # X has no idempotency key for posts: the outbox's claim sends each reply once, and a
        # retry after a lost answer is refused as duplicate content (``DuplicateReply``).
        request = reply_request(in_reply_to=in_reply_to_post_id, text=text)
        try:
            body = self._send(account, request)
        except RejectedError as exc:
            if exc.status == 403:
                raise _refusal(str(exc)) from exc
            raise
        return str(body["data"]["id"])

    def find_reply(
        self,
        *,
        account: PlatformAccount,
        in_reply_to_post_id: str,
        text: str,
        since: datetime,
        idempotency_key: str = "",
    ) -> SentReply | None:
        """The brand's post replying to ``in_reply_to_post_id`` with ``text``, from its own
        timeline since ``since`` (``GET /2/users/:id/tweets``, replies included, at most
        ``FIND_REPLY_PAGES`` pages). Texts are compared as X returns them: HTML entities
        undone, links shortened to t.co, so links and spacing are not compared."""
        wanted = _comparable(text)
        page = ""
        for _ in range(FIND_REPLY_PAGES):
            body = self._send_spelled(
                account,
                partial(
                    timeline_request,
                    user_id=account.platform_user_id,
                    start_time=since,
                    page=page,
                ),
            )
            for item in body.get("data") or []:
                if not isinstance(item, dict):
                    continue
                refs = item.get("referenced_tweets") or item.get("referenced_posts") or []
                replied_to = {
                    str(r.get("id"))
                    for r in refs
                    if isinstance(r, dict) and r.get("type") == "replied_to"
                }
                if (
                    in_reply_to_post_id in replied_to
                    and _comparable(str(item.get("text", ""))) == wanted
                ):
                    created = str(item.get("created_at") or "")
                    posted_at = (
                        datetime.fromisoformat(created.replace("Z", "+00:00")) if created else since
                    )
                    return SentReply(platform_id=str(item["id"]), posted_at=posted_at)
            page = str((body.get("meta") or {}).get("next_token") or "")
            if not page:
                return None
        return None


# Why X refused a reply (a 403), by the detail it gives: each calls for something else.
_DUPLICATE = re.compile(r"duplicate content", re.IGNORECASE)
_TARGET_GONE = re.compile(r"deleted or not visible", re.IGNORECASE)
_ACCOUNT_BARRED = re.compile(
    r"client-forbidden|client-not-enrolled|attached to a Project|suspended", re.IGNORECASE
)


def _refusal(message: str) -> PlatformError:
    """The error for a 403 to a reply: a duplicate is looked up (not final); a deleted or
    invisible target, or a conversation the brand may not reply in, is final for that reply;
    an app or account barred from posting is the account's (every reply waits for an
    operator), never a reason to fail each reply in turn."""
    if _DUPLICATE.search(message):
        return DuplicateReply(message, status=403)
    if _TARGET_GONE.search(message):
        return RejectedError(
            f"the post replied to is deleted or not visible: {message}", status=403
        )
    if _ACCOUNT_BARRED.search(message):
        return AccountAuthError(f"the account may not post: {message}")
    return RejectedError(f"not permitted to reply: {message}", status=403)


FIND_REPLY_PAGES = 5
_LINK = re.compile(r"https?://\S+")


def _comparable(text: str) -> str:
    """A reply's text as compared with X's copy: entities undone, links and spacing ignored."""
    return " ".join(_LINK.sub("<link>", html.unescape(text)).split())


def timeline_request(*, user_id: str, start_time: datetime, page: str, spelling: str) -> XRequest:
    """``GET /2/users/:id/tweets``: the account's own recent posts, replies included, with what
    ``find_reply`` compares (the post replied to, the text, the time)."""
    fields_name = "tweet.fields" if spelling == "tweet" else "post.fields"
    fields = "created_at,referenced_tweets" if spelling == "tweet" else "created_at"
    params = {
        "max_results": str(PAGE_SIZE),
        "exclude": "retweets",
        "start_time": start_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        fields_name: fields,
    }
    if page:
        params["pagination_token"] = page
    return XRequest(
        "GET", f"/2/users/{user_id}/tweets", "/2/users/{id}/tweets", params, spelling=spelling
    )


@dataclass(frozen=True)
class ReadProgress:
    """Where a feed stands on X: everything up to ``since`` is read; during a round (a backlog
    read over several reads, ``started`` set), the round has also read its first ``index``
    queries down to ``since``, and the current query from ``until`` up (``''``: nothing yet).
    ``newest``: the newest id the round has seen, the next ``since`` once the round is done."""

    since: str
    newest: str = ""
    started: datetime | None = None
    queries: str = ""
    index: int = 0
    until: str = ""

    PREFIX = "round1"

    def encode(self) -> str:
        """A plain id between rounds (as every cursor before rounds existed), else the round."""
        if self.started is None:
            return self.since
        started = str(int(self.started.timestamp()))  # rounded down: the mark stays earlier
        fields = (self.since, self.newest, started, self.queries, str(self.index), self.until)
        return "~".join((self.PREFIX, *fields))

    @classmethod
    def decode(cls, cursor: str) -> "ReadProgress":
        parts = cursor.split("~")
        if parts[0] != cls.PREFIX or len(parts) != 7:
            return cls(since=cursor)
        since, newest, started, queries, index, until = parts[1:]
        return cls(
            since=since,
            newest=newest,
            started=datetime.fromtimestamp(int(started), tz=UTC),
            queries=queries,
            index=int(index),
            until=until,
        )


def _id_key(post_id: str) -> tuple[int, str]:
    """Order of X's numeric ids (as numbers, without parsing); '' is before every id."""
    return len(post_id), post_id


def _page_ids(body: dict[str, Any]) -> list[str]:
    """The ids of a page's items that are ids at all (a malformed item has its own outcome)."""
    items = body.get("data") or []
    ids = (str(item.get("id", "")) for item in items if isinstance(item, dict))
    return [i for i in ids if i.isdigit()]


def _problem(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        parts = [str(body.get(k, "")) for k in ("type", "title", "detail")]
        return " ".join(p for p in parts if p)[:300]
    return str(body)[:300]
