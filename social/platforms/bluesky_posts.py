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
own root. The view's author must be the URI's DID (a repost's ``by`` the repost URI's), the URI
a post's (``app.bsky.feed.post``), and the record of that type: an item that says otherwise is
``malformed``, as is a record the lexicon would refuse (facets, features, text, embed or reply
of the wrong type). Each item is read alone: whatever fails in one is that item's ``malformed``
post, and the rest of the page goes on (DESIGN §4).

Time: ``created_at`` is the view's ``indexedAt``, which the AppView sets to the earlier of the
record's ``createdAt`` (whatever the author's client wrote) and when it indexed the post: a
backdated post shows an old time. The feed reader (``bluesky._read``) raises it to when the
post can first have been listed (DESIGN §3.3: no backdated post slips into a closed window).

Hashtags: the record's tag facets (``app.bsky.richtext.facet#tag``), in text order, each
believed only where the text shows it: its UTF-8 byte range lies in the text and holds ``#`` and
the tag (by ``hashtag_key``), and the tag is within the lexicon's 64 graphemes and 640 bytes. A
record with no such facet (a client that writes no rich text, or only mentions) has its text
read with the twitter-text rules (``social.hashtags``), skipping its link facets. The record's extra
``tags`` (not shown in the text) are not the author's words and are not read. A repost
(a feed's ``#reasonRepost``, or old-style ``RT @user:`` text) has no hashtags; a quote
(an ``app.bsky.embed.record`` embed, alone or with media) keeps the quoted post's hashtags apart,
as ``quoted_hashtags``, read from the quoted record when the item or ``quoted`` carries it.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import regex

from social.hashtags import MAX_HASHTAGS, extract_hashtags, hashtag_key
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
# A tag facet's tag: the lexicon's ``maxGraphemes`` and ``maxLength`` (bytes).
MAX_TAG_GRAPHEMES = 64
MAX_TAG_BYTES = 640
HASH_SIGNS = ("#", "\uff03")  # as Bluesky's clients detect tags


def graphemes(text: str) -> int:
    """User-perceived characters (extended grapheme clusters), as Bluesky counts them."""
    return len(regex.findall(r"\X", text))


def when(value: Any) -> datetime | None:
    """An AT Protocol datetime (RFC 3339), or None when it cannot be read."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def post_uri(value: Any, collection: str = POST) -> str:
    """An AT URI of a record of ``collection`` (by default a post:
    ``at://<did>/app.bsky.feed.post/<rkey>``), or ""."""
    if not isinstance(value, str) or not value.startswith("at://"):
        return ""
    parts = value[len("at://") :].split("/")
    return (
        value
        if len(parts) == 3 and parts[0].startswith("did:") and parts[1] == collection and all(parts)
        else ""
    )


def uri_did(uri: str) -> str:
    """The DID whose repository holds the record at the AT URI ``uri`` (its authority)."""
    return uri[len("at://") :].split("/")[0] if uri.startswith("at://") else ""


def _did(value: Any) -> str:
    return value if isinstance(value, str) and value.startswith("did:") and len(value) > 4 else ""


def char_index(text: str, byte_index: int) -> int:
    """The code-point index in ``text`` of a UTF-8 byte offset (a facet's), rounded down."""
    return len(text.encode("utf-8")[: max(0, byte_index)].decode("utf-8", "ignore"))


def _facet_parts(record: Mapping[str, Any]) -> list[tuple[int, int, list[Any]]]:
    """``(byteStart, byteEnd, features)`` of every facet of the record of a readable shape."""
    facets = record.get("facets")
    found = []
    for facet in facets if isinstance(facets, list) else []:
        index = facet.get("index") if isinstance(facet, dict) else None
        features = facet.get("features") if isinstance(facet, dict) else None
        if not isinstance(index, dict) or not isinstance(features, list):
            continue
        start, end = index.get("byteStart"), index.get("byteEnd")
        if isinstance(start, int) and isinstance(end, int):  # a bool is 0 or 1: harmless
            found.append((start, end, features))
    return found


def _tag_fits(tag: str) -> bool:
    # Bytes first: a tag of 100,000 characters is refused without counting its graphemes.
    return len(tag.encode("utf-8")) <= MAX_TAG_BYTES and graphemes(tag) <= MAX_TAG_GRAPHEMES


def _shown_tags(record: Mapping[str, Any], text: str) -> list[str]:
    """The tags of the record's tag facets that its text shows, in text order: each facet's
    byte range within the text, holding a hash sign and the tag (by ``hashtag_key``)."""
    encoded = text.encode("utf-8")
    found = []
    for start, end, features in _facet_parts(record):
        if not 0 <= start < end <= len(encoded):
            continue
        try:
            shown = encoded[start:end].decode("utf-8")
        except UnicodeDecodeError:  # the range cuts a character
            continue
        if not shown.startswith(HASH_SIGNS):
            continue
        for feature in features:
            tag = feature.get("tag") if isinstance(feature, dict) else None
            if (
                isinstance(feature, dict)
                and feature.get("$type") == TAG
                and isinstance(tag, str)
                and tag
                and _tag_fits(tag)
                and hashtag_key(tag) == hashtag_key(shown[1:])
            ):
                found.append((start, tag))
    return [tag for _, tag in sorted(found, key=lambda pair: pair[0])]


def record_problem(record: Mapping[str, Any]) -> str:
    """Why an ``app.bsky.feed.post`` record cannot be read ("" when it can): not of that type,
    or of a shape its lexicon refuses where it is read (text, facets, embed, reply)."""
    if record.get("$type") != POST:
        return "not an app.bsky.feed.post record"
    if not isinstance(record.get("text"), str):
        return "a record whose text is not a string"
    facets = record.get("facets")
    if facets is not None and not (
        isinstance(facets, list)
        and all(
            isinstance(f, dict)
            and isinstance(f.get("index"), dict)
            and isinstance(f.get("features"), list)
            for f in facets
        )
    ):
        return "unreadable facets"
    for field in ("embed", "reply"):
        if record.get(field) is not None and not isinstance(record[field], dict):
            return f"an unreadable {field}"
    return ""


def record_hashtags(record: Any) -> tuple[str, ...]:
    """The hashtags an ``app.bsky.feed.post`` record's author wrote, in text order: its tag
    facets that the text shows, else its text's (outside its link facets). Parts of a shape
    that cannot be read are skipped."""
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        return ()
    tags = _shown_tags(record, record["text"])
    if tags:
        return tuple(tags[:MAX_HASHTAGS])
    text = record["text"].encode("utf-8")[:MAX_TEXT_BYTES].decode("utf-8", "ignore")
    links = [
        (char_index(text, start), char_index(text, end))
        for start, end, features in _facet_parts(record)
        if any(isinstance(f, dict) and f.get("$type") == LINK for f in features)
    ]
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
        else "an author other than the post's repository"
        if uri_did(uri) != author_id
        else "no record"
        if not isinstance(record, dict)
        else record_problem(record) or ("an unreadable indexedAt" if created_at is None else "")
    )
    if problem or created_at is None or not isinstance(record, dict):
        # The ids of a post whose author is not its repository's are not to be trusted.
        trusted = uri_did(uri) == author_id
        return malformed(
            problem, post_id=uri if trusted else "", author_id=author_id if trusted else ""
        )
    handle = author.get("handle") if isinstance(author, dict) else ""
    text = str(record["text"])
    hashtags: tuple[str, ...] = ()
    quoted_hashtags: tuple[str, ...] = ()
    if MANUAL_REPOST.match(text):
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
    # ``reason.uri`` (the repost record) is optional in the lexicon; when given it must be a
    # repost in the reposter's own repository.
    given = reason.get("uri")
    repost_id = post_uri(given, REPOST) if given is not None else ""
    if given is not None and (not repost_id or uri_did(repost_id) != author_id):
        return malformed("a repost uri not of a repost by its reposter")
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
    """The posts among ``items``, oldest first (by ``indexedAt``, then id), each read alone:
    an item whose reading fails in any way is that item's ``malformed`` post (DESIGN §4)."""
    posts = []
    for item in items:
        try:
            post = inbound_from_item(item, fetched_at=fetched_at, quoted=quoted)
        except Exception as exc:  # hostile input: one item never stops the page
            malformed = MalformedPost(platform="bluesky", item=item, fetched_at=fetched_at)
            post = malformed(f"unreadable: {type(exc).__name__}: {exc}"[:200])
        if post is not None:
            posts.append(post)
    return sorted(posts, key=lambda p: (p.created_at, p.post_id))
