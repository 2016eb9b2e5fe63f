"""Models of the social app: the inbox and outbox (``inbox``) and the sandbox network."""

from social.models.inbox import (
    EXTERNAL_ID_MAX_LENGTH,
    HANDLE_MAX_LENGTH,
    POST_ID_MAX_LENGTH,
    FeedCursor,
    FeedKind,
    Platform,
    PlatformAccount,
    Post,
    PostKind,
    PostOutcome,
    Reply,
    ReplyPriority,
    ReplyStatus,
)
from social.models.sandbox import SandboxPost, SandboxUser

__all__ = [
    "EXTERNAL_ID_MAX_LENGTH",
    "HANDLE_MAX_LENGTH",
    "POST_ID_MAX_LENGTH",
    "FeedCursor",
    "FeedKind",
    "Platform",
    "PlatformAccount",
    "Post",
    "PostKind",
    "PostOutcome",
    "Reply",
    "ReplyPriority",
    "ReplyStatus",
    "SandboxPost",
    "SandboxUser",
]
