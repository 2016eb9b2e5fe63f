"""Signed outbound webhooks (issue 14): signatures that a receiver verifies with the
``standardwebhooks`` library, backoff, disabling, sending again, secret rotation, URLs.

The alerts helper's ``alert_raise`` is still a stub on this branch: tests that disable an
endpoint patch it where the sender calls it and check the call.
"""

import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from catalog.tests.factories import MerchantFactory
from orders.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEvent,
)
from orders.services.webhooks import (
    webhook_deliveries_send_due,
    webhook_delivery_resend,
    webhook_endpoint_create,
    webhook_endpoint_secret,
    webhook_endpoint_secret_rotate,
    webhook_endpoint_update,
    webhook_event_record,
    webhook_url_validate,
)

pytestmark = pytest.mark.django_db


class Receiver:
    """A local HTTP endpoint: keeps every request; answers ``answer()`` (200 by default)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answer: Callable[[], int] = lambda: 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers.items()), body))
                self.send_response(receiver.answer())
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _endpoint(receiver, events=None, merchant=None):
    return webhook_endpoint_create(
        merchant_id=(merchant or MerchantFactory()).pk,
        url=receiver.url,
        events=events or ["campaign.sold_out"],
    )


def _record(endpoint: WebhookEndpoint, key: str = "sold-out:1", now=None) -> None:
    webhook_event_record(
        merchant_id=endpoint.merchant_id,
        event_type="campaign.sold_out",
        data={"campaign": {"id": 1, "hashtag": "BuyThing"}},
        event_key=key,
        now=now or timezone.now(),
    )


# --- Signatures ------------------------------------------------------------------------------
def test_a_delivery_verifies_with_the_endpoints_secret_and_not_with_another(receiver):
    endpoint = _endpoint(receiver)
    assert webhook_endpoint_secret(endpoint=endpoint).startswith("whsec_")
    _record(endpoint)
    summary = webhook_deliveries_send_due(now=timezone.now())
    assert summary.delivered == 1
    [(headers, body)] = receiver.requests
    payload = Webhook(webhook_endpoint_secret(endpoint=endpoint)).verify(body, headers)
    assert payload["type"] == "campaign.sold_out"
    assert payload["data"] == {"campaign": {"id": 1, "hashtag": "BuyThing"}}
    assert headers["webhook-id"] == WebhookEvent.objects.get().event_id
    other = webhook_endpoint_create(
        merchant_id=endpoint.merchant_id, url=receiver.url, events=["order.paid"]
    )
    with pytest.raises(WebhookVerificationError):
        Webhook(webhook_endpoint_secret(endpoint=other)).verify(body, headers)
    changed = body.replace(b"BuyThing", b"BuyOther")
    with pytest.raises(WebhookVerificationError):  # a changed body fails too
        Webhook(webhook_endpoint_secret(endpoint=endpoint)).verify(changed, headers)


def test_after_a_rotation_both_secrets_verify_until_the_overlap_ends(receiver):
    endpoint = _endpoint(receiver)
    old = webhook_endpoint_secret(endpoint=endpoint)
    now = timezone.now()
    rotated = webhook_endpoint_secret_rotate(endpoint_id=endpoint.pk, now=now)
    assert webhook_endpoint_secret(endpoint=rotated) != old
    _record(endpoint, key="a", now=now)
    webhook_deliveries_send_due(now=now)
    headers, body = receiver.requests[-1]
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(body, headers)
    Webhook(webhook_endpoint_secret(endpoint=rotated)).verify(body, headers)
    later = now + timedelta(hours=25)
    with time_machine.travel(later, tick=False):
        _record(endpoint, key="b", now=later)
        webhook_deliveries_send_due(now=later)
        headers, body = receiver.requests[-1]
        Webhook(webhook_endpoint_secret(endpoint=rotated)).verify(body, headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(body, headers)


# --- Once per event, same id on every attempt ---------------------------------------------
def test_an_event_recorded_twice_is_one_event_with_one_delivery_per_endpoint(receiver):
    endpoint = _endpoint(receiver)
    webhook_endpoint_create(
        merchant_id=endpoint.merchant_id, url=receiver.url, events=["campaign.low_stock"]
    )
    _record(endpoint)
    _record(endpoint)
    assert WebhookEvent.objects.count() == 1
    # Only the endpoint subscribed to the type gets it.
    assert list(WebhookDelivery.objects.values_list("endpoint_id", flat=True)) == [endpoint.pk]


def test_nothing_is_recorded_when_no_endpoint_listens():
    merchant = MerchantFactory()
    webhook_event_record(
        merchant_id=merchant.pk,
        event_type="campaign.sold_out",
        data={},
        event_key="k",
        now=timezone.now(),
    )
    assert not WebhookEvent.objects.exists()


def test_every_retry_carries_the_same_webhook_id_and_body(receiver):
    endpoint = _endpoint(receiver)
    answers = iter([500, 503, 200])
    receiver.answer = lambda: next(answers)
    now = timezone.now()
    _record(endpoint, now=now)
    for step in range(3):
        webhook_deliveries_send_due(now=now + timedelta(minutes=step))
    ids = {h["webhook-id"] for h, _ in receiver.requests}
    bodies = {b for _, b in receiver.requests}
    assert len(receiver.requests) == 3
    assert len(ids) == 1
    assert len(bodies) == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDeliveryStatus.DELIVERED
    assert list(delivery.tries.order_by("id").values_list("status_code", flat=True)) == [
        500,
        503,
        200,
    ]


# --- Backoff, giving up, disabling ------------------------------------------------------------
def test_failures_back_off_exponentially_and_give_up_after_three_days(receiver):
    endpoint = _endpoint(receiver)
    receiver.answer = lambda: 500
    start = timezone.now()
    _record(endpoint, now=start)
    delivery = WebhookDelivery.objects.get()
    assert delivery.give_up_at == start + timedelta(days=3)
    waits = []
    now = start
    with mock.patch("orders.services.webhooks.sending.alert_raise"):
        while True:
            webhook_deliveries_send_due(now=now)
            delivery.refresh_from_db()
            if delivery.status != WebhookDeliveryStatus.QUEUED:
                break
            waits.append(delivery.next_attempt_at - now)
            now = delivery.next_attempt_at
    seconds = [w.total_seconds() for w in waits]
    assert seconds[:5] == [5, 10, 20, 40, 80]
    assert max(seconds) == 6 * 3600  # capped
    assert delivery.status == WebhookDeliveryStatus.FAILED
    assert now == start + timedelta(days=3)  # the last try is at the deadline
    assert delivery.attempts == len(seconds) + 1 == WebhookAttempt.objects.count()


def test_an_endpoint_failing_for_days_is_disabled_once_and_its_merchant_alerted(receiver):
    endpoint = _endpoint(receiver)
    receiver.answer = lambda: 500
    start = timezone.now()
    _record(endpoint, key="1", now=start)
    with mock.patch("orders.services.webhooks.sending.alert_raise") as alert:
        webhook_deliveries_send_due(now=start)
        endpoint.refresh_from_db()
        assert endpoint.failing_since == start
        # A day later, a second event fails too: still enabled.
        _record(endpoint, key="2", now=start + timedelta(days=1))
        webhook_deliveries_send_due(now=start + timedelta(days=1))
        endpoint.refresh_from_db()
        assert endpoint.enabled
        _record(endpoint, key="3", now=start + timedelta(hours=71))
        late = start + timedelta(hours=72)
        summary = webhook_deliveries_send_due(now=late)
        assert summary.disabled == [endpoint.pk]
        webhook_deliveries_send_due(now=late + timedelta(hours=1))
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert endpoint.disabled_at == late
    alert.assert_called_once()
    assert alert.call_args.kwargs["kind"] == "webhook_disabled"
    # Once per disabling: the cause names the endpoint and when it was disabled.
    assert alert.call_args.kwargs["cause"] == f"{endpoint.pk}:{late:%Y%m%dT%H%M%S}"
    assert alert.call_args.kwargs["merchant_id"] == endpoint.merchant_id
    assert not WebhookDelivery.objects.filter(status=WebhookDeliveryStatus.QUEUED).exists()
    # New events are held for a disabled endpoint, not sent.
    _record(endpoint, key="4", now=late)
    held = WebhookDelivery.objects.get(event__event_key="4")
    assert held.status == WebhookDeliveryStatus.HELD


def test_a_success_ends_the_failing_streak(receiver):
    endpoint = _endpoint(receiver)
    answers = iter([500, 200])
    receiver.answer = lambda: next(answers)
    start = timezone.now()
    _record(endpoint, key="1", now=start)
    webhook_deliveries_send_due(now=start)
    endpoint.refresh_from_db()
    assert endpoint.failing_since == start
    webhook_deliveries_send_due(now=start + timedelta(hours=1))
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


# --- Send again -------------------------------------------------------------------------------
def test_send_again_requeues_a_failed_delivery_with_the_same_webhook_id(receiver):
    endpoint = _endpoint(receiver)
    receiver.answer = lambda: 500
    now = timezone.now()
    _record(endpoint, now=now)
    WebhookDelivery.objects.update(give_up_at=now)  # its last attempt
    webhook_deliveries_send_due(now=now)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDeliveryStatus.FAILED
    receiver.answer = lambda: 200
    webhook_delivery_resend(delivery_id=delivery.pk, now=now)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.QUEUED
    assert delivery.give_up_at == now + timedelta(days=3)
    webhook_deliveries_send_due(now=now)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.DELIVERED
    first, second = receiver.requests
    assert first[0]["webhook-id"] == second[0]["webhook-id"]
    Webhook(webhook_endpoint_secret(endpoint=endpoint)).verify(second[1], second[0])


def test_send_again_is_refused_while_the_endpoint_is_disabled(receiver):
    from core.exceptions import ApplicationError

    endpoint = _endpoint(receiver)
    _record(endpoint)
    webhook_endpoint_update(endpoint=endpoint, now=timezone.now(), enabled=False)
    with pytest.raises(ApplicationError):
        webhook_delivery_resend(delivery_id=WebhookDelivery.objects.get().pk, now=timezone.now())


# --- Endpoints --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "https://user:pw@example.com/hooks",
        "https://token@example.com/hooks",
        "ftp://example.com/hooks",
        "https://example.com/hooks#frag",
        "not a url",
    ],
)
def test_urls_with_credentials_or_other_schemes_are_refused(url):
    with pytest.raises(ValidationError):
        webhook_url_validate(url)


def test_production_requires_https_and_a_public_address(settings):
    settings.HASHCART = {
        **settings.HASHCART,
        "WEBHOOKS": {**settings.HASHCART["WEBHOOKS"], "REQUIRE_HTTPS": True},
    }
    for url in (
        "http://example.com/hooks",
        "https://127.0.0.1/hooks",
        "https://10.1.2.3/hooks",
        "https://localhost/hooks",
        "https://[::1]/hooks",
    ):
        with pytest.raises(ValidationError):
            webhook_url_validate(url)
    webhook_url_validate("https://hooks.example.com/hashcart")


def test_unknown_or_no_events_are_refused():
    merchant = MerchantFactory()
    for events in ([], ["order.exploded"]):
        with pytest.raises(ValidationError):
            webhook_endpoint_create(
                merchant_id=merchant.pk, url="https://example.com/h", events=events
            )


def test_a_return_group_subscription_takes_every_return_step(receiver):
    endpoint = _endpoint(receiver, events=["return.*"])
    for event_type in ("return.requested", "return.refunded", "dispute.opened"):
        webhook_event_record(
            merchant_id=endpoint.merchant_id,
            event_type=event_type,
            data={},
            event_key=event_type,
            now=timezone.now(),
        )
    assert sorted(WebhookEvent.objects.values_list("type", flat=True)) == [
        "return.refunded",
        "return.requested",
    ]


@override_settings()
def test_the_payload_schema_is_in_the_openapi_document():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert schema["openapi"].startswith("3.1")
    assert set(schema["webhooks"]) == {
        "order_event",
        "return_event",
        "dispute_event",
        "campaign_event",
    }
    order = schema["components"]["schemas"]["WebhookOrderPayload"]["properties"]
    assert {"code", "status", "campaign", "product", "quantity", "total"} <= set(order)
    assert not {"email", "ship_to", "card", "address"} & set(order)
    body = json.dumps(schema["webhooks"])
    assert "WebhookOrderEvent" in body


def test_in_production_a_host_resolving_inside_our_network_is_not_sent_to(settings):
    endpoint = webhook_endpoint_create(
        merchant_id=MerchantFactory().pk, url="https://hooks.example.com/h", events=["order.paid"]
    )
    webhook_event_record(
        merchant_id=endpoint.merchant_id,
        event_type="order.paid",
        data={},
        event_key="k",
        now=timezone.now(),
    )
    settings.HASHCART = {
        **settings.HASHCART,
        "WEBHOOKS": {**settings.HASHCART["WEBHOOKS"], "REQUIRE_HTTPS": True},
    }
    internal = [(2, 1, 6, "", ("169.254.169.254", 0))]
    with (
        mock.patch("socket.getaddrinfo", return_value=internal),
        mock.patch("urllib3.PoolManager.request") as request,
    ):
        summary = webhook_deliveries_send_due(now=timezone.now())
    request.assert_not_called()
    assert summary.retrying == 1
    assert "public address" in WebhookDelivery.objects.get().last_error


def test_a_failing_alert_leaves_the_attempts_recorded_and_the_endpoint_to_the_next_sweep(receiver):
    endpoint = _endpoint(receiver)
    receiver.answer = lambda: 500
    start = timezone.now()
    _record(endpoint, now=start)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=start - timedelta(days=4))
    with mock.patch(
        "orders.services.webhooks.sending.alert_raise", side_effect=RuntimeError("mail down")
    ):
        summary = webhook_deliveries_send_due(now=start)
    assert summary.disabled == []
    assert WebhookAttempt.objects.count() == 1
    endpoint.refresh_from_db()
    assert endpoint.enabled
    assert WebhookDelivery.objects.get().status == WebhookDeliveryStatus.QUEUED


def test_queued_deliveries_ask_for_a_sweep_once_committed(
    receiver, django_capture_on_commit_callbacks
):
    endpoint = _endpoint(receiver)
    with (
        mock.patch("orders.tasks.webhooks_send_soon") as soon,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        _record(endpoint, key="a")
        assert not soon.called  # not before the commit
    assert len(callbacks) == 1
    soon.assert_called_once_with()
    with (
        mock.patch("orders.tasks.webhooks_send_soon") as soon,
        django_capture_on_commit_callbacks(execute=True),
    ):
        _record(endpoint, key="a")  # recorded already: nothing queued, nothing asked
    soon.assert_not_called()
