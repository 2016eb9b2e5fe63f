"""Cards on file and the billing address, which is also the only shipping address (DESIGN §6).

A card comes from the gateway's vault as a token (``accounts.vault``); its number never reaches
these functions. Changing the address starts the cooling-off period (§8).
"""

from dataclasses import asdict, fields
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import ADDRESS_FIELDS, AccountEventKind, Card, Cardholder, PendingCard
from accounts.services.lockdown import Lockdown, cardholder_lock_down, controls_lock
from accounts.services.notify import account_email, account_event
from accounts.vault import VaultedCard
from core.exceptions import ApplicationError

# What a vault keeps of a card, as PendingCard and Card name it too.
VAULTED_FIELDS = tuple(field.name for field in fields(VaultedCard))


def _same_address(card: Card, address: dict[str, str]) -> bool:
    return all(getattr(card, name) == address.get(name, "") for name in ADDRESS_FIELDS)


def pending_card_store(
    *, cardholder: Cardholder, gateway: str, reference: str, card: VaultedCard, now: datetime
) -> PendingCard:
    """Keep a tokenised card until its address is entered; storing the same ``reference`` again
    (the provider's return page and its webhook) keeps the first."""
    pending, _ = PendingCard.objects.get_or_create(
        reference=reference,
        defaults={"cardholder": cardholder, "gateway": gateway, "created_at": now, **asdict(card)},
    )
    return pending


def pending_card_latest(cardholder: Cardholder) -> PendingCard | None:
    """The card waiting for its address, if any (the latest, within a day)."""
    return (
        cardholder.pending_cards.filter(
            used_at__isnull=True, created_at__gte=timezone.now() - timedelta(days=1)
        )
        .order_by("-id")
        .first()
    )


@transaction.atomic
def pending_card_save(
    *, cardholder: Cardholder, pending: PendingCard, address: dict[str, str], now: datetime
) -> Card:
    """Make the pending card the card on file, with ``address`` (``card_save``)."""
    used = PendingCard.objects.filter(pk=pending.pk, used_at__isnull=True).update(used_at=now)
    if not used:
        raise ApplicationError("That card was already saved.")
    return card_save(
        cardholder=cardholder,
        card=VaultedCard(**{name: getattr(pending, name) for name in VAULTED_FIELDS}),
        gateway=pending.gateway,
        address=address,
        now=now,
    )


def default_card(cardholder: Cardholder) -> Card | None:
    return cardholder.cards.filter(is_default=True, removed_at__isnull=True).first()


def address_on_file(cardholder: Cardholder) -> Card | None:
    """The card whose billing address is the cardholder's latest: the card for buying by post,
    else the latest card, even removed (a card replaced by removing it first). None without
    any card."""
    return default_card(cardholder) or cardholder.cards.order_by("-id").first()


@transaction.atomic
def card_save(
    *,
    cardholder: Cardholder,
    card: VaultedCard,
    gateway: str,
    address: dict[str, str],
    now: datetime,
) -> Card:
    """Make ``card`` the cardholder's card for buying by post, with its billing address.

    A previous default card stays on file, no longer default. The address counts as changed
    (cooling-off) only when it differs from the previous card's.
    """
    previous = default_card(cardholder)
    changed = previous is None or not _same_address(previous, address)
    if previous is not None:
        Card.objects.filter(pk=previous.pk).update(is_default=False)
    saved = Card.objects.create(
        cardholder=cardholder,
        gateway=gateway,
        **asdict(card),
        is_default=True,
        address_changed_at=now if changed or previous is None else previous.address_changed_at,
        **{name: address.get(name, "") for name in ADDRESS_FIELDS},
    )
    account_event(
        cardholder=cardholder,
        kind=AccountEventKind.CARD_ADDED,
        summary=f"Added {saved.brand} ending {saved.last4}",
        now=now,
    )
    account_email(
        cardholder=cardholder,
        subject="A card was added",
        body=(
            f"Your {saved.brand} card ending {saved.last4} is now the card for buying by post.\n\n"
            "Not you? Remove it on your settings page and change your password.\n"
        ),
    )
    if changed and previous is not None:
        _address_changed(cardholder=cardholder, card=saved, now=now)
    return saved


@transaction.atomic
def address_change(*, cardholder: Cardholder, address: dict[str, str], now: datetime) -> Card:
    """Change the billing (and shipping) address of the cardholder's card. Raises
    ``ApplicationError`` without a card on file."""
    card = default_card(cardholder)
    if card is None:
        raise ApplicationError("Add a card first: the address belongs to the card.")
    if _same_address(card, address):
        return card
    for name in ADDRESS_FIELDS:
        setattr(card, name, address.get(name, ""))
    card.address_changed_at = now
    card.save(update_fields=[*ADDRESS_FIELDS, "address_changed_at", "updated_at"])
    _address_changed(cardholder=cardholder, card=card, now=now)
    return card


def _address_changed(*, cardholder: Cardholder, card: Card, now: datetime) -> None:
    hours = settings.HASHCART["COOLING_OFF_HOURS"]
    account_event(
        cardholder=cardholder,
        kind=AccountEventKind.ADDRESS_CHANGED,
        summary=f"Address changed to {card.city}, {card.state} {card.postal_code}",
        now=now,
    )
    account_email(
        cardholder=cardholder,
        subject="Your address changed",
        body=(
            f"The billing and shipping address of your card ending {card.last4} changed to "
            f"{card.city}, {card.state} {card.postal_code}. For your protection, purchase posts "
            f"are accepted again after {hours} hours.\n\n"
            "Not you? Change your password and the address on your settings page.\n"
        ),
    )


@transaction.atomic
def card_remove(*, cardholder: Cardholder, card_id: int, now: datetime) -> None:
    """Take a card off file (it stays for past orders) and cancel, in this transaction, the
    pending and confirmed (not yet authorized) orders to be paid with it: the gateway is never
    asked to charge a removed card (``cardholder_lock_down``). Locks the purchase controls, then
    the card. Raises ``ApplicationError`` for a card that is not the cardholder's."""
    controls_lock(cardholder=cardholder)
    card = cardholder.cards.filter(pk=card_id, removed_at__isnull=True).first()
    if card is None:
        raise ApplicationError("No such card.")
    card.removed_at, card.is_default = now, False
    card.save(update_fields=["removed_at", "is_default", "updated_at"])
    account_event(
        cardholder=cardholder,
        kind=AccountEventKind.CARD_REMOVED,
        summary=f"Removed {card.brand} ending {card.last4}",
        now=now,
    )
    account_email(
        cardholder=cardholder,
        subject="A card was removed",
        body=f"Your {card.brand} card ending {card.last4} was removed. Buying by post needs a "
        "card: add one on the linking page.\n",
    )
    cardholder_lock_down(
        cardholder=cardholder, reason=Lockdown.CARD_REMOVED, now=now, card_id=card.pk
    )


def card_on_file_lock(*, card_id: int) -> bool:
    """Whether the card is still on file, with its row locked until the caller's transaction ends,
    so that a removal committing now (it cancels the card's orders in its own transaction) is
    waited for and seen. The lock is FOR NO KEY UPDATE: deciders inserting orders that reference
    the card are not held up."""
    on_file = Card.objects.select_for_update(no_key=True).filter(
        pk=card_id, removed_at__isnull=True
    )
    return bool(list(on_file.values_list("pk", flat=True)))
