"""The sandbox: a small social network stored in the database (DESIGN §4).

It stands in for a real platform in the demo, the tests and the benchmarks: users with handles
and stable numeric ids, posts that mention users, replies, reposts, quotes and edits.
"""

from django.db import models
from django.db.models.functions import Lower


class SandboxUser(models.Model):
    """A sandbox account. ``id`` is the immutable platform user id; the handle may change."""

    handle = models.CharField(max_length=50)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("handle"), name="sandboxuser_unique_handle_ci"),
        ]

    def __str__(self) -> str:
        return f"@{self.handle}"


class SandboxPost(models.Model):
    """A post on the sandbox network. An edit is a new post whose ``edit_of`` is the original."""

    author = models.ForeignKey(SandboxUser, on_delete=models.CASCADE, related_name="posts")
    text = models.TextField()
    created_at = models.DateTimeField(db_index=True)
    mentions = models.ManyToManyField(SandboxUser, related_name="mentioned_in", blank=True)
    in_reply_to = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replies"
    )
    repost_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reposts"
    )
    quote_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="quotes"
    )
    edit_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="edits"
    )
    # Like Mastodon's Idempotency-Key: a retried send returns the post made the first time.
    idempotency_key = models.CharField(max_length=100, null=True, blank=True, unique=True)

    def __str__(self) -> str:
        return f"{self.pk} @{self.author.handle}: {self.text[:40]}"
