"""People: staff users, cardholders, their linked social identities, cards, consent and controls.

No card number is ever stored: a card on file is the payment gateway's token plus the brand,
last four digits and expiry that the gateway reports (DESIGN §6).
"""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from core.codes import LINK_CODE
from core.models import TimeStampedModel
from social.models import EXTERNAL_ID_MAX_LENGTH, HANDLE_MAX_LENGTH, Platform

# A card's token at the gateway; Stripe's joins two ids of up to 255 characters each.
CARD_TOKEN_MAX_LENGTH = 511


class User(AbstractUser):
    """A login. Merchant staff have ``merchant`` set and see only that merchant's rows."""

    merchant = models.ForeignKey(
        "catalog.Merchant",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="staff",
        help_text="Staff of this merchant see only its products, campaigns, orders and shipments.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("email"), condition=~Q(email=""), name="user_unique_email_ci"
            ),
        ]


class Cardholder(TimeStampedModel):
    """A cardholder who may buy by post once linked, carded, addressed and consenting."""

    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="cardholder")
    # The cardholder's customer at the payment provider (Stripe), once a card was set up there.
    stripe_customer_id = models.CharField(max_length=255, blank=True)  # Stripe: ids up to 255

    def __str__(self) -> str:
        return self.user.email or self.user.username


class SocialIdentity(models.Model):
    """A platform account linked to a cardholder, keyed by the platform's immutable user id.

    The handle is only the latest one seen: handles change, ids do not (DESIGN §3.1).
    """

    cardholder = models.ForeignKey(Cardholder, on_delete=models.CASCADE, related_name="identities")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    platform_user_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    handle = models.CharField(max_length=HANDLE_MAX_LENGTH)
    linked_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "social identities"
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "platform_user_id"], name="identity_unique_platform_user"
            ),
        ]

    def __str__(self) -> str:
        return f"@{self.handle} on {self.get_platform_display()}"


# The ship-to address a card holds, as the linking page edits it (its country is the card's).
ADDRESS_FIELDS = (
    "billing_name",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
)


class Card(TimeStampedModel):
    """A card on file: a gateway token and what may be shown of the card, plus its billing address.

    The billing address is also the only shipping address (DESIGN §6, §8).
    """

    cardholder = models.ForeignKey(Cardholder, on_delete=models.PROTECT, related_name="cards")
    gateway = models.CharField(max_length=32, default="sandbox")
    token = models.CharField(max_length=CARD_TOKEN_MAX_LENGTH)
    brand = models.CharField(max_length=32)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    billing_name = models.CharField(max_length=200)
    address_line1 = models.CharField(max_length=200)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100)
    state = models.CharField(max_length=2, help_text="US state or territory code.")
    postal_code = models.CharField(max_length=10, help_text="ZIP or ZIP+4.")
    country = models.CharField(max_length=2, default="US")
    address_changed_at = models.DateTimeField()
    is_default = models.BooleanField(default=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["gateway", "token"], name="card_unique_token"),
            models.UniqueConstraint(
                fields=["cardholder"],
                condition=Q(is_default=True, removed_at__isnull=True),
                name="card_one_default",
            ),
            models.CheckConstraint(condition=Q(last4__regex=r"^[0-9]{4}$"), name="card_last4"),
            models.CheckConstraint(
                condition=Q(exp_month__gte=1, exp_month__lte=12), name="card_exp_month"
            ),
            models.CheckConstraint(
                condition=Q(exp_year__gte=2000, exp_year__lte=2100), name="card_exp_year"
            ),
            models.CheckConstraint(
                condition=Q(postal_code__regex=r"^[0-9]{5}(-[0-9]{4})?$"), name="card_zip"
            ),
            models.CheckConstraint(condition=Q(country="US"), name="card_country_us"),
        ]
        # Operators find a cardholder's orders by the card's last four (``orders.search``).
        indexes = [models.Index(fields=["last4"], name="card_last4_idx")]

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4}"


class Consent(models.Model):
    """The cardholder's opt-in to buying by post, under one version of the terms."""

    cardholder = models.ForeignKey(Cardholder, on_delete=models.CASCADE, related_name="consents")
    terms_version = models.CharField(max_length=32)
    accepted_at = models.DateTimeField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(withdrawn_at__isnull=True)
                | Q(withdrawn_at__gte=models.F("accepted_at")),
                name="consent_withdrawn_after_accepted",
            ),
        ]

    def __str__(self) -> str:
        return f"terms {self.terms_version} accepted {self.accepted_at:%Y-%m-%d}"


class PurchaseControls(models.Model):
    """The cardholder's own limits on buying by post (DESIGN §6, §8). Empty caps mean no cap."""

    cardholder = models.OneToOneField(Cardholder, on_delete=models.CASCADE, related_name="controls")
    paused = models.BooleanField(default=False)
    paused_reason = models.CharField(max_length=200, blank=True)
    per_order_cap = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    per_day_cap = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    email_confirm_above = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Orders above this amount also need a click on a private e-mail link.",
    )

    class Meta:
        verbose_name_plural = "purchase controls"
        constraints = [
            models.CheckConstraint(
                condition=Q(per_order_cap__isnull=True) | Q(per_order_cap__gt=0),
                name="controls_per_order_cap_positive",
            ),
            models.CheckConstraint(
                condition=Q(per_day_cap__isnull=True) | Q(per_day_cap__gt=0),
                name="controls_per_day_cap_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"controls of {self.cardholder}"


# Link codes use the confirmation codes' alphabet (no 0/O, 1/I/L) and are one longer
# (``core.codes``).
LINK_CODE_ALPHABET = LINK_CODE.alphabet
LINK_CODE_LENGTH = LINK_CODE.length


class LinkCode(models.Model):
    """A one-time code that links the platform account posting ``#Link<CODE>`` to a cardholder.

    Valid until ``expires_at`` (by the post's time) and for one claim; the pipeline records who
    claimed it, or why the claim was refused, and the linking page shows the result.
    """

    cardholder = models.ForeignKey(Cardholder, on_delete=models.CASCADE, related_name="link_codes")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    code = models.CharField(max_length=LINK_CODE_LENGTH, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    identity = models.ForeignKey(
        SocialIdentity, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    refused_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(code__regex=r"^[2-9A-HJKMNP-Z]{6}$"), name="linkcode_alphabet"
            ),
        ]

    def __str__(self) -> str:
        return f"#Link{self.code}"


class AccountEventKind(models.TextChoices):
    IDENTITY_LINKED = "identity_linked", "Identity linked"
    IDENTITY_LINK_REFUSED = "identity_link_refused", "Identity link refused"
    IDENTITY_UNLINKED = "identity_unlinked", "Identity unlinked"
    CARD_ADDED = "card_added", "Card added"
    CARD_REMOVED = "card_removed", "Card removed"
    ADDRESS_CHANGED = "address_changed", "Address changed"
    CONSENT_GIVEN = "consent_given", "Consent given"
    CONSENT_WITHDRAWN = "consent_withdrawn", "Consent withdrawn"
    CONTROLS_CHANGED = "controls_changed", "Controls changed"
    PURCHASING_PAUSED = "purchasing_paused", "Purchasing paused"
    PURCHASING_RESUMED = "purchasing_resumed", "Purchasing resumed"


class AccountEvent(models.Model):
    """The cardholder's own audit log of their account (links, cards, address, controls).

    Orders have their own trail (``orders.OrderEvent``); the settings page shows both.
    """

    cardholder = models.ForeignKey(Cardholder, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField()
    kind = models.CharField(max_length=32, choices=AccountEventKind.choices)
    summary = models.CharField(max_length=200)
    actor_label = models.CharField(max_length=64, default="cardholder")

    class Meta:
        indexes = [models.Index(fields=["cardholder", "-id"], name="accountevent_holder_idx")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.summary}"


class PendingCard(models.Model):
    """A card the vault has tokenised, waiting for its billing address to become a ``Card``.

    ``reference`` is what the vault calls it (the Stripe SetupIntent id, or the sandbox token),
    so the return from the provider's page and its webhook store it once between them.
    """

    cardholder = models.ForeignKey(
        Cardholder, on_delete=models.CASCADE, related_name="pending_cards"
    )
    gateway = models.CharField(max_length=32)
    reference = models.CharField(max_length=255, unique=True)
    token = models.CharField(max_length=CARD_TOKEN_MAX_LENGTH)
    brand = models.CharField(max_length=32)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4} (pending)"


class OptionPreference(models.Model):
    """A cardholder's saved value for a product option (``Size`` = ``M``), set on the settings
    page: a purchase post that leaves that option out, or names a value of two options, gets
    this value when the offer has it (README, "Posting a purchase"). ``name_key`` is the name's
    ``social.hashtags.hashtag_key`` (one preference per option, whatever its case)."""

    cardholder = models.ForeignKey(
        Cardholder, on_delete=models.CASCADE, related_name="option_preferences"
    )
    name = models.CharField(max_length=50)
    name_key = models.CharField(max_length=50, editable=False)
    value = models.CharField(max_length=50)

    class Meta:
        ordering = ["cardholder", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["cardholder", "name_key"], name="option_preference_one_per_option"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"
