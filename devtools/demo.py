"""The demo data set: the 2013 Amex Sync catalogue on the sandbox platform (``seed_demo``).

Idempotent: running it again keeps existing rows (and their stock and orders) and resets only the
demo passwords to the one given.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction

from accounts.models import Cardholder
from accounts.services import (
    card_add,
    cardholder_upsert,
    consent_record,
    identity_link,
    operator_upsert,
    staff_user_upsert,
)
from catalog.models import Campaign, Merchant, Product
from catalog.services import campaign_save
from sandbox.services import sandbox_user_ensure
from social.hashtags import hashtag_key
from social.models import Platform, PlatformAccount

BRAND_HANDLE = "HashcartDeals"
BUYER_HANDLE = "alice"
BUYER_EMAIL = "alice@example.com"


@dataclass(frozen=True)
class _Offer:
    merchant: str
    slug: str
    product: str
    sku: str
    price: Decimal
    hashtag: str
    stock: int


OFFERS = (
    _Offer(
        "Amazon",
        "amazon",
        "Kindle Fire HD",
        "KFHD-7-16GB",
        Decimal("149.00"),
        "BuyKindleFireHD",
        100,
    ),
    _Offer(
        "Sony",
        "sony",
        "Sony Action Cam with waterproof headband mount",
        "HDR-AS15-HB",
        Decimal("179.00"),
        "BuyActionCamPack",
        50,
    ),
    _Offer(
        "Urban Zen",
        "urban-zen",
        "Urban Zen bracelet designed by Donna Karan",
        "UZ-BRC-01",
        Decimal("80.00"),
        "BuyUrbanZenBracelet",
        40,
    ),
    _Offer(
        "Microsoft",
        "microsoft",
        "Microsoft Xbox 360 bundle",
        "X360-4GB-KINECT",
        Decimal("179.00"),
        "BuyXbox360Bundle",
        75,
    ),
)


def _demo_receipt_details(name: str) -> dict[str, str]:
    """What the demo merchants' receipts print: made up, like the rest of the demo world."""
    return {
        "legal_name": f"{name} Demo Store LLC",
        "address_line1": "1 Demo Plaza",
        "city": "New York",
        "state": "NY",
        "postal_code": "10001",
    }


@dataclass
class DemoSeed:
    """What the seed made, for the command to print."""

    brand_handle: str
    buyer_handle: str
    credentials: list[tuple[str, str, str]] = field(default_factory=list)  # role, login, password
    campaigns: list[Campaign] = field(default_factory=list)


def demo_campaign_end(now: datetime) -> datetime:
    """3 March of the year after ``now``, end of day in New York: when the demo offers close
    (sooner if that is past the longest campaign allowed, ``HASHCART_MAX_CAMPAIGN_DAYS``)."""
    march = datetime(now.year + 1, 3, 3, 23, 59, 59, tzinfo=ZoneInfo("America/New_York"))
    return min(march, now + timedelta(days=settings.HASHCART["MAX_CAMPAIGN_DAYS"]))


@transaction.atomic
def demo_seed(*, now: datetime, password: str) -> DemoSeed:
    """Create (or keep) the demo merchants, campaigns, logins, brand account and buyer."""
    seed = DemoSeed(brand_handle=BRAND_HANDLE, buyer_handle=BUYER_HANDLE)
    # The sandbox network's users: their ids are the platform user ids Hashcart keys on.
    brand = sandbox_user_ensure(handle=BRAND_HANDLE)
    PlatformAccount.objects.update_or_create(
        platform=Platform.SANDBOX,
        platform_user_id=str(brand.pk),
        defaults={"handle": brand.handle, "enabled": True},
    )
    ends_at = demo_campaign_end(now)
    for offer in OFFERS:
        merchant, _ = Merchant.objects.get_or_create(
            slug=offer.slug,
            defaults={"name": offer.merchant, **_demo_receipt_details(offer.merchant)},
        )
        product, _ = Product.objects.get_or_create(
            merchant=merchant, sku=offer.sku, defaults={"name": offer.product}
        )
        campaign = Campaign.objects.filter(
            platform=Platform.SANDBOX, hashtag_key=hashtag_key(offer.hashtag), product=product
        ).first()
        if campaign is None:
            campaign = campaign_save(
                campaign=Campaign(
                    product=product,
                    platform=Platform.SANDBOX,
                    hashtag=offer.hashtag,
                    price=offer.price,
                    stock_total=offer.stock,
                    per_buyer_limit=1,
                    starts_at=now,
                    ends_at=ends_at,
                ),
                now=now,
            )
        seed.campaigns.append(campaign)
        username = f"{offer.slug}-staff"
        staff_user_upsert(
            username=username,
            email=f"{username}@example.com",
            password=password,
            merchant_id=merchant.pk,
        )
        seed.credentials.append((f"staff of {offer.merchant}", f"{username}@example.com", password))

    operator_upsert(username="ops", email="ops@example.com", password=password)
    seed.credentials.append(("operator (superuser)", "ops@example.com", password))

    demo_buyer_ready(
        handle=BUYER_HANDLE, email=BUYER_EMAIL, name="Alice Example", password=password, now=now
    )
    seed.credentials.append(("cardholder", BUYER_EMAIL, password))
    return seed


def demo_buyer_ready(
    *, handle: str, email: str, name: str, password: str, now: datetime
) -> Cardholder:
    """A sandbox user linked to a cardholder who can buy at once: a sandbox card that approves,
    a billing address, consent to the current terms, all dated three days ago (past the
    cooling-off period, DESIGN §8). Idempotent."""
    user = sandbox_user_ensure(handle=handle)
    cardholder = cardholder_upsert(email=email, password=password)
    linked_at = now - timedelta(days=3)
    identity_link(
        cardholder=cardholder,
        platform=Platform.SANDBOX,
        platform_user_id=str(user.pk),
        handle=user.handle,
        now=linked_at,
    )
    card_add(
        cardholder=cardholder,
        gateway="sandbox",
        token=f"tok_sandbox_demo_{user.pk}_visa",
        brand="Visa",
        last4="4242",
        exp_month=12,
        exp_year=now.year + 4,
        now=linked_at,
        address={
            "billing_name": name,
            "address_line1": "1 Main Street",
            "city": "Springfield",
            "state": "IL",
            "postal_code": "62701",
        },
    )
    consent_record(
        cardholder=cardholder, terms_version=settings.HASHCART["TERMS_VERSION"], now=linked_at
    )
    return cardholder
