"""Deciding inbox posts, a batch per transaction (DESIGN §3.2, §3.3, §3.5).

Every post gets exactly one outcome, written with everything it causes in one transaction:
orders and their audit rows, the stock they reserve, and the outbox rows for replies, e-mails
and payment calls. A post already decided is skipped, so deciding twice changes nothing.

Locks, always in this order (every service that takes more than one follows it):
1. the posts (``FOR UPDATE SKIP LOCKED``: a post another decider holds is left to it);
2. the purchase controls of the cardholders who may get an order, sorted by cardholder, so the
   per-buyer limit and the spend caps hold under any number of deciders;
3. the campaigns whose stock moves, sorted by id; reservations never pass ``stock_total``
   (read under the lock, backed by the check constraint);
4. the orders being confirmed, by compare-and-set on their status.
"""

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Card, Cardholder, Consent, PurchaseControls, SocialIdentity
from accounts.services import LinkClaim, link_claims_apply, link_code_of
from catalog.models import Campaign
from catalog.services import campaigns_lock, stock_reserve
from orders import messages
from orders.codes import confirmation_codes_new
from orders.models import (
    CONFIRMATION_ALPHABET,
    STOCK_HOLDING_STATUSES,
    Notification,
    Order,
    OrderEvent,
    OrderStatus,
    PaymentOperation,
)
from orders.selectors import orders_still_buyable
from orders.services.common import (
    event,
    notification,
    order_confirm,
    order_release,
)
from social.hashtags import hashtag_key
from social.models import PlatformAccount, Post, PostKind, PostOutcome, ReplyPriority
from social.services import ReplyDraft, replies_queue

CODE_LENGTH = 5
# What deciding reads of a post and a card: not the text or the raw payload, which can be large.
_POST_FIELDS = (
    "platform",
    "account_id",
    "post_id",
    "root_id",
    "author_id",
    "author_handle",
    "hashtags",
    "quoted_hashtags",
    "kind",
    "posted_at",
)
_CARD_FIELDS = (
    "cardholder_id",
    "billing_name",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "country",
    "address_changed_at",
)


@dataclass
class _Purchase:
    post: Post
    campaign: Campaign


@dataclass
class _Eligible:
    """A purchase by a linked cardholder while its campaign runs."""

    post: Post
    campaign: Campaign
    identity: SocialIdentity


@dataclass
class _Batch:
    """One batch's reads, decisions and pending writes."""

    posts: list[Post]
    now: datetime
    brand_user_ids: dict[int, str]
    outcomes: dict[int, str] = field(default_factory=dict)
    replies: list[ReplyDraft] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    events: list[OrderEvent] = field(default_factory=list)
    payments: list[PaymentOperation] = field(default_factory=list)
    new_orders: list[tuple[Order, Post]] = field(default_factory=list)
    # The campaign each purchase post asked for, whatever its outcome (the dashboard counts them).
    campaign_of: dict[int, int] = field(default_factory=dict)
    # E-mails to cardholders not loaded yet: (cardholder id, build from the cardholder).
    emails: list[tuple[int, Callable[[Cardholder], Notification]]] = field(default_factory=list)

    def decide(
        self,
        post: Post,
        outcome: str,
        *,
        reply: str | None = None,
        priority: int = ReplyPriority.OTHER,
    ) -> None:
        """Record the post's outcome and, with ``reply``, queue that answer (of the same kind)."""
        self.outcomes[post.pk] = outcome
        if reply is not None:
            self.reply(post, outcome, reply, priority)

    def reply(self, post: Post, kind: str, text: str, priority: int) -> None:
        self.replies.append(ReplyDraft(in_reply_to=post, kind=kind, text=text, priority=priority))


def posts_decide(*, post_ids: list[int], now: datetime) -> Counter[str]:
    """Decide the undecided posts among ``post_ids`` in one transaction; returns outcome counts.

    Raises nothing for bad input: every post, however odd, ends with one of the outcomes of
    DESIGN §3.2. Database errors propagate (the transaction rolls back and the caller retries).
    """
    with transaction.atomic():
        posts = list(
            Post.objects.select_for_update(skip_locked=True)
            .filter(pk__in=post_ids, outcome="")
            .only(*_POST_FIELDS)
            .order_by("id")
        )
        if not posts:
            return Counter()
        brands = dict(
            PlatformAccount.objects.filter(pk__in={p.account_id for p in posts}).values_list(
                "pk", "platform_user_id"
            )
        )
        batch = _Batch(posts=posts, now=now, brand_user_ids=brands)
        purchases, confirmations, links, confirm_orders = _classify(batch)
        if links:
            batch.outcomes.update(link_claims_apply(claims=links, now=now))
        _decide_purchases(batch, purchases, confirmations, confirm_orders)
        _write(batch)
    return Counter(batch.outcomes.values())


# --- Classification ---------------------------------------------------------------------------
def _classify(
    batch: _Batch,
) -> tuple[list[_Purchase], list[tuple[Post, set[str]]], list[LinkClaim], list[Order]]:
    """Settle the posts that need no cardholder data; return the purchases, confirmations, link
    claims (``#Link<CODE>``, DESIGN §6) and the orders the confirmations may refer to.

    A post is a confirmation only when one of its hashtags is ``#<prefix><CODE>`` for an order of
    the post's author on its platform (pending, or expired for the "too late" answer), with that
    order's own campaign prefix: any other hashtag that merely looks like one (another merchant's
    prefix cut from a purchase hashtag, ``#ConfirmOrder``, a prefix ``Link2``…) goes on to linking
    and purchase matching, so no merchant's prefix can swallow others' posts."""
    platforms = {p.platform for p in batch.posts}
    decided_roots = set(
        Post.objects.filter(platform__in=platforms, root_id__in={p.root_id for p in batch.posts})
        .exclude(outcome="")
        .values_list("platform", "root_id")
    )
    keys = {hashtag_key(tag) for p in batch.posts for tag in [*p.hashtags, *p.quoted_hashtags]}
    campaigns: dict[tuple[str, str], list[Campaign]] = defaultdict(list)
    for campaign in Campaign.objects.filter(
        platform__in=platforms, hashtag_key__in=keys
    ).select_related("product"):
        campaigns[(campaign.platform, campaign.hashtag_key)].append(campaign)
    prefixes = _confirm_prefixes(platforms, batch.now)
    candidates = {
        p.pk: _codes([hashtag_key(tag) for tag in p.hashtags], prefixes.get(p.platform, ()))
        for p in batch.posts
    }
    confirm_orders = _orders_for_confirmation(
        [(p, c) for p in batch.posts if (c := candidates[p.pk])]
    )

    purchases: list[_Purchase] = []
    confirmations: list[tuple[Post, set[str]]] = []
    links: list[LinkClaim] = []
    for post in batch.posts:
        root = (post.platform, post.root_id)
        if not post.author_id.strip():
            # Nobody to link, answer or charge: never "not linked" (issue 10, item 5).
            batch.decide(post, PostOutcome.MALFORMED)
        elif post.author_id == batch.brand_user_ids[post.account_id]:
            batch.decide(post, PostOutcome.IGNORED_OWN)
        elif post.kind == PostKind.REPOST:
            batch.decide(post, PostOutcome.IGNORED_REPOST)
        elif root in decided_roots:
            batch.decide(post, PostOutcome.IGNORED_EDIT)
        else:
            post_keys = [hashtag_key(tag) for tag in post.hashtags]
            codes = _codes_of_own_orders(post, post_keys, candidates[post.pk], confirm_orders)
            matched = _campaign_for(post, post_keys, campaigns)
            link_code = link_code_of(post_keys)
            if codes:
                confirmations.append((post, codes))
            elif matched is None and link_code is not None:
                # A campaign hashtag that happens to look like #Link<CODE> stays a purchase.
                links.append(
                    LinkClaim(
                        key=post.pk,
                        code=link_code,
                        platform=post.platform,
                        author_id=post.author_id,
                        author_handle=post.author_handle,
                        posted_at=post.posted_at,
                    )
                )
            elif matched is not None:
                purchases.append(_Purchase(post=post, campaign=matched))
                batch.campaign_of[post.pk] = matched.pk
            elif _campaign_for(post, [hashtag_key(t) for t in post.quoted_hashtags], campaigns):
                # The purchase hashtag is only in what this post quotes.
                batch.decide(post, PostOutcome.IGNORED_REPOST)
            else:
                batch.decide(post, PostOutcome.NO_CAMPAIGN)
        decided_roots.add(root)  # later edits of this post in the batch are edits
    return purchases, confirmations, links, confirm_orders


def _confirm_prefixes(platforms: set[str], now: datetime) -> dict[str, tuple[str, ...]]:
    """Matching keys of the confirmation prefixes in use (recent campaigns), per platform."""
    found: dict[str, set[str]] = defaultdict(set)
    for platform, prefix in (
        Campaign.objects.filter(platform__in=platforms, ends_at__gte=now - timedelta(days=1))
        .values_list("platform", "confirm_prefix")
        .distinct()
    ):
        found[platform].add(hashtag_key(prefix))
    return {platform: tuple(keys) for platform, keys in found.items()}


def _codes(post_keys: list[str], prefixes: tuple[str, ...]) -> set[str]:
    """Candidate codes written as ``#<prefix><CODE>`` (upper-cased for lookup), only those made
    of the codes' alphabet: ``#ConfirmOrder`` holds none."""
    return {
        code
        for key in post_keys
        for prefix in prefixes
        if key.startswith(prefix) and len(key) == len(prefix) + CODE_LENGTH
        for code in [key[len(prefix) :].upper()]
        if all(char in CONFIRMATION_ALPHABET for char in code)
    }


def _codes_of_own_orders(
    post: Post, post_keys: list[str], codes: set[str], orders: list[Order]
) -> set[str]:
    """The ``codes`` for which ``orders`` hold one of the post's author on its platform, written
    with that order's campaign prefix."""
    if not codes:
        return set()
    keys = set(post_keys)
    return {
        o.confirmation_code
        for o in orders
        if o.confirmation_code in codes
        and o.author_id == post.author_id
        and o.platform == post.platform
        and hashtag_key(o.campaign.confirm_prefix + o.confirmation_code) in keys
    }


def _campaign_for(
    post: Post, post_keys: list[str], campaigns: dict[tuple[str, str], list[Campaign]]
) -> Campaign | None:
    """The campaign of the post's first purchase hashtag: the one running when it was posted,
    else the latest to start (to answer that it is closed)."""
    for key in post_keys:
        candidates = campaigns.get((post.platform, key))
        if candidates:
            running = [c for c in candidates if c.starts_at <= post.posted_at < c.ends_at]
            return (running or sorted(candidates, key=lambda c: c.starts_at))[-1]
    return None


# --- Purchases and confirmations --------------------------------------------------------------
def _decide_purchases(
    batch: _Batch,
    purchases: list[_Purchase],
    confirmations: list[tuple[Post, set[str]]],
    confirm_orders: list[Order],
) -> None:
    identities = (
        {
            (i.platform, i.platform_user_id): i
            for i in SocialIdentity.objects.filter(
                platform__in={p.post.platform for p in purchases},
                platform_user_id__in={p.post.author_id for p in purchases},
            ).only("platform", "platform_user_id", "cardholder_id", "linked_at")
        }
        if purchases
        else {}
    )
    eligible: list[_Eligible] = []
    for purchase in purchases:
        post, campaign = purchase.post, purchase.campaign
        identity = identities.get((post.platform, post.author_id))
        if identity is None:
            batch.decide(post, PostOutcome.NOT_LINKED)
        elif campaign.paused or not campaign.starts_at <= post.posted_at < campaign.ends_at:
            batch.decide(
                post,
                PostOutcome.CAMPAIGN_CLOSED,
                reply=messages.reply_closed(handle=post.author_handle, campaign=campaign),
            )
        else:
            eligible.append(_Eligible(post=post, campaign=campaign, identity=identity))

    # Lock order: controls, then campaigns (see the module docstring).
    cardholder_ids = sorted({p.identity.cardholder_id for p in eligible})
    controls = {
        c.cardholder_id: c
        for c in PurchaseControls.objects.select_for_update()
        .filter(cardholder_id__in=cardholder_ids)
        .order_by("cardholder_id")
    }
    campaign_ids = {p.campaign.pk for p in eligible} | {o.campaign_id for o in confirm_orders}
    locked = campaigns_lock(campaign_ids)
    _decide_confirmations(batch, confirmations, confirm_orders)
    _decide_eligible(batch, eligible, controls, locked)


def _decide_eligible(
    batch: _Batch,
    eligible: list[_Eligible],
    controls: dict[int, PurchaseControls],
    locked: dict[int, Campaign],
) -> None:
    now = batch.now
    cardholder_ids = set(controls)
    cards = {
        c.cardholder_id: c
        for c in Card.objects.filter(
            cardholder_id__in=cardholder_ids, is_default=True, removed_at__isnull=True
        ).only(*_CARD_FIELDS)
    }
    consenting = set(
        Consent.objects.filter(
            cardholder_id__in=cardholder_ids,
            withdrawn_at__isnull=True,
            terms_version=settings.HASHCART["TERMS_VERSION"],
        ).values_list("cardholder_id", flat=True)
    )
    held: Counter[tuple[int, int]] = Counter()
    pending: set[tuple[int, int]] = set()
    for cardholder_id, campaign_id, status in Order.objects.filter(
        cardholder_id__in=cardholder_ids,
        campaign_id__in={p.campaign.pk for p in eligible},
        status__in=STOCK_HOLDING_STATUSES,
    ).values_list("cardholder_id", "campaign_id", "status"):
        held[(cardholder_id, campaign_id)] += 1
        if status == OrderStatus.PENDING:
            pending.add((cardholder_id, campaign_id))
    # Spend caps count a rolling day of orders that hold or spent money.
    spent: dict[int, Decimal] = dict(
        Order.objects.filter(
            cardholder_id__in=[c for c, ctl in controls.items() if ctl.per_day_cap is not None],
            created_at__gte=now - timedelta(days=1),
            status__in=STOCK_HOLDING_STATUSES,
        )
        .values_list("cardholder_id")
        .annotate(total=Sum("total"))
        .values_list("cardholder_id", "total")
    )
    cooling = timedelta(hours=settings.HASHCART["COOLING_OFF_HOURS"])
    remaining = {pk: c.stock_total - c.stock_reserved for pk, c in locked.items()}
    reserved: Counter[int] = Counter()

    for purchase in eligible:
        post, identity = purchase.post, purchase.identity
        campaign = locked[purchase.campaign.pk]
        campaign.product = purchase.campaign.product
        cardholder_id = identity.cardholder_id
        key = (cardholder_id, campaign.pk)
        ctl, card = controls.get(cardholder_id), cards.get(cardholder_id)
        reason = _blocked_reason(
            post=post,
            campaign=campaign,
            consenting=cardholder_id in consenting,
            card=card,
            controls=ctl,
            linked_at=identity.linked_at,
            cooling=cooling,
        )
        if reason is None and key in pending:
            batch.decide(post, PostOutcome.DUPLICATE)
            continue
        if reason is None and held[key] >= campaign.per_buyer_limit:
            reason = "you already have the most units of this offer allowed per buyer."
        if (
            reason is None
            and ctl is not None
            and ctl.per_day_cap is not None
            and (spent.get(cardholder_id, Decimal(0)) + campaign.price > ctl.per_day_cap)
        ):
            reason = "this order would take you over your daily spending limit."
        if reason is not None or card is None:
            batch.decide(
                post,
                PostOutcome.BLOCKED,
                reply=messages.reply_blocked(handle=post.author_handle, campaign=campaign),
            )
            batch.emails.append(
                (
                    cardholder_id,
                    partial(
                        _blocked_email,
                        post_id=post.pk,
                        campaign=campaign,
                        reason=reason or "there is no card on file.",
                    ),
                )
            )
            continue
        if remaining[campaign.pk] <= 0:
            batch.decide(
                post,
                PostOutcome.SOLD_OUT,
                reply=messages.reply_sold_out(handle=post.author_handle, campaign=campaign),
            )
            continue
        remaining[campaign.pk] -= 1
        reserved[campaign.pk] += 1
        pending.add(key)
        held[key] += 1
        spent[cardholder_id] = spent.get(cardholder_id, Decimal(0)) + campaign.price
        batch.decide(post, PostOutcome.ORDER_CREATED)
        batch.new_orders.append(
            (
                Order(
                    merchant_id=campaign.merchant_id,
                    campaign=campaign,
                    cardholder_id=cardholder_id,
                    card=card,
                    purchase_post=post,
                    platform=post.platform,
                    author_id=post.author_id,
                    author_handle=post.author_handle,
                    unit_price=campaign.price,
                    total=campaign.price,
                    currency=campaign.currency,
                    product_name=campaign.product.name,
                    product_sku=campaign.product.sku,
                    hashtag=campaign.hashtag,
                    email_confirm_required=ctl is not None
                    and ctl.email_confirm_above is not None
                    and campaign.price > ctl.email_confirm_above,
                    ship_to={
                        "name": card.billing_name,
                        "line1": card.address_line1,
                        "line2": card.address_line2,
                        "city": card.city,
                        "state": card.state,
                        "postal_code": card.postal_code,
                        "country": card.country,
                    },
                ),
                post,
            )
        )
    for campaign_id, units in sorted(reserved.items()):
        # Under the row lock; the check constraint backs it should anything else slip.
        stock_reserve(campaign_id=campaign_id, units=units)


def _blocked_reason(
    *,
    post: Post,
    campaign: Campaign,
    consenting: bool,
    card: Card | None,
    controls: PurchaseControls | None,
    linked_at: datetime,
    cooling: timedelta,
) -> str | None:
    """Why this cardholder cannot buy now (told by e-mail only), or None."""
    if not consenting:
        return "you have not agreed to the current terms of buying by post."
    if card is None:
        return "there is no card on file."
    if not (card.address_line1 and card.city and card.state and card.postal_code):
        return "there is no complete billing address on file (it is also the shipping address)."
    if controls is None or controls.paused:
        return "buying by post is paused for your account."
    if post.posted_at < linked_at + cooling or post.posted_at < card.address_changed_at + cooling:
        hours = int(cooling.total_seconds() // 3600)
        return (
            f"your account was linked or your address changed less than {hours} hours "
            "ago; buying by post opens after that."
        )
    if controls.per_order_cap is not None and campaign.price > controls.per_order_cap:
        return "the price is above your per-order limit."
    return None


def _orders_for_confirmation(confirmations: list[tuple[Post, set[str]]]) -> list[Order]:
    """Orders a batch's candidate confirmations may refer to: the authors' pending ones with
    their codes, and their expired ones (to answer that the time has passed)."""
    if not confirmations:
        return []
    codes = {code for _, post_codes in confirmations for code in post_codes}
    authors = {post.author_id for post, _ in confirmations}
    return list(
        Order.objects.filter(
            confirmation_code__in=codes,
            author_id__in=authors,
            status__in=(OrderStatus.PENDING, OrderStatus.EXPIRED),
        )
        .select_related("campaign", "cardholder__user")
        .order_by("-id")
    )


def _decide_confirmations(
    batch: _Batch, confirmations: list[tuple[Post, set[str]]], orders: list[Order]
) -> None:
    """``confirmed`` only from the order's own author, with the campaign's prefix, posted at or
    before ``expires_at`` (the window is open while the reply is unsent); ``confirm_late`` after
    it (the order is expired now); ``confirm_unknown`` for anything else, including an order
    that another worker confirmed or cancelled while this batch ran."""
    by_code: dict[str, list[Order]] = defaultdict(list)
    for candidate in orders:
        by_code[candidate.confirmation_code].append(candidate)
    may_buy = orders_still_buyable(orders=orders)
    for post, codes in confirmations:
        mine = [
            o
            for code in codes
            for o in by_code.get(code, ())
            if o.author_id == post.author_id
            and o.platform == post.platform
            and hashtag_key(o.campaign.confirm_prefix + code)
            in {hashtag_key(tag) for tag in post.hashtags}
        ]
        order = next((o for o in mine if o.status == OrderStatus.PENDING), None)
        if order is not None and order.pk not in may_buy:
            order = None  # the buyer locked the account down: nothing to confirm, no answer
        on_time = order is not None and (
            order.expires_at is None or post.posted_at <= order.expires_at
        )
        if on_time and order is not None and _awaits_email(order, posted_at=post.posted_at):
            batch.decide(
                post,
                PostOutcome.CONFIRM_AWAITING_EMAIL,
                reply=messages.reply_confirm_email_pending(order=order),
                priority=ReplyPriority.RESULT,
            )
            continue
        confirmed = (
            order_confirm(order=order, now=batch.now, data={"post": post.post_id})
            if on_time and order is not None
            else None
        )
        if confirmed is not None:
            batch.decide(post, PostOutcome.CONFIRMED)
            batch.events.append(confirmed[0])
            batch.payments.append(confirmed[1])
            continue
        if order is not None and order.status == OrderStatus.PENDING:
            _expire(batch, order, reason="confirmation after the window")
        # "Too late" only for an order that did expire: one that another worker confirmed or
        # that was cancelled meanwhile (a lost race above) gets no public answer.
        expired = next((o for o in mine if o.status == OrderStatus.EXPIRED), None)
        if expired is not None:
            batch.decide(
                post,
                PostOutcome.CONFIRM_LATE,
                reply=messages.reply_confirm_late(
                    handle=post.author_handle, code=expired.confirmation_code
                ),
                priority=ReplyPriority.RESULT,
            )
        else:
            batch.decide(post, PostOutcome.CONFIRM_UNKNOWN)


def _awaits_email(order: Order, *, posted_at: datetime) -> bool:
    """For an order above the buyer's e-mail threshold, record its public confirmation; True if
    the private link was not clicked yet, so the order waits for it.

    The record is a conditional UPDATE, as is the click's (``order_email_confirm``): the row
    lock orders the two, so whichever comes second sees the other and confirms.
    """
    if not order.email_confirm_required:
        return False
    recorded = Order.objects.filter(
        pk=order.pk, status=OrderStatus.PENDING, email_confirmed_at__isnull=True
    ).update(post_confirmed_at=posted_at)
    if recorded:
        return True
    order.refresh_from_db()  # clicked meanwhile (or no longer pending): confirm or refuse now
    return False


def _expire(batch: _Batch, order: Order, *, reason: str) -> None:
    """Expire a pending order now (its campaign row is already locked) and release its unit."""
    released = order_release(
        order=order, transition="expire", now=batch.now, data={"reason": reason}
    )
    if released is not None:
        batch.events.append(released)
        batch.notifications.append(
            notification(
                key=f"expired:{order.pk}",
                cardholder=order.cardholder,
                kind="expired",
                order=order,
                message=messages.email_expired(order=order, cardholder=order.cardholder),
            )
        )


# --- Writing ----------------------------------------------------------------------------------
def _blocked_email(
    cardholder: Cardholder, *, post_id: int, campaign: Campaign, reason: str
) -> Notification:
    return notification(
        key=f"blocked:{post_id}",
        cardholder=cardholder,
        kind="blocked",
        message=messages.email_blocked(cardholder=cardholder, campaign=campaign, reason=reason),
    )


def _order_created_email(
    cardholder: Cardholder, *, order: Order, prefix: str, window_minutes: float
) -> Notification:
    return notification(
        key=f"order_created:{order.pk}",
        cardholder=cardholder,
        kind="order_created",
        order=order,
        message=messages.email_order_created(
            order=order, cardholder=cardholder, prefix=prefix, window_minutes=window_minutes
        ),
    )


def _write(batch: _Batch) -> None:
    now = batch.now
    window = settings.HASHCART["CONFIRMATION_WINDOW_MINUTES"]
    if batch.new_orders:
        codes = confirmation_codes_new(count=len(batch.new_orders))
        for (order, _), code in zip(batch.new_orders, codes, strict=True):
            order.confirmation_code = code
        Order.objects.bulk_create([order for order, _ in batch.new_orders])
        for order, post in batch.new_orders:
            prefix = order.campaign.confirm_prefix
            batch.events.append(
                event(
                    order=order,
                    kind="created",
                    now=now,
                    to_status=OrderStatus.PENDING,
                    data={"post": post.post_id},
                )
            )
            batch.reply(
                post,
                "confirmation_request",
                messages.reply_confirmation_request(
                    order=order, prefix=prefix, window_minutes=window
                ),
                ReplyPriority.CONFIRMATION_REQUEST,
            )
            batch.emails.append(
                (
                    order.cardholder_id,
                    partial(
                        _order_created_email,
                        order=order,
                        prefix=prefix,
                        window_minutes=window,
                    ),
                )
            )
    if batch.emails:
        cardholders = Cardholder.objects.select_related("user").in_bulk(
            {cardholder_id for cardholder_id, _ in batch.emails}
        )
        batch.notifications.extend(build(cardholders[cid]) for cid, build in batch.emails)
    OrderEvent.objects.bulk_create(batch.events, batch_size=1000)
    PaymentOperation.objects.bulk_create(batch.payments, ignore_conflicts=True)
    Notification.objects.bulk_create(batch.notifications, ignore_conflicts=True, batch_size=1000)
    replies_queue(drafts=batch.replies)
    # One UPDATE per outcome and campaign (a dozen at most) rather than a CASE over every row.
    by_outcome: dict[tuple[str, int | None], list[int]] = defaultdict(list)
    for post_id, outcome in batch.outcomes.items():
        by_outcome[(outcome, batch.campaign_of.get(post_id))].append(post_id)
    # ``decided_at`` is when the outcome is written, the last step before the commit (the batch's
    # rules used ``now``, read when it began): inbox-to-decision latency is measured with it.
    decided_at = timezone.now()
    for (outcome, campaign_id), ids in by_outcome.items():
        Post.objects.filter(pk__in=ids).update(
            outcome=outcome, decided_at=decided_at, campaign_id=campaign_id
        )
