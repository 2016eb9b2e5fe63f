"""The EasyPost carrier against a mocked EasyPost API, and signed carrier webhooks."""

import hashlib
import hmac
import json
from datetime import timedelta
from decimal import Decimal

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
from orders.models import OrderStatus
from sandbox.carrier import sandbox_signature
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
            "reference": shipped.carrier_reference,
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
    Shipment.objects.filter(pk=shipped.pk).update(carrier="easypost", carrier_reference="shp_1")
    body = json.dumps(
        {
            "description": "tracker.updated",
            "result": {
                "shipment_id": "shp_1",
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


# --- Only our labels (issue 10, item 10) --------------------------------------------------------
def _signed_sandbox_update(shipment_reference: str, tracking_number: str, status: str):
    body = json.dumps(
        {
            "reference": shipment_reference,
            "tracking_number": tracking_number,
            "status": status,
            "occurred_at": (timezone.now() + timedelta(hours=30)).isoformat(),
        }
    ).encode()
    return _sandbox_post(body, sandbox_signature(body, "carrier-secret"))


@pytest.fixture
def typed_over(settings, db):
    """Merchant A records by hand (``mark_shipped``) the tracking number of B's bought label."""
    from fulfillment.services import order_mark_shipped

    settings.HASHCART = {**settings.HASHCART, "CARRIER_WEBHOOK_SECRET": "carrier-secret"}
    shop_open()
    typed = paid_order("mallory")  # the older shipment: first by id
    bought = paid_order("alice")
    label_buy(shipment_id=bought.shipment.pk)
    bought_shipment = Shipment.objects.get(order=bought)
    result = order_mark_shipped(
        order=typed,
        carrier="sandbox",
        tracking_number=bought_shipment.tracking_number,
        actor="mark_shipped",
    )
    assert result == "bought"
    return Shipment.objects.get(order=typed), bought_shipment


def test_a_carrier_webhook_reaches_only_the_label_hashcart_bought(typed_over):
    typed, bought = typed_over
    response = _signed_sandbox_update(bought.carrier_reference, bought.tracking_number, "delivered")
    assert response.status_code == 200
    typed.refresh_from_db()
    bought.refresh_from_db()
    assert (typed.status, bought.status) == ("label_bought", "delivered")
    assert not TrackingEvent.objects.filter(shipment=typed).exists()


def test_a_webhook_without_the_carriers_reference_moves_nothing(typed_over):
    _, bought = typed_over
    assert _signed_sandbox_update("", bought.tracking_number, "delivered").status_code == 200
    assert _signed_sandbox_update("sbx_0", bought.tracking_number, "delivered").status_code == 200
    assert set(Shipment.objects.values_list("status", flat=True)) == {"label_bought"}


def test_polling_asks_only_about_labels_hashcart_bought(typed_over):
    from fulfillment.services import shipment_track, shipments_to_track

    typed, bought = typed_over
    assert shipments_to_track() == [bought.pk]
    later = timezone.now() + timedelta(hours=40)
    assert shipment_track(shipment_id=typed.pk, now=later) == "label_bought"
    assert shipment_track(shipment_id=bought.pk, now=later) == "delivered"


@pytest.mark.django_db
def test_a_carrier_tracking_number_is_unique_among_bought_labels():
    from django.db import IntegrityError, transaction

    from fulfillment.tests.factories import ShipmentFactory

    ShipmentFactory(carrier="sandbox", tracking_number="SBX1", carrier_reference="sbx_1")
    with pytest.raises(IntegrityError), transaction.atomic():
        ShipmentFactory(carrier="sandbox", tracking_number="SBX1", carrier_reference="sbx_2")
    # Numbers typed in by hand are not trusted to be unique, and another carrier's may repeat.
    ShipmentFactory(carrier="sandbox", tracking_number="SBX1", carrier_reference="")
    ShipmentFactory(carrier="easypost", tracking_number="SBX1", carrier_reference="shp_1")


@pytest.mark.parametrize("carrier", ["sandbox", "easypost"])
def test_a_non_ascii_signature_header_is_a_400(shipped, carrier):
    header = {"sandbox": "HTTP_X_HASHCART_SIGNATURE", "easypost": "HTTP_X_HMAC_SIGNATURE"}[carrier]
    response = Client().post(
        reverse("fulfillment:carrier_webhook", args=[carrier]),
        b'{"result": {}}',
        content_type="application/json",
        **{header: "hmac-sha256-hex=" + "\u00e9" * 64},
    )
    assert response.status_code == 400


@pytest.mark.django_db
def test_a_webhook_for_a_carrier_not_configured_is_a_400():
    response = Client().post(
        reverse("fulfillment:carrier_webhook", args=["ups"]),
        b"{}",
        content_type="application/json",
    )
    assert response.status_code == 400


def test_a_carrier_that_pushes_nothing_refuses_every_webhook():
    from fulfillment.carriers.base import Carrier

    class Quiet(Carrier):
        name = "quiet"

        def buy_label(self, *, parcel, reference="", remember=None):
            raise CarrierError("no")

        def track(self, *, tracking_number, reference, now):
            return []

    assert Quiet().webhook_verify(body=b"{}", headers={"X-Hashcart-Signature": "x"}) is False
    with pytest.raises(ValueError, match="pushes no tracking"):
        Quiet().webhook_tracking(body=b"{}")


@responses.activate
def test_easypost_quotes_the_two_day_rate_it_would_buy_without_creating_anything():
    responses.post("https://api.easypost.com/beta/rates", json={"rates": RATES})
    quote = _carrier().label_quote(parcel=PARCEL)
    assert quote is not None
    assert (quote.amount, quote.currency) == (Decimal("14.20"), "USD")
    (call,) = responses.calls
    assert json.loads(call.request.body)["shipment"]["to_address"]["zip"] == "62701"
    responses.post("https://api.easypost.com/beta/rates", status=500, json={"error": {}})
    assert _carrier().label_quote(parcel=PARCEL) is None  # price known when bought
