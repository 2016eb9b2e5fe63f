"""/healthz, request ids in logs and tasks, JSON log lines (issue 5)."""

import json
import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.test import Client
from django.utils import timezone

from core.health import HealthReport
from core.logging import HashcartJsonFormatter, RequestIdFilter
from core.request_id import _adopt, _carry, request_id
from social.models import FeedCursor, FeedKind
from tests.shop import shop_open

pytestmark = pytest.mark.django_db


def _health(client=None):
    response = (client or Client()).get("/healthz", {"format": "json"})
    return response.status_code, response.json()


def _fresh_feed():
    shop = shop_open()
    FeedCursor.objects.update_or_create(
        account=shop.account, feed=FeedKind.MENTIONS, defaults={"polled_at": timezone.now()}
    )
    return shop


def test_healthy_when_the_database_broker_and_feeds_are():
    _fresh_feed()
    status, body = _health()
    assert status == 200, body
    assert sorted(name.split("(")[0] for name in body) == [
        "Broker",
        "Database",
        "FeedLag",
        "PaymentFailures",
    ]
    assert set(body.values()) == {"OK"}


def test_a_feed_not_read_for_too_long_is_unhealthy(settings):
    shop = _fresh_feed()
    FeedCursor.objects.update(polled_at=timezone.now() - timedelta(hours=2))
    status, body = _health()
    assert status == 500
    assert f"@{shop.account.handle} (sandbox) is not being read" in json.dumps(body)


def test_a_stopped_feed_is_unhealthy():
    shop = _fresh_feed()
    FeedCursor.objects.update(stopped=True)
    status, body = _health()
    assert status == 500
    assert f"@{shop.account.handle} (sandbox) is stopped" in json.dumps(body)


def sick() -> HealthReport:
    return HealthReport(name="Sick", ok=False, detail="Something is wrong.")


def test_the_apps_checks_are_the_ones_named_in_settings(settings):
    settings.HASHCART = {**settings.HASHCART, "HEALTH_CHECKS": [f"{__name__}.sick"]}
    status, body = _health()
    assert status == 500
    assert sorted(body) == ["Broker()", "Database(alias='default')", "Sick()"]
    assert body["Sick()"] == "Unavailable: Something is wrong."


def test_an_unreachable_broker_is_unhealthy(settings):
    _fresh_feed()
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    status, body = _health()
    assert status == 500
    assert "The Celery broker is unreachable." in json.dumps(body)
    assert "127.0.0.1:1" not in json.dumps(body)  # no addresses or secrets in the report


# --- Request ids --------------------------------------------------------------------------------
def test_every_response_has_a_request_id_and_a_sane_incoming_one_is_kept():
    made = Client().get("/")["X-Request-ID"]
    assert len(made) == 32
    kept = Client(headers={"X-Request-ID": "edge-1234abcd"}).get("/")["X-Request-ID"]
    assert kept == "edge-1234abcd"
    replaced = Client(headers={"X-Request-ID": "bad id\nwith newline"}).get("/")["X-Request-ID"]
    assert replaced != "bad id\nwith newline"
    assert len(replaced) == 32


def test_log_lines_carry_the_request_id_as_json():
    record = logging.LogRecord("orders", logging.INFO, __file__, 1, "paid %s", ("#ABCDE",), None)
    token = request_id.set("req-0001-abcdef")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id.reset(token)
    line = json.loads(HashcartJsonFormatter().format(record))
    assert line["request_id"] == "req-0001-abcdef"
    assert line["message"] == "paid #ABCDE"
    assert (line["level"], line["logger"]) == ("INFO", "orders")


def test_tasks_carry_the_request_id_of_the_request_that_started_them():
    headers: dict = {}
    token = request_id.set("req-0002-abcdef")
    try:
        _carry(headers=headers)
    finally:
        request_id.reset(token)
    assert headers["request_id"] == "req-0002-abcdef"
    # In the worker, the task's lines are logged under it.
    _adopt(task=SimpleNamespace(request=SimpleNamespace(request_id=headers["request_id"])))
    assert request_id.get() == "req-0002-abcdef"
    _adopt(task=SimpleNamespace(request=SimpleNamespace()))
    assert request_id.get() == ""
