"""Models of the social app: the inbox and outbox (``inbox``) and the sandbox network."""

from social.models.inbox import (
    EXTERNAL_ID_MAX_LENGTH,
    HANDLE_MAX_LENGTH,
    OUTCOME_MALFORMED,
    OUTCOME_UNDECIDED,
    POST_ID_MAX_LENGTH,
    FeedCursor,
    FeedKind,
    Platform,
    PlatformAccount,
    Post,
    PostKind,
    Reply,
    ReplyPriority,
    ReplyStatus,
)
from social.models.sandbox import SandboxPost, SandboxUser

__all__ = [
    "EXTERNAL_ID_MAX_LENGTH",
    "HANDLE_MAX_LENGTH",
    "OUTCOME_MALFORMED",
    "OUTCOME_UNDECIDED",
    "POST_ID_MAX_LENGTH",
    "FeedCursor",
    "FeedKind",
    "Platform",
    "PlatformAccount",
    "Post",
    "PostKind",
    "Reply",
    "ReplyPriority",
    "ReplyStatus",
    "SandboxPost",
    "SandboxUser",
]
