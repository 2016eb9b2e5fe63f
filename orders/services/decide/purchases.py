"""Purchase posts: eligibility, the locks, and reserving stock (DESIGN §3.2, §3.5, §8).

Locks, in this order (every service that takes more than one follows it): the purchase
controls of the cardholders who may get an order (``accounts.services.controls_lock_many``,
sorted by cardholder), so that the per-buyer limit and the spend caps hold under any number of
deciders; then the campaigns whose stock moves or whose orders are confirmed
(``catalog.services.campaigns_lock``, sorted by id). The buyers' cards and consent are read
after the controls' locks (``accounts.selectors.buyer_snapshots``), so a lockdown cannot
interleave. Stock is reserved with ``catalog.services.stock_reserve`` under the campaign's lock,
never past ``stock_total`` (read under the lock, backed by the check constraint).

Sales tax (DESIGN §3.8) is quoted for each purchase by one calculator per batch
(``orders.tax.calculator``: the rates table is read once for the batch, never per order), before
the spend caps, which compare the total with tax. A quote that fails (Stripe Tax unreachable)
blocks that purchase alone, with an e-mail that says so; the buyer may post again.

Waitlist (issue 13, ``orders.services.decide.waitlist``): units that people wait for are not
for sale to new posts (the campaign's stock left is less its waiting entries), so a unit that
comes back goes to the first in the queue; a purchase that finds none for sale from a buyer who
would otherwise get an order is ``waitlisted``, decided without locks as "sold out" was.
"""

import logging
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings

from accounts.selectors import (
    BuyerLimits,
    buyer_limits,
    buyer_snapshots,
    buyers_for_identities,
    purchase_blocked_reason,
)
from accounts.services import controls_lock_many
from catalog.models import Campaign
from catalog.selectors import campaigns_stock_left
from catalog.services import campaigns_lock, stock_reserve
from catalog.variant_selectors import variant_stock_left
from orders import messages
from orders.models import Order
from orders.outcomes import PostOutcome
from orders.selectors import waitlist_units_owed, waitlist_waiting_pairs
from orders.services.decide import asking
from orders.services.decide import confirmations as confirming
from orders.services.decide.batch import Batch, Eligible, Purchase
from orders.services.decide.snapshot import (
    Holdings,
    blocked_email,
    holdings_read,
    order_new,
    tax_request,
)
from orders.services.decide.waitlist import Join, waitlist_decide, waitlist_join
from orders.tax import TaxCalculator, TaxError, TaxQuote
from social.models import Post

logger = logging.getLogger(__name__)

TAX_UNAVAILABLE = "we could not work out the sales tax just now; please post again shortly."


def decide_purchases(
    batch: Batch,
    purchases: list[Purchase],
    confirmations: list[tuple[Post, set[str]]],
    confirm_orders: list[Order],
    *,
    tax: TaxCalculator,
) -> None:
    """Decide the purchases (their sales tax by ``tax``) and, under the same campaign locks, the
    confirmations."""
    buyers = buyers_for_identities(
        identities={(p.post.platform, p.post.author_id) for p in purchases}
    )
    eligible: list[Eligible] = []
    for purchase in purchases:
        post, campaign = purchase.post, purchase.campaign
        buyer = buyers.get((post.platform, post.author_id))
        if buyer is None and post.posted_at >= campaign.ends_at:
            # Nothing to link for any more: told that the offer ended, as a buyer would be.
            batch.decide(
                post,
                PostOutcome.NOT_LINKED,
                reply=messages.reply_closed(
                    handle=post.author_handle,
                    campaign=campaign,
                    posted_at=post.posted_at,
                    platform=post.platform,
                ),
            )
        elif buyer is None:
            batch.decide(post, PostOutcome.NOT_LINKED)
            batch.invites.append(purchase)  # invited to link, once per campaign (``invites``)
        elif campaign.paused or not campaign.starts_at <= post.posted_at < campaign.ends_at:
            batch.decide(
                post,
                PostOutcome.CAMPAIGN_CLOSED,
                reply=messages.reply_closed(
                    handle=post.author_handle,
                    campaign=campaign,
                    posted_at=post.posted_at,
                    platform=post.platform,
                ),
            )
        else:
            eligible.append(Eligible(post=post, campaign=campaign, buyer=buyer))

    # A campaign sold out in the committed state of the moment is left unlocked, and so are the
    # controls of buyers who only ask for such campaigns: their posts create nothing, so the
    # decision stands as of that moment (before any later release), and a sold-out flash
    # sale's batches run side by side instead of queueing on its row.
    asked = {p.campaign.pk for p in eligible}
    # Units that people wait for are theirs (read unlocked too: it only ever lowers ``left``).
    queued = waitlist_units_owed(campaign_ids=asked) if asked else {}
    left = {pk: units - queued.get(pk, 0) for pk, units in campaigns_stock_left(asked).items()}
    # Variant and quantity (issue 13): posts that cannot be sold as written are decided here
    # (those of a sold-out campaign are not read: they are sold out whatever they ask).
    eligible = asking.read_eligible(
        batch, eligible, selling={pk for pk, units in left.items() if units > 0}
    )
    buying = {p.buyer.cardholder_id for p in eligible if left.get(p.campaign.pk, 0) > 0}
    # Lock order: controls, then campaigns (see the module docstring).
    limits = controls_lock_many(cardholder_ids=buying)
    limits |= buyer_limits(cardholder_ids={p.buyer.cardholder_id for p in eligible} - buying)
    locked = campaigns_lock(
        {p.campaign.pk for p in eligible if left.get(p.campaign.pk, 0) > 0}
        | {o.campaign_id for o in confirm_orders}
    )
    confirming.decide_confirmations(batch, confirmations, confirm_orders)
    if eligible:
        remaining = {pk: min(units, 0) for pk, units in left.items()}
        remaining |= {
            pk: c.stock_total - c.stock_reserved - queued.get(pk, 0) for pk, c in locked.items()
        }
        remaining_variants = variant_stock_left(locked)
        _decide_eligible(batch, eligible, limits, locked, remaining, remaining_variants, tax)


def _decide_eligible(
    batch: Batch,
    eligible: list[Eligible],
    limits: dict[int, BuyerLimits],
    locked: dict[int, Campaign],
    remaining: dict[int, int],
    remaining_variants: dict[tuple[int, int], int],
    tax: TaxCalculator,
) -> None:
    """Blocked, duplicate, sold out or a new order, in post order; then reserve the units of
    the ``locked`` campaigns (``remaining``: units left in each campaign asked for;
    ``remaining_variants`` in each (campaign, variant) of theirs). A purchase sells only when
    both hold its quantity.

    Tax is quoted only where a unit may be sold: a campaign with none left answers "sold out"
    (or "blocked", its caps compared with the price) without a quote, so the thousands of late
    posts of a flash sale cost no tax question."""
    snapshots = buyer_snapshots(cardholder_ids=limits)
    holdings = holdings_read(
        cardholder_ids=set(limits),
        campaign_ids={p.campaign.pk for p in eligible},
        capped_ids={pk for pk, lim in limits.items() if lim.per_day_cap is not None},
        now=batch.now,
    )
    waiting = waitlist_waiting_pairs(
        cardholder_ids=set(limits), campaign_ids={p.campaign.pk for p in eligible}
    )
    cooling = timedelta(hours=settings.HASHCART["COOLING_OFF_HOURS"])
    reserved: Counter[tuple[int, int | None]] = Counter()
    joins: list[Join] = []
    for purchase in eligible:
        post, buyer = purchase.post, purchase.buyer
        campaign = locked.get(purchase.campaign.pk, purchase.campaign)
        campaign.product = purchase.campaign.product
        cardholder_id = buyer.cardholder_id
        snapshot, lim = snapshots.get(cardholder_id), limits.get(cardholder_id)
        card = snapshot.card if snapshot is not None else None
        units, variant = purchase.quantity, purchase.variant
        selling = remaining[campaign.pk] >= units and (
            variant is None or remaining_variants.get((campaign.pk, variant.variant_id), 0) >= units
        )
        quote: TaxQuote | None = None
        if selling and card is not None and card.address_complete:
            try:
                quote = tax.quote(tax_request(campaign=campaign, card=card, quantity=units))
            except TaxError as exc:
                logger.warning("sales tax unavailable for post %s: %s", post.pk, exc)
        total = quote.total if quote is not None else campaign.price
        reason = purchase_blocked_reason(
            posted_at=post.posted_at,
            total=total,
            buyer=buyer,
            snapshot=snapshot,
            limits=lim,
            cooling=cooling,
        )
        # Waiting already: a duplicate unless this post can be sold now (another size in
        # stock); the per-buyer limit still counts, and promotion checks it again later.
        if reason is None and (
            holdings.pending_for(cardholder_id, campaign.pk)
            or ((cardholder_id, campaign.pk) in waiting and not selling)
        ):
            batch.decide(post, PostOutcome.DUPLICATE)
            continue
        if reason is None and selling and quote is None and card is not None:
            reason = TAX_UNAVAILABLE
        reason = reason or _limit_reason(holdings, campaign, cardholder_id, lim, total, units)
        if reason is not None or card is None:
            _block(batch, post, campaign, cardholder_id, reason)
            continue
        # Selling, a purchase without a quote was blocked above (TAX_UNAVAILABLE), so no quote
        # here means sold out: an eligible buyer joins the waitlist.
        if not selling or quote is None:
            waitlist_decide(batch, post, campaign)
            waiting.add((cardholder_id, campaign.pk))
            joins.append(
                Join(
                    post=post,
                    campaign=campaign,
                    cardholder_id=cardholder_id,
                    variant_id=variant.variant_id if variant is not None else None,
                )
            )
            continue
        remaining[campaign.pk] -= units
        if variant is not None:
            remaining_variants[(campaign.pk, variant.variant_id)] -= units
        reserved[(campaign.pk, variant.variant_id if variant else None)] += units
        holdings.add(cardholder_id, campaign, quote.total, units)
        batch.decide(post, PostOutcome.ORDER_CREATED)
        batch.new_orders.append(
            (
                order_new(
                    post=post,
                    campaign=campaign,
                    buyer=buyer,
                    card=card,
                    limits=lim,
                    tax=quote,
                    variant=variant,
                    quantity=units,
                ),
                post,
            )
        )
    for (campaign_id, variant_id), units in sorted(reserved.items(), key=lambda kv: kv[0][0]):
        # Under the row lock; the check constraints back it should anything else slip.
        stock_reserve(campaign_id=campaign_id, units=units, variant_id=variant_id)
    waitlist_join(batch, joins)


def _limit_reason(
    holdings: Holdings,
    campaign: Campaign,
    cardholder_id: int,
    limits: BuyerLimits | None,
    total: Decimal,
    units: int = 1,
) -> str | None:
    """Orders' own limits: units per buyer (``units`` this one's), and the buyer's rolling
    daily spend cap (order totals with tax, ``total`` this one's)."""
    if holdings.held(cardholder_id, campaign.pk) + units > campaign.per_buyer_limit:
        return "you already have the most units of this offer allowed per buyer."
    if (
        limits is not None
        and limits.per_day_cap is not None
        and holdings.spent(cardholder_id) + total > limits.per_day_cap
    ):
        return "this order would take you over your daily spending limit."
    return None


def _block(
    batch: Batch, post: Post, campaign: Campaign, cardholder_id: int, reason: str | None
) -> None:
    """``blocked``: a public answer that says nothing of why, and the reason by e-mail."""
    batch.decide(
        post,
        PostOutcome.BLOCKED,
        reply=messages.reply_blocked(
            handle=post.author_handle, campaign=campaign, platform=post.platform
        ),
    )
    batch.emails.append(
        (
            cardholder_id,
            partial(
                blocked_email,
                post_id=post.pk,
                campaign=campaign,
                reason=reason or "there is no card on file.",
            ),
        )
    )
