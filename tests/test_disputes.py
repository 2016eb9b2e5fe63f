"""Disputes: "Not me" after shipping (issue 12, item 3; DESIGN §3.4, §8). The victim's link opens
a case and pauses buying; staff refund (with or without the goods back) or reject with a reason,
which the cardholder may escalate to the operator; each step is in the order's audit log, the
cardholder's account log and their e-mail; staff act inside their merchant, each way behind its
own permission, in the back office and the API."""

import threading
from datetime import timedelta
from decimal import Decimal
from typing import cast

import pytest
from django.contrib.auth.models import Permission
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from accounts.models import PurchaseControls
from accounts.services import staff_user_upsert
from accounts.services.people import merchant_staff_group_ensure
from accounts.tests.factories import UserFactory
from catalog.models import Campaign
from catalog.tests.factories import CampaignFactory
from orders.messages import not_me_url
from orders.models import Dispute, DisputeStatus, Order, OrderEvent, OrderStatus, Refund
from orders.pipeline import stage_payments
from orders.services import order_refund
from orders.services.disputes import dispute_open, dispute_reject
from orders.services.payments import refund_run
from orders.tasks import payments_run_task
from sandbox.models import SandboxLedgerEntry
from social.models import Post
from tests.mfa import totp_enable
from tests.shop import (
    BRAND,
    UNTAXED,
    order_delivered,
    order_paid,
    order_shipped,
    post,
    shop_open,
    tick,
)

pytestmark = pytest.mark.django_db


class World:
    """Merchant A's shop with alice's delivered order; merchant B's staff; an operator."""

    def __init__(self) -> None:
        self.shop = shop_open()
        self.order = order_delivered("alice", address=UNTAXED)
        self.a = self.shop.campaign.merchant
        self.b = cast(Campaign, CampaignFactory(hashtag="BuyOtherThing")).merchant
        self.staff_a = self._staff("a", self.a.pk)
        self.staff_b = self._staff("b", self.b.pk)
        self.operator = UserFactory(is_staff=True, is_superuser=True)
        totp_enable(self.operator)

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

    def not_me(self) -> Dispute:
        response = Client().post(not_me_url(self.order.pk))
        assert response.status_code == 200
        return Dispute.objects.get(order=self.order)

    def buyer(self) -> Client:
        return self.login(self.order.cardholder.user)


@pytest.fixture
def world() -> World:
    return World()


def _resolve_url(dispute: Dispute, how: str) -> str:
    return reverse("admin:orders_dispute_resolve", args=[dispute.pk, how])


def _ledger_refunds() -> list[tuple[Decimal, int]]:
    return list(
        SandboxLedgerEntry.objects.filter(operation="refund", approved=True)
        .order_by("id")
        .values_list("amount", "calls")
    )


def _kinds(order: Order) -> list[str]:
    return list(
        OrderEvent.objects.filter(order=order).order_by("id").values_list("kind", flat=True)
    )


def _mails(order: Order) -> list[str]:
    return list(order.notifications.order_by("id").values_list("kind", flat=True))


# --- The hijack scenario (the Acceptance) -----------------------------------------------------
def test_not_me_on_a_delivered_order_opens_a_case_pauses_buying_and_staff_refund_once(
    world, django_capture_on_commit_callbacks
):
    link = not_me_url(world.order.pk)
    shown = Client().get(link)
    assert "Open a case and pause buying" in shown.content.decode()  # GET changes nothing
    assert not Dispute.objects.exists()

    opened = Client().post(link)
    dispute = Dispute.objects.get(order=world.order)
    assert dispute.status == DisputeStatus.OPENED
    assert dispute.merchant == world.a
    assert dispute.deadline - dispute.opened_at == timedelta(days=7)
    page = opened.content.decode()
    assert "we opened a case" in page
    assert dispute.deadline.strftime("%B") in page  # the deadline, shown
    world.order.refresh_from_db()
    assert world.order.status == OrderStatus.DELIVERED  # not cancelled: it shipped
    cardholder = world.order.cardholder
    assert PurchaseControls.objects.get(cardholder=cardholder).paused
    assert cardholder.events.filter(kind="purchasing_paused").exists()
    assert "dispute_opened" in _kinds(world.order)
    assert "dispute_opened" in _mails(world.order)
    opened_mail = world.order.notifications.get(kind="dispute_opened")
    assert dispute.deadline.strftime("%B") in opened_mail.body

    # Purchasing is paused: the hijacker's next purchase post buys nothing.
    blocked = post("alice", f"@{BRAND} #BuyKindleFireHD")
    tick()
    assert Post.objects.get(post_id=str(blocked.pk)).outcome == "blocked"
    assert Order.objects.filter(cardholder=cardholder).count() == 1

    # Merchant A's staff see it at the top of their order list, and refund without return.
    staff = world.login(world.staff_a)
    orders_page = staff.get(reverse("admin:orders_order_changelist")).content.decode()
    assert "1 dispute waiting for an answer" in orders_page
    home = staff.get(reverse("admin:index")).content.decode()  # the top of the back office
    assert "1 dispute waiting for an answer" in home
    assert f"#{world.order.confirmation_code}" in orders_page
    order_page = staff.get(reverse("admin:orders_order_change", args=[world.order.pk]))
    assert _resolve_url(dispute, "refund") in order_page.content.decode()
    assert staff.get(_resolve_url(dispute, "refund")).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        done = staff.post(_resolve_url(dispute, "refund"), {"note": "Sorry about that."})
    assert done.status_code == 302

    dispute.refresh_from_db()
    assert (dispute.status, dispute.resolved_by) == (DisputeStatus.RESOLVED_REFUND, world.staff_a)
    world.order.refresh_from_db()
    assert world.order.status == OrderStatus.REFUNDED
    assert world.order.refunded_total == Decimal("149.00")
    assert _ledger_refunds() == [(Decimal("149.00"), 1)]

    # The refund's task again, twice, the sweep, and the direct run: still given back once.
    refund = Refund.objects.get(order=world.order)
    payments_run_task.apply()
    payments_run_task.apply()
    stage_payments(now=timezone.now())
    refund_run(refund_id=refund.pk, now=timezone.now())
    assert _ledger_refunds() == [(Decimal("149.00"), 1)]
    assert Refund.objects.filter(order=world.order).count() == 1
    assert world.order.notifications.filter(kind="refunded").count() == 1

    resolved = OrderEvent.objects.get(order=world.order, kind="dispute_resolved")
    assert (resolved.actor_id, resolved.data["to"]) == (world.staff_a.pk, "resolved_refund")
    assert resolved.data["amount"] == "149.00"
    assert {"dispute_opened", "dispute_resolved", "refunded"} <= set(_mails(world.order))
    resolution_mail = world.order.notifications.get(kind="dispute_resolved")
    assert "Sorry about that." in resolution_mail.body

    # The cardholder sees the case on their orders page and every step in their account log.
    settings_page = world.buyer().get(reverse("accounts:settings")).content.decode()
    assert "Case: Refunded without return" in settings_page
    assert "dispute opened" in settings_page
    assert "dispute resolved" in settings_page
    # Why buying is paused, in the account log (the page escapes the quote).
    assert f"Not me&#x27; on order #{world.order.confirmation_code}" in settings_page


def test_a_second_not_me_on_the_same_order_opens_no_second_case(world):
    first = world.not_me()
    second = world.not_me()
    assert first.pk == second.pk
    again = dispute_open(order_id=world.order.pk, now=timezone.now())
    assert again is not None
    assert again.pk == first.pk
    assert Dispute.objects.count() == 1
    assert _kinds(world.order).count("dispute_opened") == 1
    assert _mails(world.order).count("dispute_opened") == 1


def test_the_database_refuses_a_second_case_for_one_order(world):
    dispute = world.not_me()
    with pytest.raises(IntegrityError), transaction.atomic():
        Dispute.objects.create(
            order=world.order,
            merchant=world.a,
            opened_at=dispute.opened_at,
            deadline=dispute.deadline,
        )


def test_not_me_before_shipping_still_cancels_and_opens_no_case():
    shop_open()
    order = order_paid("alice", address=UNTAXED)
    Client().post(not_me_url(order.pk))
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert not Dispute.objects.exists()


def test_a_shipped_order_in_transit_is_disputed_too():
    shop_open()
    order = order_shipped("alice", address=UNTAXED)
    Client().post(not_me_url(order.pk))
    assert Dispute.objects.get(order=order).status == DisputeStatus.OPENED


# --- Rejection and escalation -------------------------------------------------------------------
def test_a_rejection_with_a_reason_may_be_escalated_and_then_only_operators_see_it(world):
    dispute = world.not_me()
    api = world.api(world.staff_a)
    url = f"/api/v1/disputes/{dispute.pk}/reject/"
    rejected = api.post(
        url,
        {"reason": "Delivered to the billing address, signed for."},
        content_type="application/json",
    )
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "rejected"
    mail = world.order.notifications.get(kind="dispute_resolved")
    assert "signed for" in mail.body
    again = api.post(url, {"reason": "Twice"}, content_type="application/json")
    assert again.status_code == 409  # a rule refusal: the case is no longer open
    assert again.json()["error"]["code"] == "conflict"

    buyer = world.buyer()
    page = buyer.get(reverse("accounts:settings")).content.decode()
    assert "Merchant's note: Delivered to the billing address" in page
    assert "Ask Hashcart to review" in page
    buyer.post(reverse("orders:cardholder_dispute_escalate"), {"dispute": dispute.pk})
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.ESCALATED
    assert dispute.escalated_at is not None
    assert "dispute_escalated" in _kinds(world.order)
    assert "dispute_escalated" in _mails(world.order)
    escalated = OrderEvent.objects.get(order=world.order, kind="dispute_escalated")
    assert escalated.actor_label == "cardholder"

    # Merchant staff no longer see it; the operator does, at the top of the back office.
    staff = world.login(world.staff_a)
    assert staff.get(reverse("admin:orders_dispute_changelist")).context["cl"].result_count == 0
    assert staff.get(reverse("admin:orders_dispute_change", args=[dispute.pk])).status_code == 404
    assert api.get("/api/v1/disputes/").json()["results"] == []
    operator = world.login(world.operator)
    listing = operator.get(reverse("admin:orders_dispute_changelist"))
    assert [d.pk for d in listing.context["cl"].result_list] == [dispute.pk]
    assert "1 dispute waiting for an answer" in listing.content.decode()
    assert (
        operator.get(reverse("admin:orders_dispute_change", args=[dispute.pk])).status_code == 200
    )
    assert world.api(world.operator).get("/api/v1/disputes/").json()["results"][0]["status"] == (
        "escalated"
    )


def test_another_cardholder_cannot_escalate_a_case(world):
    dispute = world.not_me()
    dispute_reject(
        dispute_id=dispute.pk,
        reason="Signed for.",
        now=timezone.now(),
        actor_label="test",
        actor_id=world.staff_a.pk,
    )
    bob = order_shipped("bob", address=UNTAXED)
    intruder = world.login(bob.cardholder.user)
    response = intruder.post(reverse("orders:cardholder_dispute_escalate"), {"dispute": dispute.pk})
    assert response.status_code == 404
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.REJECTED


def test_a_rejection_needs_a_reason(world):
    dispute = world.not_me()
    staff = world.login(world.staff_a)
    response = staff.post(_resolve_url(dispute, "reject"), {"note": "   "})
    assert response.status_code == 409
    assert "needs a reason" in response.content.decode()
    api = world.api(world.staff_a)
    blank = api.post(
        f"/api/v1/disputes/{dispute.pk}/reject/", {"reason": ""}, content_type="application/json"
    )
    assert blank.status_code == 400
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.OPENED


def test_refund_on_return_resolves_the_case_and_tells_the_buyer(world):
    dispute = world.not_me()
    response = world.api(world.staff_a).post(
        f"/api/v1/disputes/{dispute.pk}/refund-on-return/", {}, content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "resolved_refund_on_return"
    assert "return label" in world.order.notifications.get(kind="dispute_resolved").body
    assert not Refund.objects.exists()  # the money waits for the goods


# --- Merchant scope and permissions -----------------------------------------------------------
def test_merchant_bs_staff_cannot_see_or_resolve_as_disputes(world):
    dispute = world.not_me()
    staff_b = world.login(world.staff_b)
    listing = staff_b.get(reverse("admin:orders_dispute_changelist"))
    assert listing.context["cl"].result_count == 0
    assert (
        "waiting for an answer"
        not in staff_b.get(reverse("admin:orders_order_changelist")).content.decode()
    )
    assert "waiting for an answer" not in staff_b.get(reverse("admin:index")).content.decode()
    assert staff_b.get(reverse("admin:orders_dispute_change", args=[dispute.pk])).status_code == 404
    for how in ("refund", "refund_on_return", "reject"):
        assert staff_b.post(_resolve_url(dispute, how), {"note": "x"}).status_code == 404
    api_b = world.api(world.staff_b)
    assert api_b.get("/api/v1/disputes/").json()["results"] == []
    assert api_b.get(f"/api/v1/disputes/{dispute.pk}/").status_code == 404
    for path in ("refund", "refund-on-return", "reject"):
        response = api_b.post(
            f"/api/v1/disputes/{dispute.pk}/{path}/",
            {"reason": "x"},
            content_type="application/json",
        )
        assert response.status_code == 404
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.OPENED
    assert not Refund.objects.exists()
    # Merchant A's staff see it, with its deadline.
    api_a = world.api(world.staff_a)
    [listed] = api_a.get("/api/v1/disputes/").json()["results"]
    assert (listed["id"], listed["order_code"]) == (dispute.pk, world.order.confirmation_code)
    assert listed["deadline"]


def test_each_resolution_needs_its_own_permission(world):
    dispute = world.not_me()
    world.staff_a.groups.clear()
    world.staff_a.user_permissions.set(
        Permission.objects.filter(codename__in=["view_order", "view_dispute", "reject_dispute"])
    )
    staff = world.login(world.staff_a)
    page = staff.get(reverse("admin:orders_dispute_change", args=[dispute.pk])).content.decode()
    assert _resolve_url(dispute, "reject") in page
    assert _resolve_url(dispute, "refund") not in page
    assert _resolve_url(dispute, "refund_on_return") not in page
    assert staff.post(_resolve_url(dispute, "refund"), {"note": ""}).status_code == 403
    api = world.api(world.staff_a)
    refused = api.post(
        f"/api/v1/disputes/{dispute.pk}/refund/", {}, content_type="application/json"
    )
    assert refused.status_code == 403
    assert not Refund.objects.exists()


def test_the_merchant_staff_group_may_resolve_disputes():
    group = merchant_staff_group_ensure()
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert {
        "view_dispute",
        "refund_dispute",
        "refund_dispute_on_return",
        "reject_dispute",
    } <= codenames


def test_the_schema_documents_the_dispute_endpoints():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for action in ("refund", "refund-on-return", "reject"):
        operation = schema["paths"][f"/api/v1/disputes/{{id}}/{action}/"]["post"]
        assert {"200", "409", "404", "403"} <= set(operation["responses"])
    assert "/api/v1/disputes/" in schema["paths"]


def test_a_refund_without_return_when_nothing_is_left_is_refused(world):
    dispute = world.not_me()
    order_refund(
        order_id=world.order.pk,
        amount=Decimal("149.00"),
        reason="Refunded already",
        restock=False,
        now=timezone.now(),
        actor_label="test",
    )
    response = world.api(world.staff_a).post(
        f"/api/v1/disputes/{dispute.pk}/refund/", {}, content_type="application/json"
    )
    assert response.status_code == 409
    assert "Nothing is left to refund" in response.json()["error"]["message"]
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.OPENED


# --- PostgreSQL: two "Not me" at once -----------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_not_me_clicks_at_once_open_one_case():
    shop_open()
    order = order_delivered("alice", address=UNTAXED)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def click() -> None:
        try:
            barrier.wait()
            dispute_open(order_id=order.pk, now=timezone.now())
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Dispute.objects.filter(order=order).count() == 1
    assert OrderEvent.objects.filter(order=order, kind="dispute_opened").count() == 1
