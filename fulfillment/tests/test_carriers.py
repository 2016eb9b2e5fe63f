"""The EasyPost carrier against a mocked EasyPost API, and signed carrier webhooks."""

import hashlib
import hmac
import json
from datetime import timedelta

import easypost
import pytest
import responses
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from fulfillment.carriers.base import CarrierError, Parcel
from fulfillment.carriers.easypost import EasyPostCarrier
from fulfillment.models import Shipment, TrackingEvent
from fulfillment.services import label_buy
from fulfillment.tests.test_labels_and_tracking import paid_order
from fulfillment.views import sandbox_signature
from orders.models import OrderStatus
from tests.shop import shop_open

API = "https://api.easypost.com/v2"
PARCEL = Parcel(
    shipment_id=7,
    order_code="ABCDE",
    product_name="Kindle Fire HD",
    ship_to={"name": "Alice", "line1": "1 Main St", "city": "Springfield", "state": "IL",
             "postal_code": "62701", "country": "US"},
    ship_from_name="1",
)  # fmt: skip
RATES = [
    {"id": "rate_ground", "carrier": "USPS", "rate": "6.10", "delivery_days": 5},
    {"id": "rate_2day", "carrier": "UPS", "rate": "14.20", "delivery_days": 2},
    {"id": "rate_next", "carrier": "UPS", "rate": "31.00", "delivery_days": 1},
]


def _carrier() -> EasyPostCarrier:
    return EasyPostCarrier(easypost.EasyPostClient("EZTK_test"))


def _bought(shipment_id: str = "shp_1") -> dict:
    return {
        "id": shipment_id,
        "object": "Shipment",
        "tracking_code": "1Z2DAY",
        "postage_label": {"label_url": "https://easypost-files.example/label.png"},
        "rates": RATES,
    }


@responses.activate
def test_easypost_buys_the_cheapest_two_day_rate_and_remembers_the_shipment_first():
    responses.post(f"{API}/shipments", json={"id": "shp_1", "object": "Shipment", "rates": RATES})
    responses.post(f"{API}/shipments/shp_1/buy", json=_bought())
    remembered: list[str] = []
    label = _carrier().buy_label(parcel=PARCEL, remember=remembered.append)
    assert (label.tracking_number, label.reference, remembered) == ("1Z2DAY", "shp_1", ["shp_1"])
    create, buy = responses.calls
    assert json.loads(create.request.body)["shipment"]["to_address"]["zip"] == "62701"
    assert json.loads(buy.request.body)["rate"] == {"id": "rate_2day"}


@responses.activate
def test_a_retry_finds_the_label_already_bought_instead_of_buying_another():
    responses.get(f"{API}/shipments/shp_1", json=_bought())
    label = _carrier().buy_label(parcel=PARCEL, reference="shp_1")
    assert label.tracking_number == "1Z2DAY"
    assert [call.request.method for call in responses.calls] == ["GET"]


@responses.activate
def test_no_two_day_rate_or_an_api_error_is_a_carrier_error():
    slow = [r for r in RATES if r["delivery_days"] > 2]
    responses.post(f"{API}/shipments", json={"id": "shp_2", "object": "Shipment", "rates": slow})
    with pytest.raises(CarrierError, match="two days"):
        _carrier().buy_label(parcel=PARCEL)
    responses.post(f"{API}/shipments", status=500, json={"error": {"message": "down"}})
    with pytest.raises(CarrierError, match="EasyPost"):
        _carrier().buy_label(parcel=PARCEL)


@responses.activate
def test_easypost_tracking_details_become_updates():
    responses.get(
        f"{API}/shipments/shp_1",
        json={
            **_bought(),
            "tracker": {
                "tracking_details": [
                    {"status": "pre_transit", "datetime": "2026-12-01T15:00:00Z", "message": "x"},
                    {"status": "in_transit", "datetime": "2026-12-01T18:00:00Z", "message": "y"},
                    {"status": "return_to_sender", "datetime": "2026-12-02T18:00:00Z"},
                ]
            },
        },
    )
    updates = _carrier().track(tracking_number="1Z2DAY", reference="shp_1", now=timezone.now())
    assert [u.status for u in updates] == ["pre_transit", "in_transit", "exception"]


# --- Webhooks --------------------------------------------------------------------------------
@pytest.fixture
def shipped(settings, db):
    settings.HASHCART = {**settings.HASHCART, "CARRIER_WEBHOOK_SECRET": "carrier-secret"}
    settings.EASYPOST_WEBHOOK_SECRET = "easypost-secret"
    shop_open()
    order = paid_order()
    label_buy(shipment_id=order.shipment.pk)
    return Shipment.objects.get(order=order)


def _sandbox_post(body: bytes, signature: str):
    return Client().post(
        reverse("fulfillment:carrier_webhook", args=["sandbox"]),
        body,
        content_type="application/json",
        HTTP_X_HASHCART_SIGNATURE=signature,
    )


def test_a_signed_sandbox_webhook_delivers_the_shipment_once(shipped):
    body = json.dumps(
        {
            "tracking_number": shipped.tracking_number,
            "status": "delivered",
            "occurred_at": (timezone.now() + timedelta(hours=30)).isoformat(),
        }
    ).encode()
    signature = sandbox_signature(body, "carrier-secret")
    assert _sandbox_post(body, signature).status_code == 200
    assert _sandbox_post(body, signature).status_code == 200  # delivered twice: once
    shipped.refresh_from_db()
    assert shipped.status == "delivered"
    assert shipped.order.status == OrderStatus.DELIVERED
    assert TrackingEvent.objects.filter(shipment=shipped, source="webhook").count() == 1


@pytest.mark.parametrize("signature", ["", "0" * 64, "forged"])
def test_an_unsigned_or_forged_webhook_changes_nothing(shipped, signature):
    body = json.dumps(
        {"tracking_number": shipped.tracking_number, "status": "delivered",
         "occurred_at": timezone.now().isoformat()}
    ).encode()  # fmt: skip
    assert _sandbox_post(body, signature).status_code == 400
    shipped.refresh_from_db()
    assert shipped.status == "label_bought"


def test_a_signed_easypost_tracker_webhook(shipped):
    Shipment.objects.filter(pk=shipped.pk).update(carrier="easypost")
    body = json.dumps(
        {
            "description": "tracker.updated",
            "result": {
                "tracking_code": shipped.tracking_number,
                "tracking_details": [
                    {"status": "in_transit", "datetime": timezone.now().isoformat()},
                ],
            },
        }
    ).encode()
    digest = hmac.new(b"easypost-secret", body, hashlib.sha256).hexdigest()
    response = Client().post(
        reverse("fulfillment:carrier_webhook", args=["easypost"]),
        body,
        content_type="application/json",
        HTTP_X_HMAC_SIGNATURE=f"hmac-sha256-hex={digest}",
    )
    assert response.status_code == 200
    shipped.refresh_from_db()
    assert shipped.status == "in_transit"
