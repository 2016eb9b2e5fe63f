"""Writes about people: staff logins and cardholders created by ops, seeds and tests."""

from datetime import datetime

from allauth.account.models import EmailAddress
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from accounts.models import Card, Cardholder, Consent, PurchaseControls, SocialIdentity, User
from core.exceptions import ApplicationError

MERCHANT_STAFF_GROUP = "Merchant staff"
# What merchant staff may do in the back office; rows are further limited to their merchant.
MERCHANT_STAFF_PERMISSIONS = (
    ("catalog", "view_merchant"),
    ("catalog", "view_product"),
    ("catalog", "add_product"),
    ("catalog", "change_product"),
    ("catalog", "view_campaign"),
    ("catalog", "add_campaign"),
    ("catalog", "change_campaign"),
    ("orders", "view_order"),
    ("orders", "cancel_order"),
    ("orders", "refund_order"),
    ("orders", "view_dispute"),
    ("orders", "refund_dispute"),
    ("orders", "refund_dispute_on_return"),
    ("orders", "reject_dispute"),
    ("orders", "view_return"),
    ("orders", "approve_return"),
    ("orders", "receive_return"),
    ("orders", "view_orderevent"),
    ("orders", "view_alert"),
    ("orders", "view_alertsettings"),
    ("orders", "add_alertsettings"),
    ("orders", "change_alertsettings"),
    ("orders", "view_webhookendpoint"),
    ("orders", "add_webhookendpoint"),
    ("orders", "change_webhookendpoint"),
    ("orders", "delete_webhookendpoint"),
    ("orders", "view_webhookdelivery"),
    ("orders", "resend_webhookdelivery"),
    ("orders", "view_webhookattempt"),
    ("fulfillment", "view_shipment"),
    ("fulfillment", "ship_shipment"),
)


def merchant_staff_group_ensure() -> Group:
    """The "Merchant staff" group with exactly ``MERCHANT_STAFF_PERMISSIONS``."""
    group, _ = Group.objects.get_or_create(name=MERCHANT_STAFF_GROUP)
    perms = [
        Permission.objects.get(content_type__app_label=app, codename=codename)
        for app, codename in MERCHANT_STAFF_PERMISSIONS
    ]
    group.permissions.set(perms)
    return group


def _email_verified(user: User) -> None:
    """Logins made by ops, seeds and tests sign in by e-mail like everyone else: their address
    is recorded as verified (they did not come through sign-up)."""
    EmailAddress.objects.filter(user=user).exclude(email__iexact=user.email).delete()
    EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )


@transaction.atomic
def staff_user_upsert(*, username: str, email: str, password: str, merchant_id: int) -> User:
    """Create or update a staff login of ``merchant_id`` in the merchant staff group."""
    user, _ = User.objects.update_or_create(
        username=username,
        defaults={
            "email": email,
            "is_staff": True,
            "is_superuser": False,
            "merchant_id": merchant_id,
        },
    )
    user.set_password(password)
    user.save(update_fields=["password"])
    user.groups.add(merchant_staff_group_ensure())
    _email_verified(user)
    return user


@transaction.atomic
def operator_upsert(*, username: str, email: str, password: str) -> User:
    """Create or update an operator: a superuser who sees every merchant."""
    user, _ = User.objects.update_or_create(
        username=username,
        defaults={"email": email, "is_staff": True, "is_superuser": True, "merchant": None},
    )
    user.set_password(password)
    user.save(update_fields=["password"])
    _email_verified(user)
    return user


def cardholder_for_user(*, user: User) -> Cardholder:
    """The cardholder of a login, created with default purchase controls on first use."""
    cardholder, _ = Cardholder.objects.get_or_create(user=user)
    PurchaseControls.objects.get_or_create(cardholder=cardholder)
    return cardholder


@transaction.atomic
def cardholder_upsert(*, email: str, password: str) -> Cardholder:
    """Create or update a cardholder login with default purchase controls."""
    user, _ = User.objects.update_or_create(
        username=email, defaults={"email": email, "is_staff": False, "is_superuser": False}
    )
    user.set_password(password)
    user.save(update_fields=["password"])
    _email_verified(user)
    return cardholder_for_user(user=user)


def identity_link(
    *, cardholder: Cardholder, platform: str, platform_user_id: str, handle: str, now: datetime
) -> SocialIdentity:
    """Link a platform identity to ``cardholder``; relinking the same one only updates the handle.

    Raises ``ApplicationError`` if the identity belongs to another cardholder (one identity links
    to one cardholder, also a unique constraint on platform and platform user id).
    """
    identity, created = SocialIdentity.objects.get_or_create(
        platform=platform,
        platform_user_id=platform_user_id,
        defaults={"cardholder": cardholder, "handle": handle, "linked_at": now},
    )
    if identity.cardholder_id != cardholder.pk:
        raise ApplicationError("This identity is linked to another cardholder.")
    if not created and identity.handle != handle:
        identity.handle = handle
        identity.save(update_fields=["handle"])
    return identity


def consent_record(*, cardholder: Cardholder, terms_version: str, now: datetime) -> Consent:
    """Record consent to ``terms_version`` unless an unwithdrawn one exists already."""
    consent = cardholder.consents.filter(
        terms_version=terms_version, withdrawn_at__isnull=True
    ).first()
    return consent or Consent.objects.create(
        cardholder=cardholder, terms_version=terms_version, accepted_at=now
    )


def card_add(
    *,
    cardholder: Cardholder,
    gateway: str,
    token: str,
    brand: str,
    last4: str,
    exp_month: int,
    exp_year: int,
    address: dict[str, str],
    now: datetime,
) -> Card:
    """Store a card the gateway has tokenised (never its number) as the default card.

    Adding a token already on file returns that card unchanged, so its address-change time (and
    the cooling-off that follows it) is not restarted.
    """
    card, _ = Card.objects.get_or_create(
        gateway=gateway,
        token=token,
        defaults={
            "cardholder": cardholder,
            "brand": brand,
            "last4": last4,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "is_default": True,
            "address_changed_at": now,
            **address,
        },
    )
    return card
