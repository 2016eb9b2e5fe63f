"""Reading a saved platform API response into ``InboundPost`` values, for ``replay_posts``.

Accepted files (JSON): an X API v2 response (search or mentions: ``data`` with ``includes``), a
Mastodon notifications list, a list of sandbox posts (``{"id", "handle", "text",
"created_at"?, "repost_of"?, "quote_of"?, "edit_of"?}``), or a recording of any of these
(``{"interactions": [{"response": {"body": ...}}]}``, as in ``social/tests/fixtures``).
"""

from datetime import datetime
from typing import Any

from django.utils import timezone

from social.hashtags import extract_hashtags
from social.models import PostKind
from social.platforms.base import MANUAL_REPOST, InboundPost
from social.platforms.mastodon import inbound_from_notifications
from social.platforms.x_posts import inbound_from_page


class ReplayError(ValueError):
    """The file is not a response of the named platform."""


def _bodies(payload: Any) -> list[Any]:
    if isinstance(payload, dict) and "interactions" in payload:
        return [i["response"]["body"] for i in payload["interactions"] if "response" in i]
    return [payload]


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
                posts.extend(inbound_from_notifications(body))
            elif isinstance(body, dict) and body.get("type"):
                posts.extend(inbound_from_notifications([body]))
        elif platform == "sandbox":
            if isinstance(body, list):
                posts.extend(_sandbox(item, now) for item in body)
        else:
            raise ReplayError(f"Unknown platform {platform!r}.")
    if not posts and bodies:
        raise ReplayError(f"No {platform} posts found in this file.")
    return posts


def _sandbox(item: dict[str, Any], now: datetime) -> InboundPost:
    try:
        post_id, text = str(item["id"]), str(item["text"])
        handle = str(item.get("handle") or item["author"])
    except KeyError as exc:
        raise ReplayError(f"A sandbox post needs id, handle and text: missing {exc}.") from None
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
    created = item.get("created_at")
    return InboundPost(
        platform="sandbox",
        post_id=post_id,
        root_id=str(item.get("edit_of") or post_id),
        author_id=str(item.get("author_id") or f"replay:{handle.lower()}"),
        author_handle=handle,
        text=text,
        hashtags=() if repost else tuple(t.text for t in extract_hashtags(text)),
        kind=kind,
        created_at=datetime.fromisoformat(created) if created else now,
        raw=item,
    )
