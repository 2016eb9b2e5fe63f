"""No card number anywhere: the database, the logs, the broker (issue 4, DESIGN §6).

Runs after the whole suite (``after_everything``). It first enters cards through the linking
page, with a Luhn-valid number that is refused and a test number that is vaulted, and buys with
the card, so the paths a number could leak by are exercised; then it scans the database dump
(sessions decoded), every log line of the run and every message left in the broker for
Luhn-valid runs of 13 to 19 digits.
"""

import io
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import redis
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.services import cardholder_upsert, consent_give, identity_link
from conftest import CAPTURED_LOGS, require_service
from sandbox.services import sandbox_user_ensure
from sandbox.vault import luhn_valid
from tests.shop import BRAND, post, shop_open, tick

pytestmark = [pytest.mark.after_everything, pytest.mark.django_db]

# Card numbers as people and systems write them: 13 to 19 digits in one run, or in the usual
# groups (4-4-4-4[-3], Amex 4-6-5) separated by spaces or dashes, standing alone (not inside a
# longer word such as a hex token or a UUID), starting with a card scheme's digit (2 to 6).
_CARD_LIKE = re.compile(
    r"(?<![\w-])(?:[2-6]\d{12,18}"
    r"|[2-6]\d{3}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?"
    r"|3\d{3}([ -])\d{6}\2\d{5})(?![\w-])"
)
ENTERED = ("4242424242424242", "4111111111111111", "4000000000000002")


def card_numbers_in(text: str) -> list[str]:
    found = []
    for match in _CARD_LIKE.finditer(text):
        digits = re.sub(r"[ -]", "", match.group(0))
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            found.append(digits)
    return found


def test_the_scanner_finds_what_it_should():
    assert card_numbers_in(
        "card 4242 4242 4242 4242 and 4000-0000-0000-0002, 4111111111111111"
    ) == [
        "4242424242424242",
        "4000000000000002",
        "4111111111111111",
    ]
    assert card_numbers_in("amex 3782 822463 10005.") == ["378282246310005"]
    # Not card numbers: a UUID's groups, digits inside a hex token, Luhn-invalid, too short.
    assert card_numbers_in("task 00965599-6410-9aaa-bbbb-cccccccccccc") == []
    assert card_numbers_in("tok_sandbox_4242424242424242ab and 4242424242424241") == []
    assert card_numbers_in("order 424242424242") == []


def _enter_cards_and_buy() -> None:
    shop_open()
    cardholder = cardholder_upsert(email="scan@example.com", password="pw-scan-123")
    client = Client()
    client.force_login(cardholder.user)
    for number in ENTERED:
        client.post(
            reverse("accounts:link_card"),
            {"number": number, "exp_month": "12", "exp_year": "2031"},
        )
    client.post(
        reverse("accounts:link_address"),
        {
            "billing_name": "Scan",
            "address_line1": "1 Main Street",
            "city": "Springfield",
            "state": "IL",
            "postal_code": "62701",
        },
    )
    consent_give(cardholder=cardholder, now=timezone.now())
    buyer = sandbox_user_ensure(handle="scanner")
    identity_link(
        cardholder=cardholder,
        platform="sandbox",
        platform_user_id=str(buyer.pk),
        handle="scanner",
        now=timezone.now() - timedelta(days=2),
    )
    post("scanner", f"@{BRAND} #BuyKindleFireHD")
    tick()


def test_no_card_number_in_the_database_the_logs_or_the_broker(settings):
    _enter_cards_and_buy()

    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    sessions = "\n".join(repr(SessionStore().decode(s.session_data)) for s in Session.objects.all())
    assert Session.objects.exists()  # the scan saw the sessions the card form used
    assert card_numbers_in(dump.getvalue() + sessions) == []

    logs = "\n".join(CAPTURED_LOGS)
    assert logs  # the run logged, and all of it is scanned
    found = card_numbers_in(logs)
    assert found == [], [line for line in CAPTURED_LOGS if any(n in line for n in found)][:3]

    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis"):
        require_service("Redis is not configured (set REDIS_URL): no broker messages to scan")
    base = url.rsplit("/", 1)[0]
    messages: list[str] = []
    for db in {urlsplit(url).path.strip("/") or "0", "15"}:
        broker = redis.Redis.from_url(f"{base}/{db}")
        for key in broker.scan_iter():
            kind = broker.type(key)
            if kind == b"list":
                messages += [m.decode(errors="replace") for m in broker.lrange(key, 0, -1)]
            elif kind == b"hash":
                messages += [v.decode(errors="replace") for v in broker.hvals(key)]
            elif kind == b"string":
                messages.append((broker.get(key) or b"").decode(errors="replace"))
    assert card_numbers_in("\n".join(messages)) == []
