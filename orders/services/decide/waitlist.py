"""Joining the waitlist of a sold-out campaign, a bulk statement per batch (issue 13).

A purchase that meets a sold-out campaign from a cardholder who would otherwise get an order
(linked, not blocked, within limits) is decided ``waitlisted``: it needs no lock, like "sold
out" before it (``orders.services.decide.purchases``), so a sold-out flash sale's batches still
run side by side. The entries are inserted in one statement that skips a cardholder already
waiting (``waitlist_one_waiting_per_buyer_campaign``: a concurrent batch got there first), then
their places are read in one query for the buyers' e-mails: two statements whatever their
number. The public reply says only "waitlisted"; the place goes by e-mail.

Once the batch commits, the campaigns joined are handed to ``WAITLIST_PROMOTE_HANDLER``: a unit
released while this batch read the stock as sold out found no one waiting, and is promoted now.
"""

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from catalog.models import Campaign
from catalog.variant_selectors import products_with_options
from orders import messages
from orders.models import Notification, WaitlistEntry
from orders.outcomes import PostOutcome
from orders.selectors import waitlist_positions_of_posts
from orders.services.common import notification, waitlist_promote_soon
from orders.services.decide.asking import readings
from orders.services.decide.batch import Batch
from social.models import Post

if TYPE_CHECKING:
    from accounts.models import Cardholder


@dataclass
class Join:
    post: Post
    campaign: Campaign
    cardholder_id: int
    # The variant the post asks for, when it was read (its campaign had stock left).
    variant_id: int | None = None


def waitlist_decide(batch: Batch, post: Post, campaign: Campaign) -> None:
    """The post's outcome: ``waitlisted``, with a public reply that gives no place."""
    batch.decide(
        post,
        PostOutcome.WAITLISTED,
        reply=messages.reply_waitlisted(
            handle=post.author_handle, campaign=campaign, platform=post.platform
        ),
    )


def waitlist_join(batch: Batch, joins: list[Join]) -> None:
    """Insert the batch's entries (one statement), read their places (one query) and queue each
    buyer's e-mail with theirs. Call under the batch's post locks, before ``batch_write``."""
    if not joins:
        return
    _variants_read(joins)
    WaitlistEntry.objects.bulk_create(
        [
            WaitlistEntry(
                merchant_id=j.campaign.merchant_id,
                campaign_id=j.campaign.pk,
                cardholder_id=j.cardholder_id,
                post=j.post,
                posted_at=j.post.posted_at,
                variant_id=j.variant_id,
            )
            for j in joins
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )
    positions = waitlist_positions_of_posts(post_ids=[j.post.pk for j in joins])
    for join in joins:
        position = positions.get(join.post.pk)
        if position is None:
            continue  # another batch's entry for this buyer was inserted first: it e-mails
        batch.emails.append(
            (
                join.cardholder_id,
                partial(
                    _waitlisted_email,
                    post_id=join.post.pk,
                    campaign=join.campaign,
                    position=position,
                ),
            )
        )
    waitlist_promote_soon(campaign_ids=[j.campaign.pk for j in joins])


def _variants_read(joins: list[Join]) -> None:
    """Set the variant of the joins whose posts were not read (a sold-out campaign's are decided
    unread) and whose product has options: one query when none has, four at most otherwise."""
    unread = [j for j in joins if j.variant_id is None]
    with_options = products_with_options({j.campaign.product_id for j in unread})
    to_read = [j for j in unread if j.campaign.product_id in with_options]
    if not to_read:
        return
    _, found = readings((j.post, j.campaign, j.cardholder_id) for j in to_read)
    for join in to_read:
        join.variant_id = found[join.post.pk].variant_id


def _waitlisted_email(
    cardholder: "Cardholder", *, post_id: int, campaign: Campaign, position: int
) -> Notification:
    return notification(
        key=f"waitlisted:{post_id}",
        cardholder=cardholder,
        kind="waitlisted",
        message=messages.email_waitlisted(
            cardholder=cardholder, campaign=campaign, position=position
        ),
    )
