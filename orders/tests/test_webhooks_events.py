"""Webhook events from the order's life (issue 14): each change makes one event, in the change's
transaction, with a payload that never carries the buyer's e-mail, card or address."""

import json

import pytest
from django.db import transaction
from django.utils import timezone

from fulfillment.services import label_buy
from fulfillment.tests.test_labels_and_tracking import paid_order
from orders.models import Order, OrderEvent, WebhookDelivery, WebhookEvent
from orders.pipeline import stage_payments
from orders.services import order_ship
from orders.services.webhooks import webhook_endpoint_create
from tests.shop import shop_open, tick

pytestmark = pytest.mark.django_db

EVERYTHING = ["order.created", "order.confirmed", "order.paid", "order.shipped", "return.*"]


def _types() -> list[str]:
    return sorted(WebhookEvent.objects.values_list("type", flat=True))


def test_each_step_of_an_order_is_one_event_however_often_the_pipeline_runs():
    shop = shop_open()
    endpoint = webhook_endpoint_create(
        merchant_id=shop.campaign.merchant_id, url="https://example.com/h", events=EVERYTHING
    )
    order = paid_order()
    assert _types() == ["order.confirmed", "order.created", "order.paid"]
    assert label_buy(shipment_id=order.shipment.pk).status == "bought"
    label_buy(shipment_id=order.shipment.pk)
    stage_payments(now=timezone.now())
    tick()
    tick()
    assert _types() == ["order.confirmed", "order.created", "order.paid", "order.shipped"]
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 4
    # Each event is keyed by its audit row: one row, one event.
    keys = set(WebhookEvent.objects.values_list("event_key", flat=True))
    rows = OrderEvent.objects.filter(
        order=order, kind__in=["created", "confirmed", "paid", "shipped"]
    )
    assert keys == {f"order-event:{pk}" for pk in rows.values_list("pk", flat=True)}


def test_the_payload_names_the_order_and_its_tracking_but_no_email_card_or_address():
    shop = shop_open()
    webhook_endpoint_create(
        merchant_id=shop.campaign.merchant_id, url="https://example.com/h", events=EVERYTHING
    )
    order = paid_order()
    label_buy(shipment_id=order.shipment.pk)
    order = Order.objects.select_related("card", "cardholder__user", "shipment").get(pk=order.pk)
    body = WebhookEvent.objects.get(type="order.shipped").body
    payload = json.loads(body)
    data = payload["data"]
    assert payload["type"] == "order.shipped"
    assert data["order"]["code"] == order.confirmation_code
    assert data["order"]["status"] == "shipped"
    assert data["order"]["campaign"]["hashtag"] == shop.campaign.hashtag
    assert data["order"]["total"] == str(order.total)
    assert data["shipment"]["tracking_number"] == order.shipment.tracking_number
    for secret in (
        order.cardholder.user.email,
        order.card.last4,
        order.card.address_line1,
        order.ship_to.get("line1", order.card.address_line1),
    ):
        assert secret
        assert secret not in body


def test_no_endpoint_means_no_event_rows_on_the_order_path():
    shop_open()
    paid_order()
    assert not WebhookEvent.objects.exists()


def test_an_event_rolls_back_with_its_change():
    shop = shop_open()
    webhook_endpoint_create(
        merchant_id=shop.campaign.merchant_id, url="https://example.com/h", events=EVERYTHING
    )
    order = paid_order()
    before = _types()

    def ship_then_fail():
        with transaction.atomic():
            order_ship(
                order_id=order.pk,
                carrier="sandbox",
                tracking_number="T1",
                actor="t",
                now=timezone.now(),
            )
            assert "order.shipped" in _types()
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        ship_then_fail()
    assert _types() == before


def test_an_endpoint_of_another_merchant_gets_nothing():
    shop = shop_open()
    other = shop_open(hashtag="BuyOtherThing")
    webhook_endpoint_create(
        merchant_id=other.campaign.merchant_id, url="https://example.com/h", events=EVERYTHING
    )
    assert shop.campaign.merchant_id != other.campaign.merchant_id
    paid_order()
    assert not WebhookEvent.objects.exists()


def _decide_queries(handles: list[str]) -> list[str]:
    """The SQL of deciding one batch of purchase posts from ``handles``."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from orders.pipeline import stage_decide, stage_poll
    from tests.shop import BRAND, buyer_ready, post

    for handle in handles:
        buyer_ready(handle)
        post(handle, f"@{BRAND} #BuyKindleFireHD")
    now = timezone.now()
    stage_poll(now=now)
    with CaptureQueriesContext(connection) as queries:
        outcomes = stage_decide(now=now)
    assert outcomes["order_created"] == len(handles)
    return [q["sql"] for q in queries.captured_queries]


def test_with_no_endpoint_a_decided_batch_pays_one_query_whatever_its_size():
    """The flash-sale path: one indexed look-up of the merchants' endpoints per batch, no event
    row, no payload built."""
    shop_open()
    sql = _decide_queries(["ann", "bob", "cat", "dan"])
    webhook_sql = [q for q in sql if "webhook" in q]
    assert len(webhook_sql) == 1
    assert "orders_webhookendpoint" in webhook_sql[0]
    assert not WebhookEvent.objects.exists()


def test_with_an_endpoint_a_decided_batch_records_its_events_in_a_few_statements():
    shop = shop_open()
    webhook_endpoint_create(
        merchant_id=shop.campaign.merchant_id, url="https://example.com/h", events=EVERYTHING
    )
    sql = _decide_queries(["ann", "bob", "cat", "dan"])
    assert _types() == ["order.created"] * 4
    # Endpoints, events already there, insert events, their ids, insert deliveries.
    assert len([q for q in sql if "webhook" in q]) == 5


def test_delivery_returns_and_disputes_make_their_events_once():
    from orders.services.disputes import dispute_open
    from orders.services.returns import return_request
    from tests.shop import order_delivered

    shop = shop_open()
    webhook_endpoint_create(
        merchant_id=shop.campaign.merchant_id,
        url="https://example.com/h",
        events=["order.delivered", "return.*", "dispute.*"],
    )
    order = order_delivered()
    now = timezone.now()
    returned = return_request(
        order_id=order.pk, cardholder_id=order.cardholder_id, reason="Too small", now=now
    )
    dispute_open(order_id=order.pk, now=now)
    dispute_open(order_id=order.pk, now=now)  # "Not me" twice: one case, one event
    assert _types() == ["dispute.opened", "order.delivered", "return.requested"]
    delivered = json.loads(WebhookEvent.objects.get(type="order.delivered").body)["data"]
    assert delivered["order"]["status"] == "delivered"
    assert delivered["shipment"]["tracking_number"]
    requested = json.loads(WebhookEvent.objects.get(type="return.requested").body)["data"]
    assert requested["return"] == {"id": returned.pk, "status": "requested"}
    opened = json.loads(WebhookEvent.objects.get(type="dispute.opened").body)["data"]
    assert opened["dispute"]["status"] == "opened"
