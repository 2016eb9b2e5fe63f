"""Platform accounts, the inbox and the outbox: operators only (they span every merchant)."""

from django.contrib import admin

from catalog.admin_scoping import CappedCountPaginator
from core.admin import OperatorOnlyAdmin, ReadOnlyAdminMixin
from social.models import FeedCursor, PlatformAccount, Post, Reply


@admin.register(PlatformAccount)
class PlatformAccountAdmin(OperatorOnlyAdmin):
    list_display = (
        "handle",
        "platform",
        "enabled",
        "reply_budget",
        "reply_budget_seconds",
        "last_error",
    )
    list_filter = ("platform", "enabled")


@admin.register(FeedCursor)
class FeedCursorAdmin(ReadOnlyAdminMixin, OperatorOnlyAdmin):
    list_display = ("account", "feed", "cursor", "high_water_mark", "polled_at", "stopped")
    list_select_related = ("account",)


@admin.register(Post)
class PostAdmin(ReadOnlyAdminMixin, OperatorOnlyAdmin):
    list_display = ("id", "platform", "post_id", "author_handle", "kind", "posted_at", "outcome")
    list_filter = ("platform", "outcome", "kind")
    ordering = ("-id",)
    paginator = CappedCountPaginator
    show_full_result_count = False
    search_fields = ("=post_id", "=author_handle")


@admin.register(Reply)
class ReplyAdmin(ReadOnlyAdminMixin, OperatorOnlyAdmin):
    list_display = ("id", "account", "kind", "priority", "status", "attempts", "sent_at")
    list_filter = ("status", "priority", "kind")
    list_select_related = ("account",)
    ordering = ("-id",)
    paginator = CappedCountPaginator
    show_full_result_count = False
