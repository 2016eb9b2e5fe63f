"""Models of the social app: the inbox and outbox (``inbox``) and the sandbox network."""

from social.models.inbox import (
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
