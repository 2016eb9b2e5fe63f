"""Models of the social app: the inbox and outbox (``inbox``). The sandbox network's tables are
the ``sandbox`` app's."""

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
]
