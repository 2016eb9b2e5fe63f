"""Webhooks in the back office and the API (issue 14): staff see and act on their merchant's
endpoints and deliveries only; "Send again" and "Rotate secret" are POSTs with CSRF."""

import pytest
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken

from accounts.services import staff_user_upsert
from catalog.tests.factories import MerchantFactory
from orders.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from orders.services.webhooks import (
    webhook_endpoint_create,
    webhook_endpoint_disable,
    webhook_endpoint_secret,
    webhook_event_record,
)
from tests.mfa import totp_enable

pytestmark = pytest.mark.django_db


class World:
    def __init__(self):
        self.a, self.b = MerchantFactory(), MerchantFactory()
        self.a_endpoint, self.a_delivery = self._hooked(self.a)
        self.b_endpoint, self.b_delivery = self._hooked(self.b)
        self.staff_a = staff_user_upsert(
            username="staff-a", email="a@example.com", password="pw", merchant_id=self.a.pk
        )
        totp_enable(self.staff_a)

    @staticmethod
    def _hooked(merchant):
        endpoint = webhook_endpoint_create(
            merchant_id=merchant.pk, url="https://example.com/h", events=["campaign.sold_out"]
        )
        webhook_event_record(
            merchant_id=merchant.pk,
            event_type="campaign.sold_out",
            data={},
            event_key="k",
            now=timezone.now(),
        )
        WebhookDelivery.objects.filter(endpoint=endpoint).update(
            status=WebhookDeliveryStatus.FAILED
        )
        return endpoint, WebhookDelivery.objects.get(endpoint=endpoint)


@pytest.fixture
def world():
    return World()


@pytest.fixture
def staff(client, world):
    client.force_login(world.staff_a)
    return client


def test_staff_list_only_their_endpoints_and_deliveries(staff, world):
    endpoints = staff.get("/admin/orders/webhookendpoint/").content.decode()
    assert f"/admin/orders/webhookendpoint/{world.a_endpoint.pk}/change/" in endpoints
    assert f"/admin/orders/webhookendpoint/{world.b_endpoint.pk}/change/" not in endpoints
    deliveries = staff.get("/admin/orders/webhookdelivery/").content.decode()
    assert f"/admin/orders/webhookdelivery/{world.a_delivery.pk}/change/" in deliveries
    assert f"/admin/orders/webhookdelivery/{world.b_delivery.pk}/change/" not in deliveries


def test_another_merchants_endpoint_and_delivery_are_not_found(staff, world):
    for path in (
        f"/admin/orders/webhookendpoint/{world.b_endpoint.pk}/change/",
        f"/admin/orders/webhookdelivery/{world.b_delivery.pk}/change/",
    ):
        assert staff.get(path).status_code == 404
    assert (
        staff.post(f"/admin/orders/webhookdelivery/{world.b_delivery.pk}/send-again/").status_code
        == 404
    )
    assert (
        staff.post(
            f"/admin/orders/webhookendpoint/{world.b_endpoint.pk}/rotate-secret/"
        ).status_code
        == 404
    )
    world.b_delivery.refresh_from_db()
    assert world.b_delivery.status == WebhookDeliveryStatus.FAILED


def test_staff_see_their_secret_and_send_a_delivery_again_by_post(staff, world):
    page = staff.get(f"/admin/orders/webhookdelivery/{world.a_delivery.pk}/change/")
    assert page.status_code == 200
    assert b"Send again" in page.content
    url = f"/admin/orders/webhookdelivery/{world.a_delivery.pk}/send-again/"
    assert staff.get(url).status_code == 405  # a link cannot send it
    assert staff.post(url).status_code == 302
    world.a_delivery.refresh_from_db()
    assert world.a_delivery.status == WebhookDeliveryStatus.QUEUED
    endpoint_page = staff.get(f"/admin/orders/webhookendpoint/{world.a_endpoint.pk}/change/")
    assert webhook_endpoint_secret(endpoint=world.a_endpoint).encode() in endpoint_page.content


def test_send_again_needs_the_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.staff_a)
    url = f"/admin/orders/webhookdelivery/{world.a_delivery.pk}/send-again/"
    assert client.post(url).status_code == 403
    world.a_delivery.refresh_from_db()
    assert world.a_delivery.status == WebhookDeliveryStatus.FAILED


def test_staff_add_an_endpoint_for_their_merchant_in_the_admin(staff, world):
    response = staff.post(
        "/admin/orders/webhookendpoint/add/",
        {
            "url": "https://hooks.example.com/x",
            "description": "",
            "events": ["order.paid"],
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content
    created = WebhookEndpoint.objects.get(url="https://hooks.example.com/x")
    assert created.merchant_id == world.a.pk
    assert webhook_endpoint_secret(endpoint=created).startswith("whsec_")
    refused = staff.post(
        "/admin/orders/webhookendpoint/add/",
        {"url": "https://u:p@hooks.example.com/y", "events": ["order.paid"], "enabled": "on"},
    )
    assert refused.status_code == 200
    assert not WebhookEndpoint.objects.filter(url__contains="hooks.example.com/y").exists()


def test_staff_enabling_a_disabled_endpoint_sends_what_was_held(staff, world):
    endpoint = world.a_endpoint
    now = timezone.now()
    endpoint.failing_since = now
    endpoint.save()
    webhook_endpoint_disable(endpoint=endpoint, now=now)
    webhook_event_record(
        merchant_id=world.a.pk, event_type="campaign.sold_out", data={}, event_key="k2", now=now
    )
    held = WebhookDelivery.objects.get(endpoint=endpoint, event__event_key="k2")
    assert held.status == WebhookDeliveryStatus.HELD
    response = staff.post(
        f"/admin/orders/webhookendpoint/{endpoint.pk}/change/",
        {"url": endpoint.url, "description": "", "events": ["campaign.sold_out"], "enabled": "on"},
        follow=True,
    )
    assert response.status_code == 200
    endpoint.refresh_from_db()
    assert endpoint.enabled
    assert endpoint.disabled_at is None
    held.refresh_from_db()
    assert held.status == WebhookDeliveryStatus.QUEUED
    assert "being sent now" in response.content.decode()


def test_the_api_lists_creates_and_rotates_within_the_tokens_merchant(world):
    _, token = AuthToken.objects.create(user=world.staff_a)
    api = Client(headers={"Authorization": f"Token {token}"})
    listed = api.get("/api/v1/webhook-endpoints/").json()["results"]
    assert [row["id"] for row in listed] == [world.a_endpoint.pk]
    assert listed[0]["secret"] == webhook_endpoint_secret(endpoint=world.a_endpoint)
    assert api.get(f"/api/v1/webhook-endpoints/{world.b_endpoint.pk}/").status_code == 404
    assert (
        api.post(f"/api/v1/webhook-endpoints/{world.b_endpoint.pk}/rotate-secret/").status_code
        == 404
    )
    created = api.post(
        "/api/v1/webhook-endpoints/",
        {"url": "https://hooks.example.com/api", "events": ["order.created", "dispute.*"]},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    assert WebhookEndpoint.objects.get(pk=created.json()["id"]).merchant_id == world.a.pk
    bad = api.post(
        "/api/v1/webhook-endpoints/",
        {"url": "https://u:p@hooks.example.com/api", "events": ["order.created"]},
        content_type="application/json",
    )
    assert bad.status_code == 400
    rotated = api.post(f"/api/v1/webhook-endpoints/{world.a_endpoint.pk}/rotate-secret/")
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != webhook_endpoint_secret(endpoint=world.a_endpoint)


def test_operators_see_every_merchants_endpoints_and_add_one_for_a_merchant(client, world):
    from accounts.services import operator_upsert

    operator = operator_upsert(username="op", email="op@example.com", password="pw")
    totp_enable(operator)
    client.force_login(operator)
    listed = client.get("/admin/orders/webhookendpoint/").content.decode()
    for endpoint in (world.a_endpoint, world.b_endpoint):
        assert f"/admin/orders/webhookendpoint/{endpoint.pk}/change/" in listed
    response = client.post(
        "/admin/orders/webhookendpoint/add/",
        {
            "merchant": world.b.pk,
            "url": "https://hooks.example.com/op",
            "description": "",
            "events": ["campaign.low_stock"],
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content
    assert WebhookEndpoint.objects.get(url="https://hooks.example.com/op").merchant_id == world.b.pk


def test_an_endpoints_page_links_to_its_deliveries(staff, world):
    page = staff.get(f"/admin/orders/webhookendpoint/{world.a_endpoint.pk}/change/")
    link = f"/admin/orders/webhookdelivery/?endpoint__id__exact={world.a_endpoint.pk}"
    assert link in page.content.decode()
    listed = staff.get(link).content.decode()
    assert f"/admin/orders/webhookdelivery/{world.a_delivery.pk}/change/" in listed
