"""Order and shipment change lists cost a fixed, small number of queries, whatever the rows.

Their time at a million orders is measured by ``manage.py bench_admin_changelist``.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.services import operator_upsert, staff_user_upsert
from catalog.tests.factories import CampaignFactory
from fulfillment.tests.factories import ShipmentFactory
from orders.tests.factories import OrderFactory
from tests.mfa import totp_enable

pytestmark = pytest.mark.django_db

# Session, user, permissions, the capped count, the page, the campaign filter's choices,
# measured at 5-7 on SQLite and PostgreSQL; and on the order list, the notice of the disputes
# waiting for an answer (one query); for merchant staff, their merchant's time zone (one query,
# ``accounts.middleware.merchant_time_zone``) and whether it has its alert settings yet (the app
# list's "Add", once per request, ``orders.alert_admin``).
MAX_QUERIES = 11


def _queries(client, url, params=None):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize("as_operator", [False, True], ids=["staff", "operator"])
@pytest.mark.parametrize(
    ("url_name", "params"),
    [
        ("admin:orders_order_changelist", None),
        ("admin:orders_order_changelist", {"status__exact": "pending"}),
        ("admin:orders_order_changelist", {"q": "alice"}),
        ("admin:fulfillment_shipment_changelist", None),
    ],
    ids=["orders", "orders-by-status", "orders-search", "shipments"],
)
def test_change_list_queries_do_not_grow_with_rows(client, url_name, params, as_operator):
    campaign = CampaignFactory(stock_total=500)
    if as_operator:
        user = operator_upsert(username="op", email="op@example.com", password="pw-op")
    else:
        user = staff_user_upsert(
            username="s", email="s@example.com", password="pw-s", merchant_id=campaign.merchant_id
        )
    totp_enable(user)
    client.force_login(user)
    url = reverse(url_name)

    ShipmentFactory.create_batch(3, order__campaign=campaign)
    few = _queries(client, url, params)
    ShipmentFactory.create_batch(60, order__campaign=campaign)
    OrderFactory.create_batch(5)  # another merchant's rows
    many = _queries(client, url, params)

    assert few == many
    assert many <= MAX_QUERIES
