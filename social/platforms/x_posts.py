"""X API v2 posts as Hashcart's ``InboundPost``, in either spelling of the renamed fields.

X is renaming "tweet" to "post": older responses (v2.159, every recording) carry
``referenced_tweets``, ``edit_history_tweet_ids`` and ``includes.tweets``; newer ones (v2.167)
``referenced_posts``, ``edit_history_post_ids`` and ``includes.posts``. Both are read here.

Hashtags are X's own (``entities.hashtags``, which X finds with twitter-text) when the item
has them; otherwise they are extracted from the text with the twitter-text rules
(``social.hashtags``), skipping X's ``entities.urls`` when given, up to ``MAX_TEXT``
characters. A retweet's hashtags are never read: its text is truncated ("#Twi…") and its
entities describe the original. A retweet (referenced ``retweeted``, or old-style ``RT @user:``
text) is a repost; a quote carries the quoted post's hashtags as ``quoted_hashtags``; an edit's
root is the first id of its edit history (DESIGN §3.2).

Item by item (DESIGN §4): an item that is not an object, or has no numeric id, no author id or
an unreadable ``created_at``, is a ``malformed`` post; the rest of the page goes on.
"""

from datetime import datetime
from typing import Any

from social.hashtags import MAX_HASHTAGS, extract_hashtags
from social.models import PostKind
from social.platforms.base import MANUAL_REPOST, InboundPost, MalformedPost, oldest_first

# Characters of a post's text read for hashtags: X's longest post (25,000 characters for a
# subscriber's long post, whose full text is ``note_tweet.text``; ``text`` itself is shorter).
MAX_TEXT = 25_000


def _either(item: dict[str, Any], tweet_key: str, post_key: str, default: Any) -> Any:
    value = item.get(tweet_key)
    return value if value is not None else item.get(post_key, default)


def _when(value: Any, fallback: datetime) -> datetime | None:
    """The item's time; ``fallback`` when it has none; None when it cannot be read."""
    if not value:
        return fallback
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _id(value: Any) -> str:
    """An X id (up to 30 ASCII digits; an integer is accepted), or "" for anything else."""
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text if text.isascii() and text.isdigit() and len(text) <= 30 else ""


def _hashtags(item: dict[str, Any], text: str) -> tuple[str, ...]:
    """X's hashtags of the item, in order; else those of its text, outside X's URLs."""
    entities = item.get("entities")
    if not isinstance(entities, dict):
        return tuple(tag.text for tag in extract_hashtags(text, limit=MAX_TEXT))
    tags = [
        t
        for t in entities.get("hashtags") or []
        if isinstance(t, dict) and isinstance(t.get("tag"), str) and t["tag"]
    ]
    if tags:
        ordered = sorted(tags, key=lambda t: _position(t.get("start")))
        return tuple(t["tag"] for t in ordered[:MAX_HASHTAGS])
    urls = [
        (_position(u.get("start")), _position(u.get("end")))
        for u in entities.get("urls") or []
        if isinstance(u, dict)
    ]
    return tuple(tag.text for tag in extract_hashtags(text, urls=urls or None, limit=MAX_TEXT))


def _position(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def inbound_from_page(body: dict[str, Any], *, fetched_at: datetime) -> list[InboundPost]:
    """The posts of one v2 response page (``data`` plus ``includes``), oldest first."""
    includes = body.get("includes") or {}
    if not isinstance(includes, dict):
        includes = {}
    users = {str(u.get("id")): u for u in includes.get("users") or [] if isinstance(u, dict)}
    referenced = {
        str(p.get("id")): p
        for p in _either(includes, "tweets", "posts", []) or []
        if isinstance(p, dict)
    }
    data = body.get("data") or []
    if not isinstance(data, list):
        data = [data]
    posts = [
        inbound_from_item(item, users=users, referenced=referenced, fetched_at=fetched_at)
        for item in data
    ]
    return sorted(posts, key=oldest_first)


def inbound_from_item(
    item: Any,
    *,
    users: dict[str, dict[str, Any]],
    referenced: dict[str, dict[str, Any]],
    fetched_at: datetime,
) -> InboundPost:
    """One item of ``data``; a ``malformed`` post when it cannot be read."""
    malformed = MalformedPost(platform="x", item=item, fetched_at=fetched_at)
    if not isinstance(item, dict):
        return malformed("not an object")
    post_id = _id(item.get("id"))
    author = item.get("author_id")
    author_id = _id(author)
    created_at = _when(item.get("created_at"), fetched_at)
    reason = (
        "no id"
        if not post_id
        else "no author id"
        if not author_id
        else "an unreadable created_at"
        if created_at is None
        else ""
    )
    if reason or created_at is None:
        return malformed(reason, post_id=post_id, author_id=author_id)
    text = str(item.get("text", ""))
    history = _either(item, "edit_history_tweet_ids", "edit_history_post_ids", []) or [post_id]
    root_id = _id(history[0]) if isinstance(history, list) else ""
    refs = _either(item, "referenced_tweets", "referenced_posts", []) or []
    ref_types = {r.get("type"): str(r.get("id")) for r in refs if isinstance(r, dict)}
    user = users.get(author_id)
    handle = str(user.get("username", "")) if isinstance(user, dict) else ""
    quoted: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    if "retweeted" in ref_types or MANUAL_REPOST.match(text):
        kind = PostKind.REPOST
    else:
        hashtags = _hashtags(item, text)
        if "quoted" in ref_types:
            kind = PostKind.QUOTE
            quoted_post = referenced.get(ref_types["quoted"])
            if isinstance(quoted_post, dict):
                quoted = _hashtags(quoted_post, str(quoted_post.get("text", "")))
        elif "replied_to" in ref_types:
            kind = PostKind.REPLY
        else:
            kind = PostKind.ORIGINAL
    return InboundPost(
        platform="x",
        post_id=post_id,
        root_id=root_id or post_id,
        author_id=author_id,
        author_handle=handle,
        text=text,
        hashtags=hashtags,
        kind=kind,
        created_at=created_at,
        quoted_hashtags=quoted,
        raw=item,
    )
