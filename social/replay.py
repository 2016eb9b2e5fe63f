"""Reading a saved platform API response into ``InboundPost`` values, for ``replay_posts``.

Accepted files (JSON): a response of the named platform's API, as its adapter reads them
(``PlatformAdapter.replay_posts``: X's search or mentions, ``data`` with ``includes``; a Mastodon
notifications list; the sandbox's list of posts), or a recording of any of these
(``{"interactions": [{"response": {"body": ...}}]}``, as in ``social/tests/fixtures``).

A file that is no such response raises ``ReplayError`` with one line saying why. An item that
cannot be read (not an object, no id, no author, a bad date, no text) is a ``malformed`` post,
as when a feed reads it: the rest of the file goes on.
"""

from datetime import datetime
from typing import Any

from django.utils import timezone

from social.platforms import adapter_class_for
from social.platforms.base import InboundPost


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
    try:
        adapter = adapter_class_for(platform)
    except LookupError:
        raise ReplayError(f"Unknown platform {platform!r}.") from None
    for body in bodies:
        posts.extend(adapter.replay_posts(body, fetched_at=now))
    if not posts and bodies:
        raise ReplayError(f"No {platform} posts found in this file.")
    return posts
