"""Bulk builders for benchmarks and load tests: many linked buyers and inbox posts at once.

These write straight to the tables with ``bulk_create`` (thousands of rows a second); they are
for the benchmark command and the concurrency tests, never for the product's own flows.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password

from accounts.models import Card, Cardholder, Consent, PurchaseControls, SocialIdentity, User
from sandbox.models import SandboxUser
from social.hashtags import extract_hashtags
from social.models import PlatformAccount, Post, PostKind


@dataclass(frozen=True)
class BulkBuyer:
    platform_user_id: str
    handle: str
    cardholder_id: int


def buyers_bulk_create(
    *, prefix: str, count: int, now: datetime, batch: int = 2000
) -> list[BulkBuyer]:
    """``count`` sandbox users linked to cardholders with a card, an address and consent, past
    the cooling-off period. Handles are ``<prefix><n>``."""
    unusable = make_password(None)
    linked_at = now - timedelta(days=3)
    buyers: list[BulkBuyer] = []
    for start in range(0, count, batch):
        handles = [f"{prefix}{n}" for n in range(start, min(start + batch, count))]
        users = SandboxUser.objects.bulk_create([SandboxUser(handle=h) for h in handles])
        logins = User.objects.bulk_create(
            [
                User(username=f"{h}@bench.example", email=f"{h}@bench.example", password=unusable)
                for h in handles
            ]
        )
        holders = Cardholder.objects.bulk_create([Cardholder(user=u) for u in logins])
        PurchaseControls.objects.bulk_create([PurchaseControls(cardholder=c) for c in holders])
        SocialIdentity.objects.bulk_create(
            [
                SocialIdentity(
                    cardholder=c,
                    platform="sandbox",
                    platform_user_id=str(u.pk),
                    handle=u.handle,
                    linked_at=linked_at,
                )
                for c, u in zip(holders, users, strict=True)
            ]
        )
        Card.objects.bulk_create(
            [
                Card(
                    cardholder=c,
                    gateway="sandbox",
                    token=f"tok_sandbox_bench_{u.handle}",
                    brand="Visa",
                    last4="4242",
                    exp_month=12,
                    exp_year=now.year + 3,
                    billing_name=u.handle,
                    address_line1="1 Bench Way",
                    city="Springfield",
                    state="IL",
                    postal_code="62701",
                    address_changed_at=linked_at,
                )
                for c, u in zip(holders, users, strict=True)
            ]
        )
        Consent.objects.bulk_create(
            [
                Consent(
                    cardholder=c,
                    terms_version=settings.HASHCART["TERMS_VERSION"],
                    accepted_at=linked_at,
                )
                for c in holders
            ]
        )
        buyers.extend(
            BulkBuyer(platform_user_id=str(u.pk), handle=u.handle, cardholder_id=c.pk)
            for c, u in zip(holders, users, strict=True)
        )
    return buyers


def inbox_post(
    *,
    account: PlatformAccount,
    post_id: str,
    author_id: str,
    handle: str,
    text: str,
    posted_at: datetime,
    kind: str = PostKind.ORIGINAL,
    root_id: str | None = None,
) -> Post:
    """An unsaved inbox row as the sandbox poller would store it."""
    hashtags = [] if kind == PostKind.REPOST else [t.text for t in extract_hashtags(text)]
    return Post(
        platform=account.platform,
        account=account,
        post_id=post_id,
        root_id=root_id or post_id,
        author_id=author_id,
        author_handle=handle,
        text=text,
        hashtags=hashtags,
        kind=kind,
        posted_at=posted_at,
    )
