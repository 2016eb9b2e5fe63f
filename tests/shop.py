"""A shop and its buyers on the sandbox network, for pipeline tests."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

from django.conf import settings
from django.utils import timezone

from accounts.models import Card, Cardholder, PurchaseControls, SocialIdentity
from accounts.services import card_add, cardholder_upsert, consent_record, identity_link
from catalog.models import Campaign
from catalog.tests.factories import CampaignFactory
from fulfillment.services import label_buy, shipment_track
from orders.models import Order, OrderStatus, PaymentOperation
from orders.pipeline import stage_decide, stage_payments, stage_poll, stage_send
from sandbox.models import SandboxPost, SandboxUser
from sandbox.services import sandbox_post_create, sandbox_timeline, sandbox_user_ensure
from social.models import PlatformAccount

BRAND = "HashcartDeals"


@dataclass
class Shop:
    brand: SandboxUser
    account: PlatformAccount
    campaign: Campaign


@dataclass
class Buyer:
    handle: str
    user: SandboxUser
    cardholder: Cardholder
    identity: SocialIdentity
    card: Card


def shop_open(
    *, stock: int = 10, hashtag: str = "BuyKindleFireHD", budget: int = 10_000, **campaign: object
) -> Shop:
    brand = sandbox_user_ensure(handle=BRAND)
    account, _ = PlatformAccount.objects.get_or_create(
        platform="sandbox",
        platform_user_id=str(brand.pk),
        defaults={"handle": BRAND, "reply_budget": budget},
    )
    campaign_row: Campaign = cast(
        Campaign,
        CampaignFactory(
            hashtag=hashtag,
            stock_total=stock,
            product__name="Kindle Fire HD",
            price=Decimal("149.00"),
            **campaign,
        ),
    )
    return Shop(brand=brand, account=account, campaign=campaign_row)


# An address without sales tax (Oregon has none), for tests whose sums are not about tax.
UNTAXED = {"city": "Portland", "state": "OR", "postal_code": "97201"}


def buyer_ready(
    handle: str,
    *,
    linked_ago: timedelta = timedelta(days=3),
    token: str | None = None,
    consent: bool = True,
    address: dict[str, str] | None = None,
    **controls: object,
) -> Buyer:
    """A sandbox user linked to a cardholder with a card, an address (Springfield, Illinois,
    unless ``address`` says otherwise) and consent."""
    now = timezone.now()
    user = sandbox_user_ensure(handle=handle)
    cardholder = cardholder_upsert(email=f"{handle.lower()}@example.com", password="pw-buyer")
    identity = identity_link(
        cardholder=cardholder,
        platform="sandbox",
        platform_user_id=str(user.pk),
        handle=handle,
        now=now - linked_ago,
    )
    card = card_add(
        cardholder=cardholder,
        gateway="sandbox",
        token=token or f"tok_sandbox_{handle}",
        brand="Visa",
        last4="4242",
        exp_month=12,
        exp_year=now.year + 3,
        now=now - linked_ago,
        address={
            "billing_name": handle,
            "address_line1": "1 Main Street",
            "city": "Springfield",
            "state": "IL",
            "postal_code": "62701",
            **(address or {}),
        },
    )
    if consent:
        consent_record(
            cardholder=cardholder,
            terms_version=settings.HASHCART["TERMS_VERSION"],
            now=now - linked_ago,
        )
    if controls:
        PurchaseControls.objects.filter(cardholder=cardholder).update(**controls)
    return Buyer(handle=handle, user=user, cardholder=cardholder, identity=identity, card=card)


def post(handle: str, text: str, **kwargs: Any) -> SandboxPost:
    return sandbox_post_create(handle=handle, text=text, now=timezone.now(), **kwargs)


def tick() -> None:
    """Poll, decide and send once, at the current (possibly travelled) time."""
    now = timezone.now()
    stage_poll(now=now)
    stage_decide(now=now)
    stage_send(now=now)


def replies_to(handle: str) -> list[str]:
    return [p.text for p in sandbox_timeline(handle=handle) if p.author.handle == BRAND]


def code_in(text: str) -> str:
    """The confirmation code in a confirmation request."""
    return text.split("#Confirm", 1)[1][:5]


def order_paid(handle: str = "alice", **buyer: Any) -> Order:
    """``handle`` buys the shop's offer and confirms it: a paid order (card authorized), its
    shipment awaiting a label. Needs ``shop_open()`` first."""
    ready = buyer_ready(handle, **buyer)
    post(handle, f"@{BRAND} #BuyKindleFireHD")
    tick()
    post(handle, f"@{BRAND} #Confirm{code_in(replies_to(handle)[-1])}")
    tick()
    tick()
    order = Order.objects.get(cardholder=ready.cardholder)
    assert order.status == OrderStatus.PAID
    return order


def order_shipped(handle: str = "alice", **buyer: Any) -> Order:
    """A paid order whose label the sandbox carrier sold (fulfillment's ``label_buy``): shipped,
    its payment captured in the sandbox ledger."""
    order = order_paid(handle, **buyer)
    assert label_buy(shipment_id=order.shipment.pk).status == "bought"
    stage_payments(now=timezone.now())
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    assert PaymentOperation.objects.get(order=order, operation="capture").status == "done"
    return order


def order_delivered(handle: str = "alice", **buyer: Any) -> Order:
    """A shipped order the sandbox carrier reports delivered: tracked (as the periodic poll
    does) at the time its script says it arrives."""
    order = order_shipped(handle, **buyer)
    arrives = settings.HASHCART["SANDBOX_CARRIER_HOURS"][2]
    later = timezone.now() + timedelta(hours=arrives, minutes=1)
    assert shipment_track(shipment_id=order.shipment.pk, now=later) == "delivered"
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    return order
