"""Platform accounts, the inbox and the outbox: operators only (they span every merchant)."""

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from core.admin import CappedCountPaginator, OperatorOnlyAdmin, ReadOnlyAdminMixin
from social.credentials import credentials_encrypt
from social.models import FeedCursor, Platform, PlatformAccount, Post, Reply
from social.platforms.bluesky import within_write_limits


class PlatformAccountForm(forms.ModelForm):
    """Credentials are written, never shown: a new JSON value replaces them (encrypted), an
    empty one keeps them."""

    new_credentials = forms.CharField(
        label="Replace credentials",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text='JSON, for example {"access_token": "…", "refresh_token": "…", '
        '"expires_at": "2026-12-01T12:00:00+00:00"}; Mastodon also "api_base_url"; Bluesky '
        '{"identifier": "brand.bsky.social", "app_password": "xxxx-xxxx-xxxx-xxxx"} (and '
        '"service_url" for another PDS). Stored encrypted; leave empty to keep the current ones.',
    )

    class Meta:
        model = PlatformAccount
        fields = (
            "platform",
            "platform_user_id",
            "handle",
            "enabled",
            "feed_mode",
            "reply_budget",
            "reply_budget_seconds",
        )

    def clean_new_credentials(self) -> dict[str, Any] | None:
        value = self.cleaned_data["new_credentials"].strip()
        if not value:
            return None
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            raise forms.ValidationError(
                "Not JSON: paste the credentials as a JSON object."
            ) from None
        if not isinstance(parsed, dict):
            raise forms.ValidationError("The credentials must be a JSON object.")
        return parsed

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("platform") == Platform.BLUESKY:
            # People and the brand are their DIDs on Bluesky; handles change.
            if not str(cleaned.get("platform_user_id", "")).startswith("did:"):
                self.add_error(
                    "platform_user_id", "On Bluesky, the account's DID (did:plc:…), not its handle."
                )
            budget, seconds = cleaned.get("reply_budget"), cleaned.get("reply_budget_seconds")
            if budget is not None and seconds and not within_write_limits(budget, seconds):
                self.add_error(
                    "reply_budget",
                    "More replies than Bluesky's write limits allow (5,000 points an hour, "
                    "35,000 a day, 3 a reply): for example 1000 per 10000 seconds.",
                )
        return cleaned


@admin.register(PlatformAccount)
class PlatformAccountAdmin(OperatorOnlyAdmin):
    form = PlatformAccountForm
    list_display = (
        "handle",
        "platform",
        "enabled",
        "feed_mode",
        "reply_budget",
        "reply_budget_seconds",
        "feed_state",
        "last_error",
    )
    list_filter = ("platform", "enabled")
    readonly_fields = ("has_credentials", "feed_state", "last_error", "budget_left")

    @admin.display(description="Credentials")
    def has_credentials(self, obj: PlatformAccount) -> str:
        return "set (encrypted)" if obj.credentials_encrypted else "none"

    @admin.display(description="Feed")
    def feed_state(self, obj: PlatformAccount) -> str:
        """The alert operators need, for each feed: stopped by a usage cap, failing (a refused
        read), or its last error."""
        states = []
        for cursor in FeedCursor.objects.filter(account=obj).order_by("feed"):
            if cursor.stopped:
                state = f"STOPPED (usage cap): {cursor.last_error}"
            elif cursor.failing_since is not None:
                state = f"FAILING since {cursor.failing_since:%Y-%m-%d %H:%M}: {cursor.last_error}"
            else:
                state = f"error: {cursor.last_error}" if cursor.last_error else "ok"
            states.append(f"{cursor.feed}: {state}"[:200])
        return "; ".join(states) or "not read yet"

    @admin.display(description="Reply budget left")
    def budget_left(self, obj: PlatformAccount) -> str:
        if obj.bucket_tokens is None:
            return f"{obj.reply_budget} (full)"
        return f"{obj.bucket_tokens:.0f} of {obj.reply_budget} at {obj.bucket_updated_at:%H:%M:%S}"

    def save_model(
        self, request: HttpRequest, obj: PlatformAccount, form: Any, change: bool
    ) -> None:
        credentials = form.cleaned_data.get("new_credentials")
        if credentials is not None:
            obj.credentials_encrypted = credentials_encrypt(credentials)
        super().save_model(request, obj, form, change)


@admin.register(FeedCursor)
class FeedCursorAdmin(ReadOnlyAdminMixin, OperatorOnlyAdmin):
    list_display = (
        "account",
        "feed",
        "cursor",
        "high_water_mark",
        "polled_at",
        "stopped",
        "failing_since",
        "last_error",
    )
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
