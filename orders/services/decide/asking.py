"""What each purchase post asks for: the variant and the quantity (issue 13; the grammar is
``catalog.grammar``, documented in the README, "Posting a purchase: variant and quantity").

``readings`` reads, for a batch's purchases (three queries whatever their number: the posts'
texts, the campaigns' offers, the buyers' saved option values), what each post asks for;
``read_eligible`` decides the posts that cannot be sold as written, before any lock and with
nothing reserved:

- ``quantity_invalid``: zero, more than the campaign's per-buyer limit, or two quantities;
- ``variant_needed``: the words and the buyer's saved preferences leave no variant or several;
  the public reply lists the choices (within the platform's length rule);
- ``sold_out``: a product with options whose campaign offers no variant at all.

The others go on with their quantity and variant set. The remote sales-tax step
(``orders.services.decide.taxes``) asks its questions with the same readings.
"""

from collections.abc import Iterable

from accounts.selectors import option_preferences
from catalog.grammar import Offer, Reading, read_purchase
from catalog.models import Campaign
from catalog.variant_selectors import campaign_offers
from orders import messages
from orders.outcomes import PostOutcome
from orders.services.decide.batch import Batch, Eligible
from social.models import Post
from social.selectors import posts_texts


def readings(
    purchases: Iterable[tuple[Post, Campaign, int]],
) -> tuple[dict[int, Offer], dict[int, Reading]]:
    """The offers of the purchases' campaigns (by campaign id) and what each post asks for
    (by post id), for ``(post, campaign, cardholder id)`` triples."""
    items = list(purchases)
    if not items:
        return {}, {}
    offers = campaign_offers({c.pk: c for _, c, _ in items}.values())
    texts = posts_texts(post_ids=[p.pk for p, _, _ in items])
    with_options = {cid for p, c, cid in items if offers[c.pk].options}
    preferences = option_preferences(cardholder_ids=with_options)
    found = {
        post.pk: read_purchase(
            text=texts.get(post.pk, ""),
            key=campaign.hashtag_key,
            offer=offers[campaign.pk],
            preferences=preferences.get(cardholder_id),
        )
        for post, campaign, cardholder_id in items
    }
    return offers, found


def read_eligible(batch: Batch, eligible: list[Eligible], *, selling: set[int]) -> list[Eligible]:
    """Decide the eligible purchases of the ``selling`` campaigns (ids: some stock left) that
    cannot be sold as written (see the module docstring); return the others, with ``quantity``
    and ``variant`` set, and the purchases of other campaigns as they are (sold out whatever
    they ask: not read, so that a sold-out flash sale's posts cost nothing more)."""
    to_read = [e for e in eligible if e.campaign.pk in selling]
    offers, found = readings((e.post, e.campaign, e.buyer.cardholder_id) for e in to_read)
    kept: list[Eligible] = []
    for purchase in eligible:
        post, campaign = purchase.post, purchase.campaign
        if campaign.pk not in selling:
            kept.append(purchase)
            continue
        offer, reading = offers[campaign.pk], found[post.pk]
        if offer.options and not offer.variants:
            batch.decide(
                post,
                PostOutcome.SOLD_OUT,
                reply=messages.reply_sold_out(
                    handle=post.author_handle, campaign=campaign, platform=post.platform
                ),
            )
        elif reading.quantity is None:
            batch.decide(
                post,
                PostOutcome.QUANTITY_INVALID,
                reply=messages.reply_quantity_invalid(
                    handle=post.author_handle,
                    campaign=campaign,
                    limit=offer.per_buyer_limit,
                    platform=post.platform,
                ),
            )
        elif reading.variant_needed:
            choices = [(name, offer.values_of(pos)) for pos, name in enumerate(offer.options)]
            batch.decide(
                post,
                PostOutcome.VARIANT_NEEDED,
                reply=messages.reply_variant_needed(
                    handle=post.author_handle,
                    campaign=campaign,
                    choices=choices,
                    platform=post.platform,
                ),
            )
        else:
            purchase.quantity = reading.quantity
            purchase.variant = next(
                (v for v in offer.variants if v.variant_id == reading.variant_id), None
            )
            kept.append(purchase)
    return kept
