"""Locking an account down stops its open orders (DESIGN §8; issue 10, item 13).

Pausing, unlinking an identity, removing a card and withdrawing consent each lock the
cardholder's purchase controls first (``controls_lock``: the cardholder's lock, taken before any
campaign, as the deciders take them), make their change, then hand the open orders it concerns
to ``HASHCART["CARDHOLDER_LOCKDOWN_HANDLER"]`` in the same transaction. Orders depend on
accounts, not the reverse (DESIGN §2), so the hand-off is a dotted path, as
``ORDER_PAID_HANDLER`` is for fulfillment.

While the controls row is locked no order can be created for the cardholder (deciders lock it
before they create one and read the card and consent after), so the orders the handler sees
are all there are.
"""

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from django.conf import settings
from django.utils.module_loading import import_string

from accounts.models import Cardholder, PurchaseControls
from accounts.selectors import BuyerLimits, buyer_limits


class Lockdown(StrEnum):
    """Why a cardholder's open orders are cancelled; the order e-mail says it in words."""

    PAUSED = "paused"
    UNLINKED = "unlinked"
    CARD_REMOVED = "card_removed"
    CONSENT_WITHDRAWN = "consent_withdrawn"


def controls_lock(*, cardholder: Cardholder) -> PurchaseControls:
    """The cardholder's purchase controls, locked for the caller's transaction (created with
    defaults if missing). Every change that must not interleave with a decision about this
    cardholder's posts starts here."""
    controls, _ = PurchaseControls.objects.select_for_update().get_or_create(cardholder=cardholder)
    return controls


def cardholder_lock_down(
    *,
    cardholder: Cardholder,
    reason: Lockdown,
    now: datetime,
    platform: str | None = None,
    author_id: str | None = None,
    card_id: int | None = None,
) -> int:
    """Cancel the cardholder's pending and confirmed (not yet authorized) orders through the
    lockdown handler, in the caller's transaction, which holds ``controls_lock``. Only the
    orders posted by ``platform``/``author_id``, or to be paid with ``card_id``, when given.
    Returns how many were cancelled."""
    handler = import_string(settings.HASHCART["CARDHOLDER_LOCKDOWN_HANDLER"])
    cancelled: int = handler(
        cardholder_id=cardholder.pk,
        reason=str(reason),
        now=now,
        platform=platform,
        author_id=author_id,
        card_id=card_id,
    )
    return cancelled


def controls_lock_many(*, cardholder_ids: Iterable[int]) -> dict[int, BuyerLimits]:
    """Lock the purchase controls of many cardholders at once, in cardholder order (so that two
    deciders locking overlapping sets cannot deadlock), for the caller's transaction; returns
    their limits by cardholder. A cardholder without controls is absent (and cannot buy). The
    deciders take these locks before any campaign's (DESIGN §5) and read the buyers' cards and
    consent after them (``accounts.selectors.buyer_snapshots``)."""
    return buyer_limits(cardholder_ids=cardholder_ids, lock=True)
