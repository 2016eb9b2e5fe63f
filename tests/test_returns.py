"""Returns (issue 12, item 2; DESIGN §3.4): the buyer asks within the return window, staff
approve or refuse with a note, the carrier sells the return label and brings the goods back
(or staff say they arrived), and what is left is refunded once, the unit back in stock if staff
said so; every step e-mailed and in the audit log; staff inside their merchant, each step
behind its permission, in the back office and the API."""

import json
from datetime import timedelta
from decimal import Decimal
from typing import cast

import easypost
import pytest
import responses
import time_machine
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from accounts.services import staff_user_upsert
from accounts.services.people import merchant_staff_group_ensure
from catalog.models import Campaign
from catalog.tests.factories import CampaignFactory
from fulfillment.carriers.base import Parcel
from fulfillment.carriers.easypost import EasyPostCarrier
from fulfillment.services.returns import return_label_buy, returns_sweep
from orders.messages import not_me_url
from orders.models import Dispute, Order, OrderEvent, OrderStatus, Refund, Return, ReturnStatus
from orders.pipeline import stage_payments
from orders.services.disputes import dispute_refund_on_return
from orders.services.returns import order_delivered_at
from sandbox.carrier import sandbox_signature
from sandbox.models import SandboxLabel, SandboxLedgerEntry
from tests.mfa import totp_enable
from tests.shop import UNTAXED, order_delivered, order_shipped, shop_open

pytestmark = pytest.mark.django_db

ARRIVES = timedelta(hours=33)  # the sandbox carrier delivers a label 32 hours after it is bought


class World:
    """Merchant A's shop with alice's delivered order; staff of A and of merchant B."""

    def __init__(self) -> None:
        self.shop = shop_open()
        self.order = order_delivered("alice", address=UNTAXED)
        self.a = self.shop.campaign.merchant
        self.b = cast(Campaign, CampaignFactory(hashtag="BuyOtherThing")).merchant
        self.staff_a = self._staff("a", self.a.pk)
        self.staff_b = self._staff("b", self.b.pk)

    @staticmethod
    def _staff(name: str, merchant_id: int):
        user = staff_user_upsert(
            username=f"staff-{name}",
            email=f"{name}@example.com",
            password="pw",
            merchant_id=merchant_id,
        )
        totp_enable(user)
        return user

    def login(self, user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    def api(self, user) -> Client:
        _, token = AuthToken.objects.create(user=user)
        return Client(headers={"Authorization": f"Token {token}"})

    def buyer(self) -> Client:
        return self.login(self.order.cardholder.user)

    def ask(self, reason: str = "Too small") -> Client:
        buyer = self.buyer()
        buyer.post(
            reverse("orders:cardholder_return_request"), {"order": self.order.pk, "reason": reason}
        )
        return buyer


@pytest.fixture
def world() -> World:
    return World()


def _act(returned: Return, step: str) -> str:
    return reverse("admin:orders_return_act", args=[returned.pk, step])


def _kinds(order: Order) -> list[str]:
    return list(
        OrderEvent.objects.filter(order=order).order_by("id").values_list("kind", flat=True)
    )


def _mails(order: Order) -> list[str]:
    return list(order.notifications.order_by("id").values_list("kind", flat=True))


def _ledger_refunds() -> list[tuple[Decimal, int]]:
    return list(
        SandboxLedgerEntry.objects.filter(operation="refund", approved=True).values_list(
            "amount", "calls"
        )
    )


def _delivered_back(returned: Return, django_capture_on_commit_callbacks) -> None:
    """The sweep polls the carrier when its script has the return delivered back."""
    label = SandboxLabel.objects.get(for_return=True, shipment_id=returned.pk)
    with django_capture_on_commit_callbacks(execute=True):
        returns_sweep(now=label.bought_at + ARRIVES)


# --- End to end (the first Acceptance bullet) ---------------------------------------------------
def test_a_delivered_order_goes_back_and_is_refunded_once_with_its_unit_back_in_stock(
    world, django_capture_on_commit_callbacks
):
    campaign = world.shop.campaign
    campaign.refresh_from_db()
    reserved = campaign.stock_reserved
    assert "Ask for a return" in world.buyer().get(reverse("accounts:settings")).content.decode()

    buyer = world.ask("The screen flickers.")
    returned = Return.objects.get(order=world.order)
    assert (returned.status, returned.reason) == (ReturnStatus.REQUESTED, "The screen flickers.")
    assert "Return: Requested" in buyer.get(reverse("accounts:settings")).content.decode()

    # Staff approve from the order's page, saying the unit goes back to stock.
    staff = world.login(world.staff_a)
    page = staff.get(reverse("admin:orders_order_change", args=[world.order.pk])).content.decode()
    assert _act(returned, "approve") in page
    assert _act(returned, "receive") not in page  # not approved yet
    approved = staff.post(_act(returned, "approve"), {"note": "Sorry!", "restock": "on"})
    assert approved.status_code == 302
    returned.refresh_from_db()
    assert (returned.status, returned.restock, returned.decided_by) == (
        ReturnStatus.APPROVED,
        True,
        world.staff_a,
    )

    # The label: bought by the sweep (the on-commit hand-off's fallback), e-mailed to the buyer.
    assert returns_sweep(now=timezone.now())["labels"] == 1
    returned.refresh_from_db()
    assert returned.status == ReturnStatus.LABEL_BOUGHT
    assert returned.tracking_number.startswith("SBR")
    label_mail = world.order.notifications.get(kind="return_label_bought")
    assert returned.label_url in label_mail.body
    assert returned.tracking_number in label_mail.body
    assert return_label_buy(return_id=returned.pk).status == "skipped"  # one label only

    # Not yet delivered back: nothing moves.
    with django_capture_on_commit_callbacks(execute=True):
        returns_sweep(now=timezone.now())
    returned.refresh_from_db()
    assert returned.status == ReturnStatus.LABEL_BOUGHT
    assert not Refund.objects.exists()

    # The carrier delivers it back: received, refunded once, the unit back in stock.
    _delivered_back(returned, django_capture_on_commit_callbacks)
    returned.refresh_from_db()
    assert returned.status == ReturnStatus.REFUNDED
    world.order.refresh_from_db()
    assert world.order.status == OrderStatus.REFUNDED
    assert world.order.refunded_total == Decimal("149.00")
    assert _ledger_refunds() == [(Decimal("149.00"), 1)]
    campaign.refresh_from_db()
    assert campaign.stock_reserved == reserved - 1

    # Polled again, the payments sweep again: nothing more.
    _delivered_back(returned, django_capture_on_commit_callbacks)
    stage_payments(now=timezone.now())
    assert _ledger_refunds() == [(Decimal("149.00"), 1)]
    assert Refund.objects.count() == 1
    campaign.refresh_from_db()
    assert campaign.stock_reserved == reserved - 1

    # Every step in the audit log and e-mailed.
    kinds = _kinds(world.order)
    steps = [
        "return_requested",
        "return_approved",
        "return_label_bought",
        "return_received",
        "refund_requested",
        "refunded",
        "return_refunded",
    ]
    assert [k for k in kinds if k in steps] == steps
    assert {"confirmed", "paid", "shipped", "delivered"} <= set(kinds)
    mails = _mails(world.order)
    for kind in (
        "return_requested",
        "return_approved",
        "return_label_bought",
        "return_received",
        "refunded",
    ):
        assert mails.count(kind) == 1, kind
    assert "Sorry!" in world.order.notifications.get(kind="return_approved").body
    assert "Return: Refunded" in buyer.get(reverse("accounts:settings")).content.decode()


def test_a_return_asked_for_after_the_window_is_refused_with_a_clear_message(world):
    delivered = order_delivered_at(order_id=world.order.pk)
    assert delivered is not None
    with time_machine.travel(delivered + timedelta(days=30, minutes=1), tick=False):
        buyer = world.ask()
        page = buyer.get(reverse("accounts:settings")).content.decode()
    assert not Return.objects.exists()
    assert "returns are accepted within 30 days of delivery" in page
    assert "can no longer be returned" in page
    with time_machine.travel(delivered + timedelta(days=29), tick=False):
        world.ask()
    assert Return.objects.get().status == ReturnStatus.REQUESTED


def test_an_order_not_delivered_cannot_be_returned_and_a_second_request_is_refused(world):
    shipped = order_shipped("bob", address=UNTAXED)
    bob = world.login(shipped.cardholder.user)
    bob.post(reverse("orders:cardholder_return_request"), {"order": shipped.pk, "reason": "x"})
    assert not Return.objects.filter(order=shipped).exists()
    world.ask()
    buyer = world.ask()
    assert Return.objects.filter(order=world.order).count() == 1
    assert "already under way" in buyer.get(reverse("accounts:settings")).content.decode()
    # Another cardholder's order is a 404.
    assert (
        bob.post(
            reverse("orders:cardholder_return_request"), {"order": world.order.pk, "reason": "x"}
        ).status_code
        == 404
    )


def test_staff_refuse_with_a_note_the_buyer_reads(world):
    world.ask()
    returned = Return.objects.get()
    staff = world.login(world.staff_a)
    assert staff.post(_act(returned, "refuse"), {"note": ""}).status_code == 409  # says why
    assert staff.post(_act(returned, "refuse"), {"note": "Opened and used."}).status_code == 302
    returned.refresh_from_db()
    assert (returned.status, returned.note) == (ReturnStatus.REFUSED, "Opened and used.")
    assert "Opened and used." in world.order.notifications.get(kind="return_refused").body
    assert "return_refused" in _kinds(world.order)
    page = world.buyer().get(reverse("accounts:settings")).content.decode()
    assert "Merchant's note: Opened and used." in page
    assert not Refund.objects.exists()
    # Refused: the buyer may ask again (within the window).
    world.ask("Really broken.")
    assert Return.objects.filter(order=world.order, status="requested").count() == 1


def test_staff_mark_a_return_received_through_the_api_and_it_is_refunded_without_restock(
    world, django_capture_on_commit_callbacks
):
    world.ask()
    returned = Return.objects.get()
    api = world.api(world.staff_a)
    early = api.post(f"/api/v1/returns/{returned.pk}/receive/")
    assert early.status_code == 409  # not approved yet
    approved = api.post(
        f"/api/v1/returns/{returned.pk}/approve/", {"note": "OK"}, content_type="application/json"
    )
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved"
    with django_capture_on_commit_callbacks(execute=True):
        received = api.post(f"/api/v1/returns/{returned.pk}/receive/")
    assert received.status_code == 200
    returned.refresh_from_db()
    assert returned.status == ReturnStatus.REFUNDED
    assert _ledger_refunds() == [(Decimal("149.00"), 1)]
    world.order.refresh_from_db()
    assert world.order.restocked_at is None  # staff did not say the unit goes back
    again = api.post(f"/api/v1/returns/{returned.pk}/receive/")
    assert again.status_code == 409
    assert _ledger_refunds() == [(Decimal("149.00"), 1)]


def test_merchant_bs_staff_cannot_see_or_act_on_as_returns(world):
    world.ask()
    returned = Return.objects.get()
    staff_b = world.login(world.staff_b)
    assert staff_b.get(reverse("admin:orders_return_changelist")).context["cl"].result_count == 0
    assert staff_b.get(reverse("admin:orders_return_change", args=[returned.pk])).status_code == 404
    for step in ("approve", "refuse", "receive"):
        assert staff_b.post(_act(returned, step), {"note": "x"}).status_code == 404
    api_b = world.api(world.staff_b)
    assert api_b.get("/api/v1/returns/").json()["results"] == []
    for step in ("approve", "refuse", "receive"):
        response = api_b.post(
            f"/api/v1/returns/{returned.pk}/{step}/", {"note": "x"}, content_type="application/json"
        )
        assert response.status_code == 404
    returned.refresh_from_db()
    assert returned.status == ReturnStatus.REQUESTED


def test_each_return_step_needs_its_permission(world):
    world.ask()
    returned = Return.objects.get()
    world.staff_a.groups.clear()
    world.staff_a.user_permissions.set(
        Permission.objects.filter(codename__in=["view_order", "view_return"])
    )
    staff = world.login(world.staff_a)
    page = staff.get(reverse("admin:orders_return_change", args=[returned.pk])).content.decode()
    assert _act(returned, "approve") not in page
    assert staff.post(_act(returned, "approve"), {}).status_code == 403
    api = world.api(world.staff_a)
    assert api.post(f"/api/v1/returns/{returned.pk}/approve/").status_code == 403
    assert api.get(f"/api/v1/returns/{returned.pk}/").status_code == 200
    group = merchant_staff_group_ensure()
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert {"view_return", "approve_return", "receive_return"} <= codenames


def test_the_schema_documents_the_return_endpoints():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for step in ("approve", "refuse", "receive"):
        operation = schema["paths"][f"/api/v1/returns/{{id}}/{step}/"]["post"]
        assert {"200", "409", "404", "403"} <= set(operation["responses"])


# --- A dispute resolved by a refund on return ---------------------------------------------------
def test_a_dispute_resolved_by_refund_on_return_refunds_when_the_carrier_brings_it_back(
    world, django_capture_on_commit_callbacks, settings
):
    Client().post(not_me_url(world.order.pk))
    dispute = Dispute.objects.get()
    dispute_refund_on_return(
        dispute_id=dispute.pk, note="Send it back", now=timezone.now(), actor_label="test"
    )
    returned = Return.objects.get(order=world.order)
    assert (returned.status, returned.dispute_id) == (ReturnStatus.APPROVED, dispute.pk)
    returns_sweep(now=timezone.now())
    returned.refresh_from_db()
    assert returned.status == ReturnStatus.LABEL_BOUGHT
    # The carrier pushes the delivery to its webhook.
    body = json.dumps(
        {
            "reference": returned.carrier_reference,
            "tracking_number": returned.tracking_number,
            "status": "delivered",
            "occurred_at": (timezone.now() + ARRIVES).isoformat(),
        }
    ).encode()
    settings.HASHCART = {**settings.HASHCART, "CARRIER_WEBHOOK_SECRET": "carrier-secret"}
    secret = "carrier-secret"
    with django_capture_on_commit_callbacks(execute=True):
        pushed = Client().post(
            reverse("fulfillment:carrier_webhook", args=["sandbox"]),
            body,
            content_type="application/json",
            headers={"X-Hashcart-Signature": sandbox_signature(body, secret)},
        )
    assert pushed.status_code == 200
    returned.refresh_from_db()
    assert returned.status == ReturnStatus.REFUNDED
    assert _ledger_refunds() == [(Decimal("149.00"), 1)]
    assert "return_received" in _kinds(world.order)


# --- EasyPost's return shipments (HTTP mocked as in fulfillment's carrier tests) ----------------
API = "https://api.easypost.com/v2"
PARCEL = Parcel(
    shipment_id=9,
    order_code="ABCDE",
    product_name="Kindle Fire HD",
    ship_to={"name": "Alice", "line1": "1 Main St", "city": "Springfield", "state": "IL",
             "postal_code": "62701", "country": "US"},
    ship_from_name="1",
)  # fmt: skip
RATES = [
    {"id": "rate_ground", "carrier": "USPS", "rate": "6.10", "delivery_days": 5},
    {"id": "rate_2day", "carrier": "UPS", "rate": "14.20", "delivery_days": 2},
]


@responses.activate
def test_easypost_return_labels_are_return_shipments_at_the_cheapest_rate():
    responses.post(f"{API}/shipments", json={"id": "shp_r", "object": "Shipment", "rates": RATES})
    responses.post(
        f"{API}/shipments/shp_r/buy",
        json={
            "id": "shp_r",
            "object": "Shipment",
            "tracking_code": "9400RET",
            "postage_label": {"label_url": "https://easypost-files.example/return.png"},
            "rates": RATES,
        },
    )
    remembered: list[str] = []
    carrier = EasyPostCarrier(easypost.EasyPostClient("EZTK_test"))
    label = carrier.buy_return_label(parcel=PARCEL, remember=remembered.append)
    assert (label.tracking_number, label.reference, remembered) == ("9400RET", "shp_r", ["shp_r"])
    create, buy = responses.calls
    sent = json.loads(create.request.body)["shipment"]
    assert sent["is_return"] is True
    assert sent["to_address"]["zip"] == "62701"  # EasyPost swaps the addresses for a return
    assert sent["reference"] == "hashcart-return-9"
    assert json.loads(buy.request.body)["rate"] == {"id": "rate_ground"}


def test_a_return_received_when_everything_was_refunded_already_refunds_nothing_more(
    world, django_capture_on_commit_callbacks
):
    world.ask()
    returned = Return.objects.get()
    api = world.api(world.staff_a)
    api.post(f"/api/v1/returns/{returned.pk}/approve/", {}, content_type="application/json")
    with django_capture_on_commit_callbacks(execute=True):
        api.post(
            f"/api/v1/orders/{world.order.pk}/refunds/",
            {"amount": "149.00", "reason": "Goodwill"},
            content_type="application/json",
        )
    assert api.post(f"/api/v1/returns/{returned.pk}/receive/").status_code == 200
    returned.refresh_from_db()
    assert returned.status == ReturnStatus.REFUNDED
    assert returned.refund is None
    assert _ledger_refunds() == [(Decimal("149.00"), 1)]
    assert "return_refunded" in _kinds(world.order)
