"""Bluesky posts (AT Protocol) as Hashcart's ``InboundPost`` (issue 15).

Three shapes carry a post, and each is read here item by item:

- a notification of ``app.bsky.notification.listNotifications`` (``uri``, ``cid``, ``author``,
  ``reason``, the raw ``record``, ``indexedAt``); only the reasons ``mention`` and ``reply``
  are posts to the brand (a like, a follow or a repost of the brand's post is not);
- a post view, ``app.bsky.feed.defs#postView`` (``searchPosts``'s ``posts``, ``getPosts``),
  which also carries the view of what it embeds (a quoted post's record);
- a thread view (``app.bsky.feed.defs#threadViewPost``) or a feed view
  (``#feedViewPost``), whose ``post`` is a post view; a feed view whose ``reason`` is a repost
  (``#reasonRepost``) is the reposter's repost, keyed on the repost record.

Identity: a person is their DID (``author.did``), never their handle: handles change, and a
changed handle must keep the cardholder's link and orders. A post's id is its AT URI
(``at://<did>/app.bsky.feed.post/<rkey>``); records are not edited in place, so the post is its
own root.

Time: ``created_at`` is the AppView's ``indexedAt``, not the record's ``createdAt``: the latter
is whatever the author's client wrote (a backdated confirmation would slip into a closed window,
DESIGN §3.3), the former is the service's own clock.

Hashtags: the record's tag facets (``app.bsky.richtext.facet#tag``), in text order. A record
with no tag facet (a client that writes no rich text, or only mentions) has its text read with
the twitter-text rules (``social.hashtags``), skipping its link facets. The record's extra
``tags`` (not shown in the text) are not the author's words and are not read. A repost
(a feed's ``#reasonRepost``, an ``app.bsky.feed.repost`` record, or old-style ``RT @user:``
text) has no hashtags; a quote
(an ``app.bsky.embed.record`` embed, alone or with media) keeps the quoted post's hashtags apart,
as ``quoted_hashtags``, read from the quoted record when the item or ``quoted`` carries it.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from social.hashtags import MAX_HASHTAGS, extract_hashtags
from social.models import PostKind
from social.platforms.base import MANUAL_REPOST, InboundPost, MalformedPost

POST = "app.bsky.feed.post"
REPOST = "app.bsky.feed.repost"
TAG = "app.bsky.richtext.facet#tag"
LINK = "app.bsky.richtext.facet#link"
REASON_REPOST = "app.bsky.feed.defs#reasonRepost"
EMBED_RECORD = "app.bsky.embed.record"
EMBED_RECORD_WITH_MEDIA = "app.bsky.embed.recordWithMedia"
# The notification reasons that are posts to the brand account.
REASONS = ("mention", "reply")
# Bytes of a record's text read for hashtags: the lexicon's ``maxLength`` of a post's text.
MAX_TEXT_BYTES = 3000


def when(value: Any) -> datetime | None:
    """An AT Protocol datetime (RFC 3339), or None when it cannot be read."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def post_uri(value: Any) -> str:
    """An AT URI of a post record (``at://<did>/app.bsky.feed.post/<rkey>``), or ""."""
    if not isinstance(value, str) or not value.startswith("at://"):
        return ""
    parts = value[len("at://") :].split("/")
    return value if len(parts) == 3 and parts[0].startswith("did:") and all(parts) else ""


def _did(value: Any) -> str:
    return value if isinstance(value, str) and value.startswith("did:") and len(value) > 4 else ""


def char_index(text: str, byte_index: int) -> int:
    """The code-point index in ``text`` of a UTF-8 byte offset (a facet's), rounded down."""
    return len(text.encode("utf-8")[: max(0, byte_index)].decode("utf-8", "ignore"))


def _facets(record: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """``(byteStart, feature)`` of every well-formed facet feature of the record."""
    found = []
    for facet in record.get("facets") or []:
        if not isinstance(facet, dict):
            continue
        index = facet.get("index")
        start = index.get("byteStart") if isinstance(index, dict) else None
        if not isinstance(start, int) or isinstance(start, bool):
            continue
        for feature in facet.get("features") or []:
            if isinstance(feature, dict):
                found.append((start, feature))
    return found


def record_hashtags(record: Any) -> tuple[str, ...]:
    """The hashtags an ``app.bsky.feed.post`` record's author wrote, in text order: its tag
    facets, else its text's (outside its link facets)."""
    if not isinstance(record, dict):
        return ()
    facets = sorted(_facets(record), key=lambda pair: pair[0])
    tags = [
        f["tag"]
        for _, f in facets
        if f.get("$type") == TAG and isinstance(f.get("tag"), str) and f["tag"]
    ]
    if tags:
        return tuple(tags[:MAX_HASHTAGS])
    text = record.get("text")
    if not isinstance(text, str):
        return ()
    text = text.encode("utf-8")[:MAX_TEXT_BYTES].decode("utf-8", "ignore")
    links = []
    for facet in record.get("facets") or []:
        if not isinstance(facet, dict) or not isinstance(facet.get("index"), dict):
            continue
        features = facet.get("features") or []
        if any(isinstance(f, dict) and f.get("$type") == LINK for f in features):
            start, end = facet["index"].get("byteStart"), facet["index"].get("byteEnd")
            if isinstance(start, int) and isinstance(end, int):
                links.append((char_index(text, start), char_index(text, end)))
    return tuple(tag.text for tag in extract_hashtags(text, urls=sorted(links) or None))


def quoted_uri(record: Mapping[str, Any]) -> str:
    """The AT URI of the post a record quotes (an ``app.bsky.embed.record`` embed, alone or
    with media), or ""."""
    embed = record.get("embed")
    if not isinstance(embed, dict):
        return ""
    if embed.get("$type") == EMBED_RECORD_WITH_MEDIA:
        embed = embed.get("record")
        if not isinstance(embed, dict):
            return ""
    if embed.get("$type") not in (EMBED_RECORD, None):
        return ""
    ref = embed.get("record")
    return post_uri(ref.get("uri")) if isinstance(ref, dict) else ""


def _quoted_record_in_view(view: Mapping[str, Any]) -> Any:
    """The quoted post's record in a post view's embed view (``#viewRecord``'s ``value``)."""
    embed = view.get("embed")
    if not isinstance(embed, dict):
        return None
    inner = embed.get("record")
    if isinstance(inner, dict) and isinstance(inner.get("record"), dict):
        inner = inner["record"]  # recordWithMedia#view holds a record#view
    return inner.get("value") if isinstance(inner, dict) else None


def inbound_from_item(
    item: Any, *, fetched_at: datetime, quoted: Mapping[str, Any] | None = None
) -> InboundPost | None:
    """One notification or post view; None for a notification that is no post to the brand
    (a like, a follow…); a ``malformed`` post for an item that cannot be read. ``quoted``:
    quoted posts' records by AT URI, for items (notifications) that do not carry them."""
    malformed = MalformedPost(platform="bluesky", item=item, fetched_at=fetched_at)
    if not isinstance(item, dict):
        return malformed("not an object")
    if isinstance(item.get("post"), dict) and "uri" not in item:
        if isinstance(item.get("reason"), dict) and item["reason"].get("$type") == REASON_REPOST:
            return _repost_in_feed(item, malformed)
        item = item["post"]  # a thread view, or a feed view of a post
    reason = item.get("reason")
    if reason is not None and reason not in REASONS:
        return None
    uri = post_uri(item.get("uri"))
    author = item.get("author")
    author_id = _did(author.get("did")) if isinstance(author, dict) else ""
    record = item.get("record")
    created_at = when(item.get("indexedAt"))
    problem = (
        "no post uri"
        if not uri
        else "no author did"
        if not author_id
        else "no record"
        if not isinstance(record, dict)
        else "an unreadable indexedAt"
        if created_at is None
        else ""
    )
    if problem or created_at is None or not isinstance(record, dict):
        return malformed(problem, post_id=uri, author_id=author_id)
    handle = author.get("handle") if isinstance(author, dict) else ""
    text = str(record["text"]) if isinstance(record.get("text"), str) else ""
    hashtags: tuple[str, ...] = ()
    quoted_hashtags: tuple[str, ...] = ()
    if record.get("$type") == REPOST or MANUAL_REPOST.match(text):
        kind = PostKind.REPOST
    else:
        hashtags = record_hashtags(record)
        quote = quoted_uri(record)
        if quote:
            kind = PostKind.QUOTE
            quoted_record = _quoted_record_in_view(item) or (quoted or {}).get(quote)
            quoted_hashtags = record_hashtags(quoted_record)
        elif isinstance(record.get("reply"), dict):
            kind = PostKind.REPLY
        else:
            kind = PostKind.ORIGINAL
    return InboundPost(
        platform="bluesky",
        post_id=uri,
        root_id=uri,
        author_id=author_id,
        author_handle=handle if isinstance(handle, str) else "",
        text=text,
        hashtags=hashtags,
        kind=kind,
        created_at=created_at,
        quoted_hashtags=quoted_hashtags,
        raw={"uri": uri, "cid": str(item.get("cid") or ""), "record": record},
    )


def _repost_in_feed(item: dict[str, Any], malformed: MalformedPost) -> InboundPost:
    """A feed view of someone's repost (``reason`` ``#reasonRepost``): the reposter's, keyed on
    the repost record (never on the reposted post, which may be a purchase read on its own)."""
    reason, post = item["reason"], item["post"]
    by = reason.get("by")
    author_id = _did(by.get("did")) if isinstance(by, dict) else ""
    original = post_uri(post.get("uri"))
    repost_id = reason.get("uri") if isinstance(reason.get("uri"), str) else ""
    repost_id = repost_id or (f"{original}#repost-by-{author_id}" if original else "")
    created_at = when(reason.get("indexedAt"))
    if not repost_id or not author_id or created_at is None:
        return malformed("an unreadable repost", post_id=repost_id, author_id=author_id)
    record = post.get("record")
    text = record.get("text") if isinstance(record, dict) else ""
    handle = by.get("handle") if isinstance(by, dict) else ""
    return InboundPost(
        platform="bluesky",
        post_id=repost_id,
        root_id=repost_id,
        author_id=author_id,
        author_handle=handle if isinstance(handle, str) else "",
        text=text if isinstance(text, str) else "",
        hashtags=(),
        kind=PostKind.REPOST,
        created_at=created_at,
        raw={"uri": repost_id, "reposted": original},
    )


def items_of(body: Any) -> list[Any]:
    """The items of a saved response: ``notifications`` (listNotifications), ``posts``
    (searchPosts, getPosts), a ``thread`` (getPostThread), or a list of items."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in ("notifications", "posts"):
            if isinstance(body.get(key), list):
                return list(body[key])
        if isinstance(body.get("thread"), dict):
            return [body["thread"]]
    return []


def inbound_from_items(
    items: list[Any], *, fetched_at: datetime, quoted: Mapping[str, Any] | None = None
) -> list[InboundPost]:
    """The posts among ``items``, oldest first (by ``indexedAt``, then id), each read alone."""
    posts = [
        post
        for item in items
        if (post := inbound_from_item(item, fetched_at=fetched_at, quoted=quoted)) is not None
    ]
    return sorted(posts, key=lambda p: (p.created_at, p.post_id))
