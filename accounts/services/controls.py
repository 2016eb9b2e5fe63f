"""The cardholder's own controls: consent, pause, caps, confirm-by-e-mail, unlinking (§6, §8)."""

from datetime import datetime
from decimal import Decimal

from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.db import transaction

from accounts.models import AccountEventKind, Cardholder, Consent, PurchaseControls
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
    """Set the caps and the confirm-by-e-mail threshold (None: no cap, no threshold)."""
    for value in (per_order_cap, per_day_cap):
        if value is not None and value <= 0:
            raise ApplicationError("A cap must be more than zero, or empty for no cap.")
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


@transaction.atomic
def purchasing_set_paused(*, cardholder: Cardholder, paused: bool, now: datetime) -> None:
    """Pause or resume buying by post; purchase posts are ``blocked`` while paused."""
    controls, _ = PurchaseControls.objects.select_for_update().get_or_create(cardholder=cardholder)
    if controls.paused == paused:
        return
    controls.paused = paused
    controls.paused_reason = "paused by you" if paused else ""
    controls.save(update_fields=["paused", "paused_reason"])
    account_event(
        cardholder=cardholder,
        kind=AccountEventKind.PURCHASING_PAUSED if paused else AccountEventKind.PURCHASING_RESUMED,
        summary="Buying by post paused" if paused else "Buying by post resumed",
        now=now,
    )


@transaction.atomic
def identity_unlink(*, cardholder: Cardholder, identity_id: int, now: datetime) -> None:
    """Unlink one of the cardholder's identities; its posts no longer buy anything."""
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
