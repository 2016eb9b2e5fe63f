"""The outcomes of deciding an inbox post: exactly one per post (DESIGN §3.2).

Orders decides posts and owns their outcomes; social stores one as text in ``Post.outcome``
(through ``social.services.posts_record_outcomes``) and knows only two values, undecided and
``malformed``, which it records itself for an item it could not read.
"""

from django.db import models

from social.models import OUTCOME_MALFORMED


class PostOutcome(models.TextChoices):
    """Exactly one outcome per inbox post (DESIGN §3.2)."""

    IGNORED_REPOST = "ignored_repost", "Ignored: repost"
    IGNORED_OWN = "ignored_own", "Ignored: own post"
    IGNORED_EDIT = "ignored_edit", "Ignored: edit"
    NO_CAMPAIGN = "no_campaign", "No campaign"
    # Almost a purchase or a confirmation of a linked cardholder: hinted privately by e-mail.
    NEAR_MISS = "near_miss", "Near miss (hinted by e-mail)"
    NOT_LINKED = "not_linked", "Not linked"
    CAMPAIGN_CLOSED = "campaign_closed", "Campaign closed"
    BLOCKED = "blocked", "Blocked"
    SOLD_OUT = "sold_out", "Sold out"
    # Sold out, and the eligible cardholder joined its waitlist (``orders.models.WaitlistEntry``).
    WAITLISTED = "waitlisted", "Waitlisted"
    DUPLICATE = "duplicate", "Duplicate"
    # What the post asks for cannot be sold as written (issue 13): nothing is reserved.
    VARIANT_NEEDED = "variant_needed", "Variant needed"
    QUANTITY_INVALID = "quantity_invalid", "Quantity invalid"
    ORDER_CREATED = "order_created", "Order created"
    CONFIRMED = "confirmed", "Confirmed"
    CONFIRM_LATE = "confirm_late", "Confirmation late"
    CONFIRM_UNKNOWN = "confirm_unknown", "Confirmation unknown"
    CONFIRM_AWAITING_EMAIL = "confirm_awaiting_email", "Confirmed by post, awaiting e-mail"
    # Link claims (``accounts.services.link_claims_apply`` answers with these values).
    LINKED = "linked", "Identity linked"
    LINK_REFUSED = "link_refused", "Link refused"
    LINK_UNKNOWN = "link_unknown", "Link code unknown"
    # The platform's item could not be read: recorded by social when it stores the item.
    MALFORMED = OUTCOME_MALFORMED, "Malformed"
