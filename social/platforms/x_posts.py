"""X API v2 posts as Hashcart's ``InboundPost``, in either spelling of the renamed fields.

X is renaming "tweet" to "post": older responses (v2.159, every recording) carry
``referenced_tweets``, ``edit_history_tweet_ids`` and ``includes.tweets``; newer ones (v2.167)
``referenced_posts``, ``edit_history_post_ids`` and ``includes.posts``. Both are read here.

Hashtags are extracted from the text with the twitter-text rules (``social.hashtags``), not
taken from ``entities``: a retweet's text is truncated ("#Twi…") and its entities describe the
original. A retweet (referenced ``retweeted``, or old-style ``RT @user:`` text) is a repost; a
quote carries the quoted post's hashtags as ``quoted_hashtags``; an edit's root is the first id
of its edit history (DESIGN §3.2).
"""

from datetime import datetime
from typing import Any

from social.hashtags import extract_hashtags
from social.models import PostKind
from social.platforms.base import MANUAL_REPOST, InboundPost, oldest_first


def _either(item: dict[str, Any], tweet_key: str, post_key: str, default: Any) -> Any:
    value = item.get(tweet_key)
    return value if value is not None else item.get(post_key, default)


def _when(value: str | None, fallback: datetime) -> datetime:
    if not value:
        return fallback
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def inbound_from_page(body: dict[str, Any], *, fetched_at: datetime) -> list[InboundPost]:
    """The posts of one v2 response page (``data`` plus ``includes``), oldest first."""
    includes = body.get("includes") or {}
    users = {u["id"]: u for u in includes.get("users", [])}
    referenced = {
        p["id"]: p for p in _either(includes, "tweets", "posts", []) if isinstance(p, dict)
    }
    posts = [
        inbound_from_item(item, users=users, referenced=referenced, fetched_at=fetched_at)
        for item in body.get("data") or []
    ]
    return sorted(posts, key=oldest_first)


def inbound_from_item(
    item: dict[str, Any],
    *,
    users: dict[str, dict[str, Any]],
    referenced: dict[str, dict[str, Any]],
    fetched_at: datetime,
) -> InboundPost:
    post_id = str(item["id"])
    text = str(item.get("text", ""))
    history = _either(item, "edit_history_tweet_ids", "edit_history_post_ids", []) or [post_id]
    refs = _either(item, "referenced_tweets", "referenced_posts", []) or []
    ref_types = {r.get("type"): str(r.get("id")) for r in refs if isinstance(r, dict)}
    author_id = str(item.get("author_id", ""))
    handle = str(users.get(author_id, {}).get("username", ""))
    quoted: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    if "retweeted" in ref_types or MANUAL_REPOST.match(text):
        kind = PostKind.REPOST
    else:
        hashtags = tuple(tag.text for tag in extract_hashtags(text))
        if "quoted" in ref_types:
            kind = PostKind.QUOTE
            quoted_text = str(referenced.get(ref_types["quoted"], {}).get("text", ""))
            quoted = tuple(tag.text for tag in extract_hashtags(quoted_text))
        elif "replied_to" in ref_types:
            kind = PostKind.REPLY
        else:
            kind = PostKind.ORIGINAL
    return InboundPost(
        platform="x",
        post_id=post_id,
        root_id=str(history[0]),
        author_id=author_id,
        author_handle=handle,
        text=text,
        hashtags=hashtags,
        kind=kind,
        created_at=_when(item.get("created_at"), fetched_at),
        quoted_hashtags=quoted,
        raw=item,
    )
