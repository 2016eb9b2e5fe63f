"""Reads for the linking and settings pages."""

from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import QuerySet

from accounts.models import AccountEvent, Card, Cardholder, LinkCode, SocialIdentity
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
