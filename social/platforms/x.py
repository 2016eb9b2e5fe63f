"""The X API v2 adapter (DESIGN §4, issue 6), on plain ``requests``.

Why not the official SDK: ``xdk`` sends only the new "post" spelling that no recording has,
and a configurable base URL, both spellings and X's rate-limit headers are simplest to honour
on the wire. Every request is built by ``mentions_request`` / ``reply_request`` (tested
against X's OpenAPI specifications of both spellings).

- Mentions: ``GET /2/users/:id/mentions`` with ``since_id`` (the cursor), every page followed by
  ``pagination_token``; the new cursor is the first page's ``newest_id``, returned only once
  every page was read (the poller commits it with the posts).
- Rate limits: after a 429, no request for that account and endpoint before
  ``x-rate-limit-reset`` (a cache entry every worker sees); a usage-capped answer stops the feed
  (``UsageCapped``); 5xx and timeouts are ``TransientError``.
- Replies: ``POST /2/tweets`` with ``reply.in_reply_to_tweet_id``; a 403 (duplicate content, a
  deleted or invisible target) is final.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from social.models import PlatformAccount
from social.platforms.base import (
    AccountAuthError,
    FetchResult,
    InboundPost,
    PlatformAdapter,
    RateLimited,
    RejectedError,
    TransientError,
    UsageCapped,
    oldest_first,
)
from social.platforms.x_auth import x_access_token
from social.platforms.x_posts import inbound_from_page

TIMEOUT = (5, 20)
MAX_PAGES = 50  # 5,000 mentions in one read: beyond that, something is wrong


@dataclass(frozen=True)
class XRequest:
    method: str
    path: str  # as in the OpenAPI document, with its parameters filled in
    template: str  # the OpenAPI path template
    params: dict[str, str]
    json: dict[str, Any] | None = None


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


def mentions_request(*, user_id: str, since_id: str, page: str, spelling: str) -> XRequest:
    fields_name, fields, expansions = _MENTIONS_SHAPE[spelling]
    params = {"max_results": "100", "expansions": expansions, fields_name: fields}
    if since_id:
        params["since_id"] = since_id
    if page:
        params["pagination_token"] = page
    return XRequest("GET", f"/2/users/{user_id}/mentions", "/2/users/{id}/mentions", params)


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


def search_request(*, query: str, since_id: str, page: str, spelling: str) -> XRequest:
    fields_name, fields, expansions = _MENTIONS_SHAPE[spelling]
    params = {"query": query, "max_results": "100", "expansions": expansions, fields_name: fields}
    if since_id:
        params["since_id"] = since_id
    if page:
        params["next_token"] = page
    path = "/2/tweets/search/recent"
    return XRequest("GET", path, path, params)


def reply_request(*, in_reply_to: str, text: str) -> XRequest:
    """``POST /2/tweets`` with ``reply.in_reply_to_tweet_id``: the same in both specifications."""
    body = {"text": text, "reply": {"in_reply_to_tweet_id": in_reply_to}}
    return XRequest("POST", "/2/tweets", "/2/tweets", {}, body)


def _blocked_key(account_id: int, template: str) -> str:
    return f"x:rate-limited:{account_id}:{template}"


class XAdapter(PlatformAdapter):
    platform = "x"

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
        if response.status_code >= 400:
            raise RejectedError(f"X refused: {response.status_code} {_problem(response)}")
        return dict(response.json())

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
        self, account: PlatformAccount, request_for: Callable[..., XRequest], now: datetime
    ) -> tuple[list[InboundPost], str]:
        """Every page of one request (``request_for(page=token)``): its posts, and the first
        page's ``newest_id`` (the newest post of the whole read). Raises ``TransientError``
        past ``MAX_PAGES``, so that an incomplete read never moves a cursor."""
        posts: list[InboundPost] = []
        newest, page = "", ""
        for _ in range(MAX_PAGES):
            body = self._send(account, request_for(page=page))
            meta = body.get("meta") or {}
            newest = newest or str(meta.get("newest_id") or "")
            posts.extend(inbound_from_page(body, fetched_at=now))
            page = str(meta.get("next_token") or "")
            if not page:
                return posts, newest
        raise TransientError("X: too many pages in one read")

    def _result(self, posts: list[InboundPost], cursor: str, now: datetime) -> FetchResult:
        return FetchResult(
            posts=sorted(posts, key=oldest_first),
            cursor=cursor,
            high_water_mark=now - timedelta(seconds=settings.X_INDEX_DELAY_SECONDS),
        )

    def fetch_mentions(
        self, *, account: PlatformAccount, cursor: str, now: datetime, limit: int
    ) -> FetchResult:
        spelling = settings.X_FIELD_SPELLING
        posts, newest = self._read(
            account,
            partial(
                mentions_request,
                user_id=account.platform_user_id,
                since_id=cursor,
                spelling=spelling,
            ),
            now,
        )
        return self._result(posts, newest or cursor, now)

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
        spelling = settings.X_FIELD_SPELLING
        posts: list[InboundPost] = []
        newest = cursor
        for query in search_queries(hashtags):
            found, seen = self._read(
                account,
                partial(search_request, query=query, since_id=cursor, spelling=spelling),
                now,
            )
            posts.extend(found)
            if seen and (len(seen), seen) > (len(newest), newest):
                newest = seen
        return self._result(posts, newest, now)

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
        # X has no idempotency key for posts: the outbox's claim sends each reply once, and X
        # refuses an identical text (403 duplicate), which is final here.
        request = reply_request(in_reply_to=in_reply_to_post_id, text=text)
        body = self._send(account, request)
        return str(body["data"]["id"])


def _problem(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        parts = [str(body.get(k, "")) for k in ("type", "title", "detail")]
        return " ".join(p for p in parts if p)[:300]
    return str(body)[:300]
