"""Webhook endpoints' signing secrets encrypted at rest (``core.crypto``, issue 14): never in
clear in the database, decrypted to sign, re-encrypted by ``rotate_credentials`` without a
delivery failing to verify."""

import importlib
import io
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from orders.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from orders.services.webhooks import (
    webhook_deliveries_send_due,
    webhook_endpoint_secret,
    webhook_endpoint_secret_rotate,
    webhook_secret_new,
)
from orders.tests.test_webhooks import Receiver, _endpoint, _record

pytestmark = pytest.mark.django_db

CURRENT, PREVIOUS = (
    "orders.WebhookEndpoint.secret_encrypted",
    "orders.WebhookEndpoint.previous_secret_encrypted",
)
OLD, NEW, LOST = (Fernet.generate_key().decode() for _ in range(3))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _columns(endpoint: WebhookEndpoint) -> tuple[str, str]:
    """What the database holds, read past the model."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret_encrypted, previous_secret_encrypted FROM orders_webhookendpoint "
            "WHERE id = %s",
            [endpoint.pk],
        )
        return cursor.fetchone()


def _rotate_keys(*args: str) -> tuple[str, str, int]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("rotate_credentials", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return out.getvalue(), err.getvalue(), int(exit_.code or 0)
    return out.getvalue(), err.getvalue(), 0


def _line(out: str, label: str) -> str:
    [line] = [line for line in out.splitlines() if line.startswith(label + ":")]
    return line


def test_the_database_never_holds_a_secret_in_clear(receiver, settings):
    settings.CREDENTIALS_KEYS = [OLD]
    endpoint = _endpoint(receiver)
    first = webhook_endpoint_secret(endpoint=endpoint)
    rotated = webhook_endpoint_secret_rotate(endpoint_id=endpoint.pk, now=timezone.now())
    second = webhook_endpoint_secret(endpoint=rotated)
    assert (first[:6], second[:6]) == ("whsec_", "whsec_")
    assert first != second
    current, previous = _columns(endpoint)
    for stored in (current, previous):
        assert "whsec_" not in stored
        assert first.removeprefix("whsec_") not in stored
        assert second.removeprefix("whsec_") not in stored
    # Sealed with the configured key, the previous secret moved over as it was.
    assert Fernet(OLD).decrypt(current.encode()).decode() == second
    assert Fernet(OLD).decrypt(previous.encode()).decode() == first


def test_rotating_the_keys_keeps_every_delivery_verifiable(receiver, settings):
    settings.CREDENTIALS_KEYS = [OLD]
    endpoint = _endpoint(receiver)
    old_secret = webhook_endpoint_secret(endpoint=endpoint)
    now = timezone.now()
    webhook_endpoint_secret_rotate(endpoint_id=endpoint.pk, now=now)
    new_secret = webhook_endpoint_secret(endpoint=WebhookEndpoint.objects.get(pk=endpoint.pk))
    before = _columns(endpoint)

    settings.CREDENTIALS_KEYS = [NEW, OLD]
    out, _, status = _rotate_keys("--dry-run")
    assert status == 0
    assert "1 would be re-encrypted" in _line(out, CURRENT)
    assert _columns(endpoint) == before

    out, _, status = _rotate_keys()
    assert status == 0
    assert "1 re-encrypted" in _line(out, CURRENT)
    assert "1 re-encrypted" in _line(out, PREVIOUS)
    out, _, _ = _rotate_keys()  # again: nothing left to do
    assert "0 re-encrypted with the first key, 1 already current" in _line(out, CURRENT)

    # The old key can go: deliveries are still signed with both secrets of the overlap.
    settings.CREDENTIALS_KEYS = [NEW]
    current, _ = _columns(endpoint)
    assert Fernet(NEW).decrypt(current.encode()).decode() == new_secret
    _record(endpoint, now=now)
    assert webhook_deliveries_send_due(now=now).delivered == 1
    [(headers, body)] = receiver.requests
    assert Webhook(new_secret).verify(body, headers)["type"] == "campaign.sold_out"
    assert Webhook(old_secret).verify(body, headers)["type"] == "campaign.sold_out"


def test_a_secret_no_key_reads_holds_its_delivery_back_and_is_named(receiver, settings):
    settings.CREDENTIALS_KEYS = [LOST]
    lost = _endpoint(receiver)
    settings.CREDENTIALS_KEYS = [NEW]
    _record(lost)
    summary = webhook_deliveries_send_due(now=timezone.now())
    assert (summary.delivered, receiver.requests) == (0, [])  # never sent unsigned
    delivery = WebhookDelivery.objects.get(endpoint=lost)
    assert delivery.status == WebhookDeliveryStatus.QUEUED
    assert "cannot be read" in delivery.last_error
    out, err, status = _rotate_keys()
    assert status == 1
    assert "1 unreadable" in _line(out, CURRENT)
    assert str(lost.pk) in err


def test_the_migration_encrypts_the_secrets_stored_in_clear(receiver, settings):
    settings.CREDENTIALS_KEYS = [OLD]
    endpoint = _endpoint(receiver)
    clear, previous = webhook_secret_new(), webhook_secret_new()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        secret_encrypted=clear, previous_secret_encrypted=previous
    )
    migration = importlib.import_module("orders.migrations.0026_webhook_secrets_encrypted")
    migration.encrypt(apps, None)
    migration.encrypt(apps, None)  # what is encrypted already stays as it is
    current, kept = _columns(endpoint)
    assert "whsec_" not in current + kept
    assert Fernet(OLD).decrypt(current.encode()).decode() == clear
    assert Fernet(OLD).decrypt(kept.encode()).decode() == previous
    migration.decrypt(apps, None)
    assert _columns(endpoint) == (clear, previous)
