"""Reading a saved platform API response into ``InboundPost`` values, for ``replay_posts``.

Accepted files (JSON): an X API v2 response (search or mentions: ``data`` with ``includes``), a
Mastodon notifications list, a list of sandbox posts (``{"id", "handle", "text",
"created_at"?, "repost_of"?, "quote_of"?, "edit_of"?}``), or a recording of any of these
(``{"interactions": [{"response": {"body": ...}}]}``, as in ``social/tests/fixtures``).

A file that is no such response raises ``ReplayError`` with one line saying why. An item that
cannot be read (not an object, no id, no author, a bad date, no text) is a ``malformed`` post,
as when a feed reads it: the rest of the file goes on.
"""

from datetime import datetime
from typing import Any

from django.utils import timezone

from social.hashtags import MAX_TEXT, extract_hashtags
from social.models import PostKind
from social.platforms.base import MANUAL_REPOST, InboundPost, MalformedPost
from social.platforms.mastodon import inbound_from_notifications
from social.platforms.x_posts import inbound_from_page


class ReplayError(ValueError):
    """The file is not a response of the named platform."""


def _bodies(payload: Any) -> list[Any]:
    if not (isinstance(payload, dict) and "interactions" in payload):
        return [payload]
    interactions = payload["interactions"]
    if not isinstance(interactions, list):
        raise ReplayError("'interactions' is not a list.")
    bodies = []
    for number, interaction in enumerate(interactions):
        if not isinstance(interaction, dict):
            raise ReplayError(f"Interaction {number} is not an object.")
        response = interaction.get("response")
        if response is None:
            continue
        if not isinstance(response, dict) or "body" not in response:
            raise ReplayError(f"Interaction {number} has a response without a body.")
        bodies.append(response["body"])
    return bodies


def replay_parse(*, platform: str, payload: Any, now: datetime | None = None) -> list[InboundPost]:
    now = now or timezone.now()
    posts: list[InboundPost] = []
    bodies = _bodies(payload)
    for body in bodies:
        if platform == "x":
            if isinstance(body, dict) and "data" in body:
                posts.extend(inbound_from_page(body, fetched_at=now))
        elif platform == "mastodon":
            if isinstance(body, list):
                posts.extend(inbound_from_notifications(body, fetched_at=now))
            elif isinstance(body, dict) and body.get("type"):
                posts.extend(inbound_from_notifications([body], fetched_at=now))
        elif platform == "sandbox":
            if isinstance(body, list):
                posts.extend(_sandbox(item, now) for item in body)
        else:
            raise ReplayError(f"Unknown platform {platform!r}.")
    if not posts and bodies:
        raise ReplayError(f"No {platform} posts found in this file.")
    return posts


def _sandbox(item: Any, now: datetime) -> InboundPost:
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
