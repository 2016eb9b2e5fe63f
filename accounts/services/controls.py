"""The cardholder's own controls: consent, pause, caps, confirm-by-e-mail, unlinking (§6, §8).

Pausing, withdrawing consent and unlinking lock the account down (``accounts.services.lockdown``).
"""

from datetime import datetime
from decimal import Decimal

from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.db import transaction

from accounts.models import AccountEventKind, Cardholder, Consent, PurchaseControls
from accounts.services.lockdown import Lockdown, cardholder_lock_down, controls_lock
from accounts.services.notify import account_email, account_event
from accounts.services.people import consent_record
from core.exceptions import ApplicationError


@transaction.atomic
def consent_give(*, cardholder: Cardholder, now: datetime) -> Consent:
    """Record consent to the current terms of buying by post."""
    version = settings.HASHCART["TERMS_VERSION"]
    had = cardholder.consents.filter(terms_version=version, withdrawn_at__isnull=True).exists()
    consent = consent_record(cardholder=cardholder, terms_version=version, now=now)
    if not had:
        account_event(
            cardholder=cardholder,
            kind=AccountEventKind.CONSENT_GIVEN,
            summary=f"Agreed to the terms of buying by post (version {version})",
            now=now,
        )
    return consent


@transaction.atomic
def controls_update(
    *,
    cardholder: Cardholder,
    per_order_cap: Decimal | None,
    per_day_cap: Decimal | None,
    email_confirm_above: Decimal | None,
    now: datetime,
) -> PurchaseControls:
    """Set the caps and the confirm-by-e-mail threshold (None: no cap, no threshold). Raises
    ``ApplicationError`` for a cap not above zero, a negative threshold, or a per-order cap
    above the per-day cap (no order could use it)."""
    for value in (per_order_cap, per_day_cap):
        if value is not None and value <= 0:
            raise ApplicationError("A cap must be more than zero, or empty for no cap.")
    if per_order_cap is not None and per_day_cap is not None and per_order_cap > per_day_cap:
        raise ApplicationError("The most per order cannot be more than the most per day.")
    if email_confirm_above is not None and email_confirm_above < 0:
        raise ApplicationError("The e-mail threshold cannot be negative.")
    controls, _ = PurchaseControls.objects.select_for_update().get_or_create(cardholder=cardholder)
    controls.per_order_cap = per_order_cap
    controls.per_day_cap = per_day_cap
    controls.email_confirm_above = email_confirm_above
    controls.save(update_fields=["per_order_cap", "per_day_cap", "email_confirm_above"])

    def money(value: Decimal | None) -> str:
        return "none" if value is None else f"${value:,.2f}"

    account_event(
        cardholder=cardholder,
        kind=AccountEventKind.CONTROLS_CHANGED,
        summary=(
            f"Caps: per order {money(per_order_cap)}, per day {money(per_day_cap)}; "
            f"e-mail confirmation above {money(email_confirm_above)}"
        ),
        now=now,
    )
    return controls


PAUSED_BY_YOU = "paused by you"


@transaction.atomic
def purchasing_set_paused(
    *, cardholder: Cardholder, paused: bool, now: datetime, why: str = PAUSED_BY_YOU
) -> None:
    """Pause or resume buying by post; purchase posts are ``blocked`` while paused.

    Pausing also cancels the cardholder's pending and confirmed (not yet authorized) orders in
    this transaction (``cardholder_lock_down``), even when buying was paused already; ``why``
    is shown on the settings page and in those orders' e-mails. Locks the purchase controls.
    """
    controls = controls_lock(cardholder=cardholder)
    if controls.paused != paused:
        controls.paused = paused
        controls.paused_reason = why[:200] if paused else ""
        controls.save(update_fields=["paused", "paused_reason"])
        account_event(
            cardholder=cardholder,
            kind=AccountEventKind.PURCHASING_PAUSED
            if paused
            else AccountEventKind.PURCHASING_RESUMED,
            summary=_paused_summary(paused=paused, why=why),
            now=now,
        )
    if paused:
        cardholder_lock_down(cardholder=cardholder, reason=Lockdown.PAUSED, now=now)


def _paused_summary(*, paused: bool, why: str) -> str:
    if not paused:
        return "Buying by post resumed"
    return "Buying by post paused" if why == PAUSED_BY_YOU else f"Buying by post paused ({why})"


@transaction.atomic
def consent_withdraw(*, cardholder: Cardholder, now: datetime) -> None:
    """Withdraw consent to buying by post (every version still in force): purchase posts are
    ``blocked`` until the cardholder agrees again, and the pending and confirmed (not yet
    authorized) orders are cancelled in this transaction. Locks the purchase controls; doing it
    again changes nothing."""
    controls_lock(cardholder=cardholder)
    withdrawn = cardholder.consents.filter(withdrawn_at__isnull=True).update(withdrawn_at=now)
    if withdrawn:
        account_event(
            cardholder=cardholder,
            kind=AccountEventKind.CONSENT_WITHDRAWN,
            summary="Withdrew consent to buying by post",
            now=now,
        )
        account_email(
            cardholder=cardholder,
            subject="You withdrew your consent to buying by post",
            body=(
                "Posts from your linked accounts no longer buy anything, and your orders that "
                "were not yet charged are cancelled. To buy by post again, agree to the terms "
                "on the linking page.\n"
            ),
        )
    cardholder_lock_down(cardholder=cardholder, reason=Lockdown.CONSENT_WITHDRAWN, now=now)


@transaction.atomic
def identity_unlink(*, cardholder: Cardholder, identity_id: int, now: datetime) -> None:
    """Unlink one of the cardholder's identities; its posts no longer buy anything, and the
    pending and confirmed (not yet authorized) orders it posted are cancelled in this
    transaction. Locks the purchase controls; raises ``ApplicationError`` for an identity that
    is not the cardholder's."""
    controls_lock(cardholder=cardholder)
    identity = cardholder.identities.filter(pk=identity_id).first()
    if identity is None:
        raise ApplicationError("No such linked account.")
    label = f"@{identity.handle} ({identity.get_platform_display()})"
    if identity.platform == "x":
        # allauth's record of the X connection goes too, or connecting again (by this
        # cardholder or, later, by someone else) would find it and link nothing.
        SocialAccount.objects.filter(
            provider="twitter_oauth2", uid=identity.platform_user_id
        ).delete()
    platform, author_id = identity.platform, identity.platform_user_id
    identity.delete()
    account_event(
        cardholder=cardholder,
        kind=AccountEventKind.IDENTITY_UNLINKED,
        summary=f"Unlinked {label}",
        now=now,
    )
    account_email(
        cardholder=cardholder,
        subject=f"{label} was unlinked",
        body=f"{label} is no longer linked to your Hashcart account; its posts buy nothing.\n",
    )
    cardholder_lock_down(
        cardholder=cardholder,
        reason=Lockdown.UNLINKED,
        now=now,
        platform=platform,
        author_id=author_id,
    )
