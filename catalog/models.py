"""Merchants, their products, and the hashtag campaigns that put products on offer (DESIGN §3)."""

from datetime import time
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q

from catalog.validators import validate_time_zone
from core.models import TimeStampedModel
from social.models import Platform


class Merchant(TimeStampedModel):
    """A retailer partnered with the card issuer. Its staff see only its own rows.

    The legal name, address and tax id are printed on its receipts (DESIGN §3.8); a receipt
    keeps a copy, so editing them changes later receipts only. A merchant onboarded before
    receipts has them blank: its receipts then show ``name`` and no address until an operator
    fills them in.
    """

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    legal_name = models.CharField(
        max_length=200, blank=True, help_text="On receipts; the display name when blank."
    )
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=2, blank=True, help_text="US state or territory code.")
    postal_code = models.CharField(max_length=10, blank=True, help_text="ZIP or ZIP+4.")
    country = models.CharField(max_length=2, default="US")
    tax_id = models.CharField(
        "tax id", max_length=32, blank=True, help_text="Printed on receipts when given."
    )
    # Validated, not choices: choices would freeze the tz database of the day into a migration.
    time_zone = models.CharField(
        max_length=64, validators=[validate_time_zone], default="America/New_York"
    )
    cutoff_time = models.TimeField(
        default=time(14, 0), help_text="Orders paid before this local time ship the same day."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def receipt_name(self) -> str:
        """The name receipts carry: the legal name, or the display name until one is given."""
        return self.legal_name or self.name

    @property
    def address_lines(self) -> list[str]:
        """The postal address as printed, one line each, blank parts left out."""
        place = ", ".join(p for p in (self.city, f"{self.state} {self.postal_code}".strip()) if p)
        country = "" if self.country == "US" else self.country
        lines = (self.address_line1, self.address_line2, place, country)
        return [line for line in lines if line]


class Product(TimeStampedModel):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=200)
    sku = models.CharField("SKU", max_length=64)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "sku"], name="product_unique_sku"),
        ]

    def __str__(self) -> str:
        return self.name


def default_platform() -> str:
    """The platform a new campaign is on unless told otherwise (``HASHCART["DEFAULT_PLATFORM"]``:
    the sandbox in development and the tests, X in production)."""
    platform: str = settings.HASHCART["DEFAULT_PLATFORM"]
    return platform


class Campaign(TimeStampedModel):
    """A product on offer under a purchase hashtag on one platform, ``starts_at`` to ``ends_at``.

    ``hashtag`` is shown as written; ``hashtag_key`` (``social.hashtags.hashtag_key``) is what
    posts are matched on. No two campaigns on one platform hold the same key at overlapping times:
    an exclusion constraint on PostgreSQL, a trigger on SQLite (migration 0002).

    Stock: ``stock_reserved`` counts the units held by orders from pending onward; a unit is
    released on expiry, cancellation or decline. ``0 <= stock_reserved <= stock_total`` is a
    check constraint, and reservations are conditional updates against it (DESIGN §3.5).
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="campaigns")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="campaigns")
    platform = models.CharField(max_length=16, choices=Platform.choices, default=default_platform)
    hashtag = models.CharField(max_length=100, help_text="As displayed, without the #.")
    hashtag_key = models.CharField(max_length=100, editable=False)
    confirm_prefix = models.CharField(
        max_length=30, default="Confirm", help_text="Buyers confirm with #<prefix><CODE>."
    )
    price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    currency = models.CharField(max_length=3, default="USD")
    # Whether ``price`` already holds the sales tax (DESIGN §3.8): then the buyer pays the price
    # and the tax is taken out of it; otherwise the tax is added on top.
    price_includes_tax = models.BooleanField(
        default=False, help_text="The price includes sales tax (otherwise tax is added to it)."
    )
    stock_total = models.PositiveIntegerField()
    stock_reserved = models.PositiveIntegerField(default=0, editable=False)
    per_buyer_limit = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="Units one cardholder may buy."
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    paused = models.BooleanField(default=False)
    # Staff are alerted (once per crossing) when the units left fall to this or below; None: no
    # low-stock alert. Read by orders' alert sweep (``orders.services.alerts``).
    low_stock_threshold = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Alert staff when the units left fall to this number (empty: no alert).",
    )

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(stock_reserved__gte=0) & Q(stock_reserved__lte=F("stock_total")),
                name="campaign_stock_reserved_in_range",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="campaign_ends_after_start"
            ),
            models.CheckConstraint(condition=Q(price__gt=0), name="campaign_price_positive"),
            models.CheckConstraint(
                condition=Q(per_buyer_limit__gte=1), name="campaign_per_buyer_limit_positive"
            ),
            models.CheckConstraint(
                condition=~Q(hashtag_key="") & ~Q(confirm_prefix=""),
                name="campaign_hashtag_key_present",
            ),
        ]
        indexes = [
            models.Index(fields=["platform", "hashtag_key"], name="campaign_key_idx"),
            models.Index(fields=["merchant", "-starts_at"], name="campaign_merchant_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.hashtag}"

    @property
    def stock_available(self) -> int:
        return self.stock_total - self.stock_reserved


class CampaignListing(models.Model):
    """One network a campaign runs on (issue 13, item 7): a campaign has one row per platform,
    its first network (``Campaign.platform``) included, all selling from the campaign's one
    stock pool.

    ``hashtag_key``, ``starts_at`` and ``ends_at`` copy the campaign's, written with it by
    ``catalog.services.campaign_save`` (the only writer), so that the database can refuse two
    campaigns holding one key on one platform at overlapping times whatever network they list
    first: an exclusion constraint on PostgreSQL, triggers on SQLite (migration 0008). Matching
    reads only ``campaign`` and ``platform`` here; dates and key are read from the campaign.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="listings")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    hashtag_key = models.CharField(max_length=100)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()

    class Meta:
        ordering = ["campaign", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "platform"], name="campaignlisting_one_per_platform"
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="campaignlisting_ends_after_start"
            ),
        ]
        indexes = [
            models.Index(fields=["platform", "hashtag_key"], name="campaignlisting_key_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.hashtag_key} on {self.platform}"


# --- Variants (issue 13) ----------------------------------------------------------------------
# A product has at most this many options (Size, Colour…); a variant names a value for each.
MAX_OPTIONS = 3


class ProductOption(models.Model):
    """One of a product's options (``Size``), at ``position`` 1 to ``MAX_OPTIONS``.

    Its values are those its product's variants name (``ProductVariant.option1``…), so that a
    value exists only while something is offered in it. A product without options has one
    stock per campaign, as before variants existed.
    """

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="options")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=50)

    class Meta:
        ordering = ["product", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "position"], name="product_option_unique_position"
            ),
            models.UniqueConstraint(fields=["product", "name"], name="product_option_unique_name"),
            models.CheckConstraint(
                condition=Q(position__gte=1) & Q(position__lte=MAX_OPTIONS),
                name="product_option_position_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ProductVariant(TimeStampedModel):
    """One combination of option values of a product (``M``, ``Blue``), with its own SKU.

    ``optionN`` is the value of the option at position N, blank when the product has no such
    option; each value is one word, matched in posts by its ``social.hashtags.hashtag_key``
    (``catalog.services.variant_save`` checks both, and that the SKU is the merchant's only).
    """

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    sku = models.CharField("SKU", max_length=64)
    option1 = models.CharField(max_length=50, blank=True)
    option2 = models.CharField(max_length=50, blank=True)
    option3 = models.CharField(max_length=50, blank=True)

    class Meta:
        ordering = ["product", "id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "sku"], name="variant_unique_sku"),
            models.UniqueConstraint(
                fields=["product", "option1", "option2", "option3"],
                name="variant_unique_combination",
            ),
        ]

    def __str__(self) -> str:
        return self.label or self.sku

    @property
    def values(self) -> tuple[str, ...]:
        """The option values in position order, blanks left out."""
        return tuple(v for v in (self.option1, self.option2, self.option3) if v)

    def values_padded(self) -> tuple[str, str, str]:
        return (self.option1, self.option2, self.option3)

    @property
    def label(self) -> str:
        """How the variant is shown: ``M / Blue``."""
        return " / ".join(self.values)


class CampaignVariantStock(models.Model):
    """A campaign's own stock of one variant of its product.

    A campaign whose product has options sells only the variants it has a row for.
    ``Campaign.stock_total``/``stock_reserved`` are then the sums over its rows (kept so by
    ``catalog.services``), so the campaign-level sold-out check and the dashboards still hold.
    ``stock_reserved`` moves like the campaign's: by conditional updates under the campaign's
    lock, with ``0 <= stock_reserved <= stock_total`` a check constraint.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variant_stocks")
    variant = models.ForeignKey(
        ProductVariant, on_delete=models.PROTECT, related_name="campaign_stocks"
    )
    stock_total = models.PositiveIntegerField()
    stock_reserved = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["campaign", "variant"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "variant"], name="campaign_variant_stock_unique"
            ),
            models.CheckConstraint(
                condition=Q(stock_reserved__gte=0) & Q(stock_reserved__lte=F("stock_total")),
                name="campaign_variant_stock_reserved_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.variant}: {self.stock_reserved} / {self.stock_total}"

    @property
    def stock_available(self) -> int:
        return self.stock_total - self.stock_reserved
