"""Invitations to link: the one public answer to an unlinked author's purchase (DESIGN §3.7).

A purchase post from an author no cardholder has linked is decided ``not_linked``; the first
such post per (author, campaign) ever gets a low-priority public reply (``ReplyPriority.OTHER``,
after confirmation requests and results, skipped when stale) with the opt-in page's link, the
campaign preselected. It names nobody but the author's handle.

Durable and race-free: the batch inserts an ``Invitation`` per (platform, author, campaign),
ignoring conflicts, then reads back which of its posts own a row (a concurrent decider's insert
of the same key waits for it and loses). Replies the account's budget cannot afford
(``social.services.replies_queue`` drops them) give their rows back, so a later post may be
invited. Two statements per batch, whatever its size, and one more when some were dropped.
"""

from orders import messages
from orders.models import Invitation
from orders.services.decide.batch import Batch, Purchase
from social.models import ReplyPriority
from social.services import ReplyDraft

INVITE = "invite"  # the reply's kind


def invites_draft(batch: Batch) -> list[ReplyDraft]:
    """Record the batch's invitations and return the replies of those that are new."""
    first: dict[tuple[str, str, int], Purchase] = {}
    for purchase in batch.invites:
        post = purchase.post
        first.setdefault((post.platform, post.author_id, purchase.campaign.pk), purchase)
    if not first:
        return []
    Invitation.objects.bulk_create(
        [
            Invitation(
                platform=platform,
                author_id=author_id,
                campaign_id=campaign_id,
                post=purchase.post,
                created_at=batch.now,
            )
            for (platform, author_id, campaign_id), purchase in first.items()
        ],
        ignore_conflicts=True,
    )
    wanted = {p.post.pk: p for p in first.values()}
    owned = Invitation.objects.filter(post_id__in=list(wanted)).values_list("post_id", flat=True)
    return [
        ReplyDraft(
            in_reply_to=wanted[pk].post,
            kind=INVITE,
            text=messages.reply_invite(
                handle=wanted[pk].post.author_handle,
                campaign=wanted[pk].campaign,
                platform=wanted[pk].post.platform,
            ),
            priority=ReplyPriority.OTHER,
        )
        for pk in sorted(owned)
    ]


def invites_forget(drafts: list[ReplyDraft]) -> None:
    """Give back the invitations whose replies were not queued (the budget had no room)."""
    if drafts:
        Invitation.objects.filter(post_id__in=[d.in_reply_to.pk for d in drafts]).delete()
