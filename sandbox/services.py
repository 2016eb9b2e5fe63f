"""The sandbox network's own operations: users, posting, timelines (used by its page, its
commands and its adapter). It plays the platform, so it knows nothing of Hashcart's inbox."""

import re
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower

from core.exceptions import ApplicationError
from sandbox.models import SandboxPost, SandboxUser

HANDLE_RE = re.compile(r"^[A-Za-z0-9_]{1,50}$")
# A mention: "@" not preceded by a word character or another "@" (so e-mail addresses are not
# mentions), then a handle.
MENTION_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9_]{1,50})")
MAX_POST_LENGTH = 10_000


def sandbox_user_ensure(*, handle: str) -> SandboxUser:
    """The user with ``handle`` (any case), created if new. Raises ``ApplicationError`` for a
    handle that is not 1 to 50 letters, digits or underscores."""
    handle = handle.strip().lstrip("@")
    if not HANDLE_RE.match(handle):
        raise ApplicationError("A handle is 1 to 50 letters, digits or underscores.")
    user = SandboxUser.objects.filter(handle__iexact=handle).first()
    if user is not None:
        return user
    try:
        with transaction.atomic():
            return SandboxUser.objects.create(handle=handle)
    except IntegrityError:  # created by a concurrent caller
        return SandboxUser.objects.get(handle__iexact=handle)


def sandbox_post_create(
    *,
    handle: str,
    text: str,
    now: datetime,
    in_reply_to_id: int | None = None,
    repost_of_id: int | None = None,
    quote_of_id: int | None = None,
    edit_of_id: int | None = None,
    idempotency_key: str | None = None,
) -> SandboxPost:
    """Post ``text`` as ``handle``; @mentions of existing users are recorded.

    A repost's text is "RT @author: text" of the original. An edit points at the first post of
    its chain. With an ``idempotency_key`` already used, the earlier post is returned unchanged.
    Raises ``ApplicationError`` for an empty or over-long text or an unknown referenced post.
    """
    if idempotency_key:
        earlier = SandboxPost.objects.filter(idempotency_key=idempotency_key).first()
        if earlier is not None:
            return earlier
    author = sandbox_user_ensure(handle=handle)
    if repost_of_id is not None:
        original = _post(repost_of_id)
        text = f"RT @{original.author.handle}: {original.text}"
    if not text.strip():
        raise ApplicationError("A post needs some text.")
    if len(text) > MAX_POST_LENGTH:
        raise ApplicationError(f"A post is at most {MAX_POST_LENGTH:,} characters.")
    for post_id in (in_reply_to_id, quote_of_id):
        if post_id is not None:
            _post(post_id)
    if edit_of_id is not None:
        edited = _post(edit_of_id)
        if edited.author_id != author.pk:
            raise ApplicationError("Only the author can edit a post.")
        edit_of_id = edited.edit_of_id or edited.pk
    handles = {h.lower() for h in MENTION_RE.findall(text)}
    with transaction.atomic():
        post = SandboxPost.objects.create(
            author=author,
            text=text,
            created_at=now,
            in_reply_to_id=in_reply_to_id,
            repost_of_id=repost_of_id,
            quote_of_id=quote_of_id,
            edit_of_id=edit_of_id,
            idempotency_key=idempotency_key or None,
        )
        if handles:
            post.mentions.add(
                *SandboxUser.objects.annotate(key=Lower("handle")).filter(key__in=handles)
            )
    return post


def _post(post_id: int) -> SandboxPost:
    try:
        return SandboxPost.objects.select_related("author").get(pk=post_id)
    except SandboxPost.DoesNotExist as exc:
        raise ApplicationError(f"There is no sandbox post {post_id}.") from exc


def sandbox_timeline(*, handle: str) -> QuerySet[SandboxPost]:
    """Posts addressed to ``handle`` (mentioning it), oldest first."""
    user = SandboxUser.objects.filter(handle__iexact=handle.lstrip("@")).first()
    if user is None:
        return SandboxPost.objects.none()
    return user.mentioned_in.select_related("author").order_by("id")
