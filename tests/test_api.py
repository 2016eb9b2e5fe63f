"""The merchant API (DESIGN §10.3): scoping by the token's merchant, one error shape, the
actions, and schemathesis against the API's own OpenAPI schema."""

import json
import re
from datetime import timedelta
from io import StringIO

import pytest
import schemathesis
import time_machine
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, settings
from knox.models import AuthToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.services import cardholder_upsert, operator_upsert, staff_user_upsert
from catalog.models import Campaign
from catalog.tests.factories import CampaignFactory, ProductFactory
from fulfillment.tests.test_labels_and_tracking import paid_order
from orders.models import OrderStatus
from sandbox.models import SandboxLedgerEntry
from tests.mfa import totp_enable
from tests.shop import shop_open

pytestmark = pytest.mark.django_db


def _token_client(user) -> Client:
    _, token = AuthToken.objects.create(user=user)
    return Client(headers={"Authorization": f"Token {token}"})


class World:
    """Merchant A (the shop, with a paid order) and merchant B (a campaign of its own)."""

    def __init__(self) -> None:
        self.shop = shop_open()
        self.order = paid_order()
        self.a = self.shop.campaign.merchant
        self.b_campaign = CampaignFactory(hashtag="BuyOtherThing")
        self.b = self.b_campaign.merchant
        self.staff_a = staff_user_upsert(
            username="a", email="a@example.com", password="pw", merchant_id=self.a.pk
        )
        _, self.token = AuthToken.objects.create(user=self.staff_a)
        self.api = Client(headers={"Authorization": f"Token {self.token}"})


@pytest.fixture
def world() -> World:
    return World()


def test_a_token_needs_a_merchant_staff_login():
    assert Client().get("/api/v1/orders/").status_code == 401
    holder = cardholder_upsert(email="c@example.com", password="pw")
    response = _token_client(holder.user).get("/api/v1/orders/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_merchant_a_sees_only_its_own_rows_through_every_endpoint(world):
    b_order_shop = CampaignFactory(hashtag="BuyBThing", merchant=world.b)
    listed = {
        path: {row["id"] for row in world.api.get(path).json()["results"]}
        for path in ("/api/v1/campaigns/", "/api/v1/orders/", "/api/v1/shipments/")
    }
    assert listed == {
        "/api/v1/campaigns/": {world.shop.campaign.pk},
        "/api/v1/orders/": {world.order.pk},
        "/api/v1/shipments/": {world.order.shipment.pk},
    }
    for path in (
        f"/api/v1/campaigns/{world.b_campaign.pk}/",
        f"/api/v1/campaigns/{b_order_shop.pk}/",
    ):
        assert world.api.get(path).status_code == 404
        assert (
            world.api.patch(path, {"stock_total": 1}, content_type="application/json").status_code
            == 404
        )
        assert world.api.post(f"{path}pause/").status_code == 404
    assert not Campaign.objects.get(pk=world.b_campaign.pk).paused


def test_another_merchants_orders_and_shipments_are_not_found(world):
    # B's staff look at A's order and shipment: not found, not cancelled, not shipped.
    other = staff_user_upsert(
        username="other", email="o@example.com", password="pw", merchant_id=world.b.pk
    )
    api_b = _token_client(other)
    assert api_b.get(f"/api/v1/orders/{world.order.pk}/").status_code == 404
    assert api_b.post(f"/api/v1/orders/{world.order.pk}/cancel/").status_code == 404
    tracking = api_b.post(
        f"/api/v1/shipments/{world.order.shipment.pk}/tracking/",
        {"carrier": "UPS", "tracking_number": "1Z"},
        content_type="application/json",
    )
    assert tracking.status_code == 404
    assert api_b.get("/api/v1/orders/").json()["results"] == []
    world.order.refresh_from_db()
    assert world.order.status == OrderStatus.PAID


def test_a_cannot_create_a_campaign_for_bs_product(world):
    b_product = ProductFactory(merchant=world.b)
    body = {
        "product": b_product.pk,
        "hashtag": "BuyStolenGoods",
        "confirm_prefix": "Confirm",
        "price": "10.00",
        "stock_total": 5,
        "starts_at": timezone.now().isoformat(),
        "ends_at": (timezone.now() + timedelta(days=3)).isoformat(),
    }
    response = world.api.post("/api/v1/campaigns/", body, content_type="application/json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "product" in error["fields"]
    assert not Campaign.objects.filter(hashtag="BuyStolenGoods").exists()
    own = ProductFactory(merchant=world.a)
    created = world.api.post(
        "/api/v1/campaigns/", {**body, "product": own.pk}, content_type="application/json"
    )
    assert created.status_code == 201
    assert Campaign.objects.get(hashtag="BuyStolenGoods").merchant == world.a


def test_a_campaign_says_whether_its_price_includes_tax(world):
    body = {
        "product": ProductFactory(merchant=world.a).pk,
        "hashtag": "BuyTaxIncluded",
        "confirm_prefix": "Confirm",
        "price": "10.00",
        "price_includes_tax": True,
        "stock_total": 5,
        "starts_at": timezone.now().isoformat(),
        "ends_at": (timezone.now() + timedelta(days=3)).isoformat(),
    }
    created = world.api.post("/api/v1/campaigns/", body, content_type="application/json")
    assert created.status_code == 201
    assert created.json()["price_includes_tax"] is True
    assert Campaign.objects.get(hashtag="BuyTaxIncluded").price_includes_tax
    assert (
        world.api.get(f"/api/v1/campaigns/{world.shop.campaign.pk}/").json()["price_includes_tax"]
        is False
    )


def test_an_order_shows_its_subtotal_tax_lines_and_total(world):
    row = world.api.get(f"/api/v1/orders/{world.order.pk}/").json()
    assert {k: row[k] for k in ("subtotal", "tax_lines", "tax_total", "total")} == {
        "subtotal": "149.00",
        "tax_lines": [{"jurisdiction": "Illinois", "rate": "0.06250", "amount": "9.31"}],
        "tax_total": "9.31",
        "total": "158.31",
    }
    assert row["price_includes_tax"] is False


def test_a_clashing_hashtag_is_a_field_error_naming_no_one(world):
    body = {
        "product": world.shop.campaign.product_id,
        "hashtag": "buyotherthing",  # B's, in another case
        "confirm_prefix": "Confirm",
        "price": "10.00",
        "stock_total": 5,
        "starts_at": timezone.now().isoformat(),
        "ends_at": (timezone.now() + timedelta(days=3)).isoformat(),
    }
    response = world.api.post("/api/v1/campaigns/", body, content_type="application/json")
    assert response.status_code == 400
    message = " ".join(response.json()["error"]["fields"]["hashtag"])
    assert world.b.name not in message


def test_a_clashing_hashtag_gets_one_answer_whatever_the_dates_asked(world):
    """21 calls used to find a competitor's launch to the minute by bisection on the dates."""
    now = timezone.now()
    CampaignFactory(
        hashtag="BuyLaunchThing",
        starts_at=now + timedelta(days=10, minutes=17),
        ends_at=now + timedelta(days=20),
    )
    answers = []
    for start, end in ((1, 2), (10, 11), (12, 13), (21, 22)):
        body = {
            "product": world.shop.campaign.product_id,
            "hashtag": "BuyLaunchThing",
            "confirm_prefix": "Confirm",
            "price": "10.00",
            "stock_total": 5,
            "starts_at": (now + timedelta(days=start)).isoformat(),
            "ends_at": (now + timedelta(days=end)).isoformat(),
        }
        response = world.api.post("/api/v1/campaigns/", body, content_type="application/json")
        answers.append((response.status_code, response.json()))
    assert all(answer == answers[0] for answer in answers)
    assert answers[0][0] == 400
    assert answers[0][1]["error"]["fields"]["hashtag"] == [
        "#BuyLaunchThing is unavailable on this platform. Choose another hashtag."
    ]


def test_cancel_an_order_and_add_tracking_through_the_api(world):
    shipment = world.order.shipment
    response = world.api.post(
        f"/api/v1/shipments/{shipment.pk}/tracking/",
        {"carrier": "UPS", "tracking_number": "1Z999"},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["tracking_number"] == "1Z999"
    assert SandboxLedgerEntry.objects.filter(operation="capture").count() == 1
    again = world.api.post(
        f"/api/v1/shipments/{shipment.pk}/tracking/",
        {"carrier": "UPS", "tracking_number": "1Z999"},
        content_type="application/json",
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    # Shipped: it can no longer be cancelled.
    assert world.api.post(f"/api/v1/orders/{world.order.pk}/cancel/").status_code == 409


def test_orders_filter_by_status(world):
    paid = world.api.get("/api/v1/orders/", {"status": "paid"}).json()
    assert [row["confirmation_code"] for row in paid["results"]] == [world.order.confirmation_code]
    assert world.api.get("/api/v1/orders/", {"status": "expired"}).json()["results"] == []
    # Any offset ISO 8601 allows, compared in UTC (PostgreSQL takes offsets up to 15:59 only).
    late = world.api.get("/api/v1/orders/", {"created_after": "2299-03-18T02:25:12+22:39"})
    assert (late.status_code, late.json()["results"]) == (200, [])
    far = world.api.get("/api/v1/orders/", {"created_before": "0001-01-01T00:00:00+23:00"})
    assert far.status_code == 400
    bad = world.api.get("/api/v1/orders/", {"status": "nonsense"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "validation_error"


def _api_token(*args: str) -> str:
    out = StringIO()
    call_command("api_token", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_api_token_is_issued_to_staff_and_operators_with_totp_only(world):
    operator = operator_upsert(username="ops", email="ops@example.com", password="pw")
    cardholder_upsert(email="alice@example.com", password="pw")
    for login in ("a@example.com", "ops@example.com"):
        with pytest.raises(CommandError, match=r"no TOTP authenticator.*second factor"):
            call_command("api_token", login)
    with pytest.raises(CommandError, match="not a merchant's staff"):
        call_command("api_token", "alice@example.com")
    # Nothing issued but the fixture's own token.
    assert AuthToken.objects.filter(user=world.staff_a).count() == 1
    assert not AuthToken.objects.filter(user=operator).exists()

    totp_enable(world.staff_a)
    totp_enable(operator)
    for login in ("a@example.com", "ops@example.com"):
        key = _api_token(login)
        response = Client(headers={"Authorization": f"Token {key}"}).get("/api/v1/orders/")
        assert response.status_code == 200


def test_api_tokens_are_stored_only_as_digests(world):
    totp_enable(world.staff_a)
    key = _api_token("a@example.com")
    stored = AuthToken.objects.filter(user=world.staff_a).values()
    assert stored
    for row in stored:
        assert key not in {str(value) for value in row.values()}


def test_an_api_token_expires(world):
    totp_enable(world.staff_a)
    key = _api_token("a@example.com")
    api = Client(headers={"Authorization": f"Token {key}"})
    assert api.get("/api/v1/orders/").status_code == 200
    days = django_settings.REST_KNOX["TOKEN_TTL"].days
    with time_machine.travel(timezone.now() + timedelta(days=days, minutes=1)):
        response = api.get("/api/v1/orders/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_rotating_a_token_revokes_the_earlier_ones(world):
    totp_enable(world.staff_a)
    first = _api_token("a@example.com")
    second = _api_token("a@example.com")
    third = _api_token("a@example.com", "--rotate")
    for key, status in ((first, 401), (second, 401), (third, 200)):
        response = Client(headers={"Authorization": f"Token {key}"}).get("/api/v1/orders/")
        assert response.status_code == status


def test_removing_totp_revokes_the_logins_api_tokens(world):
    from allauth.mfa.models import Authenticator
    from allauth.mfa.signals import authenticator_removed

    totp_enable(world.staff_a)
    key = _api_token("a@example.com")
    authenticator = Authenticator.objects.get(user=world.staff_a, type=Authenticator.Type.TOTP)
    authenticator.delete()
    authenticator_removed.send(
        sender=Authenticator, request=None, user=world.staff_a, authenticator=authenticator
    )
    response = Client(headers={"Authorization": f"Token {key}"}).get("/api/v1/orders/")
    assert response.status_code == 401


def test_a_token_that_is_not_utf8_is_a_401():
    response = Client(headers={"Authorization": "Token caf\xe9"}).get("/api/v1/orders/")
    assert response.status_code == 401


def test_the_schema_and_docs_are_served_with_no_inline_script():
    assert Client().get("/api/schema/").status_code == 200
    docs = Client().get("/api/docs/")
    assert docs.status_code == 200
    scripts = re.findall(rb"<script[^>]*>", docs.content)
    assert scripts
    assert all(b" src=" in tag for tag in scripts)  # the CSP forbids inline scripts


def test_an_unknown_api_path_is_a_json_404(world):
    response = world.api.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- schemathesis ----------------------------------------------------------------------------
def _api_schema() -> "schemathesis.BaseSchema":
    """The API's own OpenAPI document (as served at /api/schema/), exercised in-process."""
    from drf_spectacular.generators import SchemaGenerator

    from config.wsgi import application

    document = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = application
    return loaded


schema = _api_schema()
# What the acceptance asks: no server error, and every response as the schema documents it
# (status code, content type, body). Whether invalid input is rejected is tested above.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def in_process():
    """Requests through the WSGI app keep the test's database connection open, as Django's
    test client does (``close_old_connections`` would close it after every request)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_matches_its_schema_and_never_errs(case, world, in_process, fuzzing):
    """Every operation, with generated valid input as merchant A's staff: no server error, and
    every response (errors included) matches the schema."""
    case.call_and_validate(headers={"Authorization": f"Token {world.token}"}, checks=CHECKS)


def test_a_token_can_do_only_what_its_login_may(world):
    from django.contrib.auth.models import Permission

    # Take the cancel and ship permissions from this login: read still works, the rest is 403.
    world.staff_a.groups.clear()
    world.staff_a.user_permissions.set(
        Permission.objects.filter(codename__in=["view_order", "view_shipment", "view_campaign"])
    )
    api = _token_client(world.staff_a)
    assert api.get("/api/v1/orders/").status_code == 200
    cancel = api.post(f"/api/v1/orders/{world.order.pk}/cancel/")
    assert cancel.status_code == 403
    assert cancel.json()["error"]["code"] == "permission_denied"
    tracking = api.post(
        f"/api/v1/shipments/{world.order.shipment.pk}/tracking/",
        {"carrier": "UPS", "tracking_number": "1Z"},
        content_type="application/json",
    )
    assert tracking.status_code == 403
    assert api.post(f"/api/v1/campaigns/{world.shop.campaign.pk}/pause/").status_code == 403
    world.order.refresh_from_db()
    assert world.order.status == OrderStatus.PAID


# --- Hostile query strings (issue 10, item 19) ---------------------------------------------------
def _cursor(querystring: str) -> str:
    import base64

    return base64.b64encode(querystring.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "not-base64!",
        _cursor("p=not-a-number"),
        _cursor("p=99999999999999999999"),
        _cursor("p=-99999999999999999999"),
        _cursor("o=-1"),
        _cursor("r=maybe"),
    ],
)
def test_a_forged_cursor_is_a_400_in_the_error_shape(world, cursor):
    for path in ("/api/v1/orders/", "/api/v1/campaigns/", "/api/v1/shipments/"):
        response = world.api.get(path, {"cursor": cursor})
        assert response.status_code == 400, (path, response.content[:200])
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert "cursor" in error["fields"]


def test_a_cursor_the_api_made_still_pages(world):
    for handle in ("bob", "carol"):
        paid_order(handle)
    first = world.api.get("/api/v1/orders/", {"page_size": 2}).json()
    second = world.api.get(first["next"]).json()
    assert len(first["results"]) == 2
    assert second["results"]
    assert {row["id"] for row in first["results"]}.isdisjoint(
        row["id"] for row in second["results"]
    )


@pytest.mark.parametrize("value", ["99999999999999999999", "-99999999999999999999", "1.5", "1e3"])
def test_an_out_of_range_id_filter_is_a_400_in_the_error_shape(world, value):
    response = world.api.get("/api/v1/orders/", {"campaign": value})
    assert response.status_code == 400, response.content[:200]
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "campaign" in error["fields"]


def test_the_campaign_filter_still_finds_the_campaigns_orders(world):
    campaign_id = world.order.campaign_id
    found = world.api.get("/api/v1/orders/", {"campaign": str(campaign_id)}).json()["results"]
    assert [row["id"] for row in found] == [world.order.pk]
    assert world.api.get("/api/v1/orders/", {"campaign": "0"}).json()["results"] == []
