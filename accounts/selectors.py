"""Reads of the accounts app: the linking and settings pages, and what deciding a purchase post
needs of its buyer (``buyers_for_identities``, ``buyer_snapshots``, ``purchase_blocked_reason``)."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Exists, F, FilteredRelation, OuterRef, Q, QuerySet
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts.models import (
    ADDRESS_FIELDS,
    AccountEvent,
    Card,
    Cardholder,
    Consent,
    LinkCode,
    OptionPreference,
    PurchaseControls,
    SocialIdentity,
)
from core.lookups import AnyOf
from core.when import moment_words
from social.models import PlatformAccount


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    url_name: str
    done: bool


@dataclass
class LinkProgress:
    """Where a cardholder stands in the four steps of opting in (DESIGN §6)."""

    identities: list[SocialIdentity]
    card: Card | None
    card_pending: bool
    consented: bool
    steps: list[Step] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.steps = [
            Step("identity", "Connect a social account", "accounts:link_identity", self.linked),
            Step("card", "Add a card", "accounts:link_card", self.card_pending or bool(self.card)),
            Step(
                "address", "Billing and shipping address", "accounts:link_address", bool(self.card)
            ),
            Step("consent", "Agree to the terms", "accounts:link_consent", self.consented),
        ]

    @property
    def linked(self) -> bool:
        return bool(self.identities)

    @property
    def next_step(self) -> Step | None:
        return next((step for step in self.steps if not step.done), None)


def buying_opens_at(*, progress: LinkProgress, now: datetime) -> datetime | None:
    """When the cooling-off (``COOLING_OFF_HOURS`` after linking an account or changing the
    address, DESIGN §8) lets a purchase post through: for each linked account the later of its
    link and the card's address change, plus the cooling-off; the earliest of those. None when
    buying is open already, or when no account and card are there to wait for."""
    if progress.card is None or not progress.identities:
        return None
    cooling = timedelta(hours=settings.HASHCART["COOLING_OFF_HOURS"])
    changed = progress.card.address_changed_at
    opens = min(max(i.linked_at, changed) for i in progress.identities) + cooling
    return opens if opens > now else None


def link_progress(*, cardholder: Cardholder, card_pending: bool) -> LinkProgress:
    return LinkProgress(
        identities=list(cardholder.identities.order_by("linked_at")),
        card=cardholder.cards.filter(is_default=True, removed_at__isnull=True).first(),
        card_pending=card_pending,
        consented=cardholder.consents.filter(
            terms_version=settings.HASHCART["TERMS_VERSION"], withdrawn_at__isnull=True
        ).exists(),
    )


def brand_account(*, platform: str) -> PlatformAccount | None:
    """The brand account that link-code posts on ``platform`` are addressed to."""
    return PlatformAccount.objects.filter(platform=platform, enabled=True).order_by("id").first()


def link_platforms() -> list[str]:
    """Platforms with an enabled brand account, where a link code can be posted."""
    return sorted(
        set(PlatformAccount.objects.filter(enabled=True).values_list("platform", flat=True))
    )


def link_code_state(code: LinkCode) -> tuple[str, str]:
    """``(state, message)`` of a link code for the page: waiting, linked, refused or expired."""
    from django.utils import timezone

    if code.claimed_at is not None and code.identity is not None:
        return "linked", f"Linked @{code.identity.handle}."
    if code.refused_reason:
        return "refused", code.refused_reason
    if code.expires_at <= timezone.now():
        return "expired", "This code has expired: get a new one."
    return "waiting", "Waiting for your post…"


def account_events(*, cardholder: Cardholder, limit: int = 50) -> QuerySet[AccountEvent]:
    return cardholder.events.order_by("-id")[:limit]


# --- What deciding a purchase post needs (read by orders, DESIGN §3.2, §8) ---------------------
@dataclass(frozen=True, slots=True)
class Buyer:
    """The cardholder behind a social identity, and when the identity was linked."""

    cardholder_id: int
    linked_at: datetime


@dataclass(frozen=True, slots=True)
class BuyerLimits:
    """The cardholder's purchase controls (``buyer_limits``, or locked with
    ``accounts.services.controls_lock_many``)."""

    paused: bool
    per_order_cap: Decimal | None
    per_day_cap: Decimal | None
    email_confirm_above: Decimal | None


_LIMIT_FIELDS = ("cardholder_id", "paused", "per_order_cap", "per_day_cap", "email_confirm_above")


def buyer_limits(*, cardholder_ids: Iterable[int], lock: bool = False) -> dict[int, BuyerLimits]:
    """The purchase controls of many cardholders, by cardholder, in one query; a cardholder
    without controls is absent (and cannot buy). Unlocked, it is the committed state of the
    moment, enough for a decision that creates nothing; ``lock=True`` is for
    ``accounts.services.controls_lock_many`` alone (the lock order is its contract)."""
    ids = sorted(set(cardholder_ids))
    if not ids:
        return {}
    rows = PurchaseControls.objects.filter(AnyOf(F("cardholder_id"), ids))
    if lock:
        rows = rows.select_for_update().order_by("cardholder_id")
    return {
        pk: BuyerLimits(
            paused=paused,
            per_order_cap=per_order_cap,
            per_day_cap=per_day_cap,
            email_confirm_above=email_confirm_above,
        )
        for pk, paused, per_order_cap, per_day_cap, email_confirm_above in rows.values_list(
            *_LIMIT_FIELDS
        )
    }


@dataclass(frozen=True, slots=True)
class BuyerCard:
    """The default card on file: its id and its billing address (the shipping address)."""

    card_id: int
    billing_name: str
    address_line1: str
    address_line2: str
    city: str
    state: str
    postal_code: str
    country: str
    address_changed_at: datetime

    @property
    def address_complete(self) -> bool:
        return bool(self.address_line1 and self.city and self.state and self.postal_code)

    def ship_to(self) -> dict[str, str]:
        return {
            "name": self.billing_name,
            "line1": self.address_line1,
            "line2": self.address_line2,
            "city": self.city,
            "state": self.state,
            "postal_code": self.postal_code,
            "country": self.country,
        }


@dataclass(frozen=True, slots=True)
class BuyerSnapshot:
    """What may change while a buyer's controls are unlocked: consent to the current terms and
    the default card. Read after ``controls_lock_many`` (DESIGN §8)."""

    consenting: bool
    card: BuyerCard | None


_CARD_FIELDS = (*ADDRESS_FIELDS, "country", "address_changed_at")


def buyers_for_identities(*, identities: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Buyer]:
    """The linked ones among ``(platform, platform user id)`` pairs, in one query."""
    wanted = set(identities)
    if not wanted:
        return {}
    rows = SocialIdentity.objects.filter(
        AnyOf(F("platform_user_id"), [user_id for _, user_id in wanted]),
        platform__in={platform for platform, _ in wanted},
    ).values_list("platform", "platform_user_id", "cardholder_id", "linked_at")
    return {
        (platform, user_id): Buyer(cardholder_id=cardholder_id, linked_at=linked_at)
        for platform, user_id, cardholder_id, linked_at in rows
        if (platform, user_id) in wanted
    }


def buyer_snapshots(*, cardholder_ids: Iterable[int]) -> dict[int, BuyerSnapshot]:
    """Consent to the current terms and the default card of each cardholder, in one query.
    Call under the cardholders' controls locks, so that a lockdown cannot interleave."""
    ids = set(cardholder_ids)
    if not ids:
        return {}
    card = [f"default_card__{name}" for name in _CARD_FIELDS]
    rows = (
        Cardholder.objects.filter(AnyOf(F("pk"), ids))
        .alias(
            # The ids again in the join and the subquery, so that both use their index (the
            # planner otherwise scans every card and consent).
            default_card=FilteredRelation(
                "cards",
                condition=Q(
                    AnyOf(F("cards__cardholder_id"), ids),
                    cards__is_default=True,
                    cards__removed_at__isnull=True,
                ),
            )
        )
        .annotate(
            consenting=Exists(
                Consent.objects.filter(
                    AnyOf(F("cardholder_id"), ids),
                    cardholder=OuterRef("pk"),
                    withdrawn_at__isnull=True,
                    terms_version=settings.HASHCART["TERMS_VERSION"],
                )
            )
        )
        .values_list("pk", "consenting", "default_card__id", *card)
    )
    return {
        pk: BuyerSnapshot(
            consenting=consenting,
            card=None if card_id is None else BuyerCard(card_id, *fields),
        )
        for pk, consenting, card_id, *fields in rows
    }


def purchase_blocked_reason(
    *,
    posted_at: datetime,
    total: Decimal,
    buyer: Buyer,
    snapshot: BuyerSnapshot | None,
    limits: BuyerLimits | None,
    cooling: timedelta,
) -> str | None:
    """Why this cardholder cannot buy, by a post at ``posted_at``, an order of ``total`` (what
    the card would be charged, sales tax included: DESIGN §3.8), or None. The reason is told by
    e-mail only (DESIGN §8)."""
    card = snapshot.card if snapshot is not None else None
    if snapshot is None or not snapshot.consenting:
        return "you have not agreed to the current terms of buying by post."
    if card is None:
        return "there is no card on file."
    if not card.address_complete:
        return "there is no complete billing address on file (it is also the shipping address)."
    if limits is None or limits.paused:
        return "buying by post is paused for your account."
    if posted_at < buyer.linked_at + cooling or posted_at < card.address_changed_at + cooling:
        hours = int(cooling.total_seconds() // 3600)
        opens = moment_words(max(buyer.linked_at, card.address_changed_at) + cooling)
        return (
            f"your account was linked or your address changed less than {hours} hours "
            f"ago; buying by post opens on {opens}."
        )
    if limits.per_order_cap is not None and total > limits.per_order_cap:
        return "the total with tax is above your per-order limit."
    return None


def cardholders_with_users(*, cardholder_ids: Iterable[int]) -> dict[int, Cardholder]:
    """Cardholders with their logins (for e-mails), by id."""
    return Cardholder.objects.select_related("user").in_bulk(set(cardholder_ids))


def purchasing_paused(*, cardholder_id: int) -> tuple[bool, str]:
    """Whether the cardholder's buying is paused now, and the reason they were told."""
    row = (
        PurchaseControls.objects.filter(cardholder_id=cardholder_id)
        .values_list("paused", "paused_reason")
        .first()
    )
    return row or (False, "")


@dataclass(frozen=True)
class BuyingStanding:
    """What of these cardholders' standing lets an open order go on (DESIGN §8): which of their
    identities still link to them, who may buy by post (not paused, consent not withdrawn), and
    which of the cards asked about are still on file."""

    identities: set[tuple[int, str, str]]  # (cardholder id, platform, platform user id)
    may_buy: set[int]
    cards_on_file: set[int]


def buying_standing(*, cardholder_ids: set[int], card_ids: set[int]) -> BuyingStanding:
    """The standing of these cardholders and cards now, in four queries whatever their number."""
    identities = set(
        SocialIdentity.objects.filter(cardholder_id__in=cardholder_ids).values_list(
            "cardholder_id", "platform", "platform_user_id"
        )
    )
    unpaused = set(
        PurchaseControls.objects.filter(cardholder_id__in=cardholder_ids, paused=False).values_list(
            "cardholder_id", flat=True
        )
    )
    consenting = set(
        Consent.objects.filter(
            cardholder_id__in=cardholder_ids, withdrawn_at__isnull=True
        ).values_list("cardholder_id", flat=True)
    )
    cards = set(
        Card.objects.filter(pk__in=card_ids, removed_at__isnull=True).values_list("pk", flat=True)
    )
    return BuyingStanding(identities=identities, may_buy=unpaused & consenting, cards_on_file=cards)


def option_preferences(*, cardholder_ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """Each cardholder's saved option values (``Size`` -> ``M``), by cardholder id; those
    without any are left out."""
    ids = set(cardholder_ids)
    found: dict[int, dict[str, str]] = {}
    if not ids:
        return found
    rows = OptionPreference.objects.filter(cardholder_id__in=ids).values_list(
        "cardholder_id", "name", "value"
    )
    for cardholder_id, name, value in rows:
        found.setdefault(cardholder_id, {})[name] = value
    return found


def campaign_link_mark(hashtag: str) -> str:
    """The mark an invitation's link carries next to ``?campaign=<hashtag>``: the opt-in page
    names the offer only when the mark is ours, so nobody can make our page say "you came to
    buy #Anything" with a crafted link. Eight hex digits of an HMAC with the site's secret."""
    return salted_hmac("hashcart.campaign-link", hashtag).hexdigest()[:8]


def campaign_link_marked(hashtag: str, mark: str) -> bool:
    """Whether ``mark`` is ``campaign_link_mark(hashtag)`` (in constant time)."""
    return constant_time_compare(campaign_link_mark(hashtag), mark)
