"""Staff cancel and refund orders from the back office and the API (issue 12, item 4): through
the services, each behind its own permission, inside their merchant, 409 for a rule refusal."""

import threading
from decimal import Decimal
from typing import cast

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from accounts.services import staff_user_upsert
from accounts.services.people import merchant_staff_group_ensure
from catalog.models import Campaign
from catalog.tests.factories import CampaignFactory
from core.exceptions import ApplicationError
from orders.models import Order, OrderEvent, OrderStatus, PaymentOperation, Refund
from orders.pipeline import stage_payments
from orders.services import order_refund
from sandbox.models import SandboxLedgerEntry
from tests.mfa import totp_enable
from tests.shop import UNTAXED, order_paid, order_shipped, shop_open

pytestmark = pytest.mark.django_db


class World:
    """Merchant A's shop with a shipped order (captured) and a paid one; merchant B's staff."""

    def __init__(self) -> None:
        self.shop = shop_open()
        self.shipped = order_shipped("alice", address=UNTAXED)
        self.paid = order_paid("bob", address=UNTAXED)
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

    def admin(self, user, **kwargs) -> Client:
        client = Client(**kwargs)
        client.force_login(user)
        return client

    def api(self, user) -> Client:
        _, token = AuthToken.objects.create(user=user)
        return Client(headers={"Authorization": f"Token {token}"})


@pytest.fixture
def world() -> World:
    return World()


def _page(order: Order) -> str:
    return reverse("admin:orders_order_change", args=[order.pk])


def _refund_url(order: Order) -> str:
    return reverse("admin:orders_order_refund", args=[order.pk])


def _cancel_url(order: Order) -> str:
    return reverse("admin:orders_order_cancel", args=[order.pk])


def _ledger_refunds() -> list[Decimal]:
    return list(
        SandboxLedgerEntry.objects.filter(operation="refund", approved=True)
        .order_by("id")
        .values_list("amount", flat=True)
    )


# --- The back office --------------------------------------------------------------------------
def test_staff_refund_in_part_from_the_order_page_then_the_rest(
    world, django_capture_on_commit_callbacks
):
    admin = world.admin(world.staff_a)
    page = admin.get(_page(world.shipped)).content.decode()
    assert _refund_url(world.shipped) in page
    assert _cancel_url(world.shipped) not in page  # shipped: too late to cancel
    form = admin.get(_refund_url(world.shipped))
    assert form.status_code == 200
    assert form.context["form"].initial["amount"] == Decimal("149.00")
    with django_capture_on_commit_callbacks(execute=True):
        done = admin.post(
            _refund_url(world.shipped), {"amount": "49.00", "reason": "Scratched screen"}
        )
    assert done.status_code == 302
    assert done["Location"] == _page(world.shipped)
    order = Order.objects.get(pk=world.shipped.pk)
    assert order.status == OrderStatus.PARTIALLY_REFUNDED  # run at once after the commit
    assert order.refunded_total == Decimal("49.00")
    assert _ledger_refunds() == [Decimal("49.00")]
    requested = OrderEvent.objects.get(order=order, kind="refund_requested")
    assert (requested.actor_id, requested.actor_label) == (world.staff_a.pk, "admin")
    assert requested.data["reason"] == "Scratched screen"
    refund = Refund.objects.get(order=order)
    assert refund.requested_by == world.staff_a
    page = admin.get(_page(order)).content.decode()
    assert "Scratched screen" in page  # the refunds inline

    with django_capture_on_commit_callbacks(execute=True):
        admin.post(_refund_url(order), {"amount": "100.00", "reason": "Returned", "restock": "on"})
    stage_payments(now=timezone.now())
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert order.restocked_at is not None
    world.shop.campaign.refresh_from_db()
    assert world.shop.campaign.stock_reserved == 1  # bob's paid order; alice's unit came back
    assert _ledger_refunds() == [Decimal("49.00"), Decimal("100.00")]
    assert admin.get(_refund_url(order)).status_code == 200
    assert _refund_url(order) not in admin.get(_page(order)).content.decode()  # nothing left


def test_a_refund_above_what_is_left_is_refused_on_the_form(world):
    admin = world.admin(world.staff_a)
    response = admin.post(_refund_url(world.shipped), {"amount": "149.01", "reason": "Too much"})
    assert response.status_code == 409
    assert "at most $149.00" in response.content.decode()
    assert not Refund.objects.exists()


def test_staff_cancel_a_paid_order_from_its_page_and_the_hold_is_voided(world):
    admin = world.admin(world.staff_a)
    page = admin.get(_page(world.paid)).content.decode()
    assert _cancel_url(world.paid) in page
    assert _refund_url(world.paid) not in page  # not captured: nothing to refund
    assert admin.get(_cancel_url(world.paid)).status_code == 200
    assert admin.post(_cancel_url(world.paid)).status_code == 302
    order = Order.objects.get(pk=world.paid.pk)
    assert order.status == OrderStatus.CANCELLED
    event = OrderEvent.objects.get(order=order, kind="cancelled")
    assert (event.data["reason"], event.actor_id) == ("merchant", world.staff_a.pk)
    stage_payments(now=timezone.now())
    assert PaymentOperation.objects.get(order=order, operation="void").status == "done"
    assert order.notifications.filter(kind="cancelled").exists()


def test_a_shipped_order_is_not_cancelled_from_the_back_office(world):
    admin = world.admin(world.staff_a)
    response = admin.post(_cancel_url(world.shipped), follow=True)
    assert "can no longer be cancelled" in response.content.decode()
    world.shipped.refresh_from_db()
    assert world.shipped.status == OrderStatus.SHIPPED


def test_the_change_list_actions_cancel_and_lead_to_the_refund_form(world):
    admin = world.admin(world.staff_a)
    changelist = reverse("admin:orders_order_changelist")
    refund = admin.post(
        changelist, {"action": "refund_order", ACTION_CHECKBOX_NAME: [world.shipped.pk]}
    )
    assert refund.status_code == 302
    assert refund["Location"] == _refund_url(world.shipped)
    admin.post(changelist, {"action": "cancel_orders", ACTION_CHECKBOX_NAME: [world.paid.pk]})
    world.paid.refresh_from_db()
    assert world.paid.status == OrderStatus.CANCELLED


def test_without_the_permissions_there_are_no_buttons_and_the_actions_are_403(world):
    world.staff_a.groups.clear()
    world.staff_a.user_permissions.set(Permission.objects.filter(codename="view_order"))
    admin = world.admin(world.staff_a)
    for order in (world.shipped, world.paid):
        page = admin.get(_page(order)).content.decode()
        assert _refund_url(order) not in page
        assert _cancel_url(order) not in page
    assert admin.get(_refund_url(world.shipped)).status_code == 403
    assert admin.post(_refund_url(world.shipped), {"amount": "1", "reason": "x"}).status_code == 403
    assert admin.post(_cancel_url(world.paid)).status_code == 403
    actions = admin.get(reverse("admin:orders_order_changelist")).context["action_form"]
    names = {name for name, _ in actions.fields["action"].choices}
    assert not names & {"refund_order", "cancel_orders"}
    assert not Refund.objects.exists()
    world.paid.refresh_from_db()
    assert world.paid.status == OrderStatus.PAID


def test_merchant_bs_staff_cannot_refund_or_cancel_as_order(world):
    admin = world.admin(world.staff_b)
    assert admin.get(_refund_url(world.shipped)).status_code == 404
    assert admin.post(_refund_url(world.shipped), {"amount": "1", "reason": "x"}).status_code == 404
    assert admin.post(_cancel_url(world.paid)).status_code == 404
    api = world.api(world.staff_b)
    refund = api.post(
        f"/api/v1/orders/{world.shipped.pk}/refunds/",
        {"amount": "1.00", "reason": "x"},
        content_type="application/json",
    )
    assert refund.status_code == 404
    assert api.post(f"/api/v1/orders/{world.paid.pk}/cancel/").status_code == 404
    assert not Refund.objects.exists()
    world.paid.refresh_from_db()
    assert world.paid.status == OrderStatus.PAID


def test_refund_and_cancel_forms_need_the_csrf_token(world):
    admin = world.admin(world.staff_a, enforce_csrf_checks=True)
    assert admin.post(_refund_url(world.shipped), {"amount": "1", "reason": "x"}).status_code == 403
    assert admin.post(_cancel_url(world.paid)).status_code == 403
    assert not Refund.objects.exists()


def test_the_merchant_staff_group_may_refund():
    group = merchant_staff_group_ensure()
    assert group.permissions.filter(codename="refund_order").exists()
    assert group.permissions.filter(codename="cancel_order").exists()


# --- The API ----------------------------------------------------------------------------------
def test_refunds_through_the_api_in_part_then_refused_above_what_is_left(
    world, django_capture_on_commit_callbacks
):
    api = world.api(world.staff_a)
    url = f"/api/v1/orders/{world.shipped.pk}/refunds/"
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(
            url, {"amount": "49.00", "reason": "Late"}, content_type="application/json"
        )
    assert created.status_code == 201
    body = created.json()
    # Run after the commit (here: when the test's transaction would commit), then answered.
    assert (body["number"], body["amount"]) == (1, "49.00")
    assert Refund.objects.get().status == "succeeded"
    too_much = api.post(
        url, {"amount": "100.01", "reason": "Late"}, content_type="application/json"
    )
    assert too_much.status_code == 409
    assert too_much.json()["error"]["code"] == "conflict"
    assert "at most $100.00" in too_much.json()["error"]["message"]
    order = api.get(f"/api/v1/orders/{world.shipped.pk}/").json()
    assert (order["status"], order["refunded_total"]) == ("partially_refunded", "49.00")
    assert _ledger_refunds() == [Decimal("49.00")]


def test_an_api_refund_of_an_order_not_captured_is_a_409_and_cancel_still_voids(world):
    api = world.api(world.staff_a)
    refused = api.post(
        f"/api/v1/orders/{world.paid.pk}/refunds/",
        {"amount": "1.00", "reason": "x"},
        content_type="application/json",
    )
    assert refused.status_code == 409
    assert "only a shipped, delivered" in refused.json()["error"]["message"]
    assert api.post(f"/api/v1/orders/{world.paid.pk}/cancel/").status_code == 200
    assert PaymentOperation.objects.filter(order=world.paid, operation="void").exists()


@pytest.mark.parametrize(
    "body",
    [{"amount": "0", "reason": "x"}, {"amount": "1.001", "reason": "x"}, {"amount": "1"}],
)
def test_an_api_refund_with_a_bad_amount_or_no_reason_is_a_400(world, body):
    api = world.api(world.staff_a)
    response = api.post(
        f"/api/v1/orders/{world.shipped.pk}/refunds/", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_an_api_token_without_the_refund_permission_gets_403(world):
    world.staff_a.groups.clear()
    world.staff_a.user_permissions.set(Permission.objects.filter(codename="view_order"))
    response = world.api(world.staff_a).post(
        f"/api/v1/orders/{world.shipped.pk}/refunds/",
        {"amount": "1.00", "reason": "x"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert not Refund.objects.exists()


def test_the_schema_documents_the_refund_endpoint():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/orders/{id}/refunds/"]["post"]
    assert {"201", "409", "404", "403"} <= set(operation["responses"])
    assert "requestBody" in operation


# --- PostgreSQL: two refunds at once ----------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_refunds_at_once_that_together_exceed_the_capture_one_is_accepted():
    shop_open()
    order = order_shipped(address=UNTAXED)
    barrier = threading.Barrier(2)
    accepted: list[int] = []
    refused: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            barrier.wait(timeout=30)
            refund = order_refund(
                order_id=order.pk,
                amount=Decimal("100.00"),
                reason="race",
                restock=False,
                now=timezone.now(),
                actor_label="test",
            )
            accepted.append(refund.pk)
        except ApplicationError as exc:
            refused.append(exc.message)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(accepted) == 1
    assert len(refused) == 1
    assert "at most $49.00" in refused[0]
    order.refresh_from_db()
    assert order.refund_requested_total == Decimal("100.00")
    assert Refund.objects.count() == 1
    stage_payments(now=timezone.now())
    assert _ledger_refunds() == [Decimal("100.00")]
