"""The admin's "Buy labels": it shows what it will buy and charge, asks to confirm, buys only
the user's merchant's shipments, and says what happened to each (issue 14)."""

from decimal import Decimal
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client, override_settings
from django.urls import reverse

from fulfillment.carriers.base import Parcel, Quote
from fulfillment.models import Shipment, ShipmentStatus
from fulfillment.tests.test_labels_and_tracking import paid_order
from fulfillment.tests.test_labels_due_views import FRI, _shipment, merchant, staff_of
from orders.models import Order, OrderStatus
from sandbox.carrier import SandboxCarrier
from sandbox.models import SandboxLedgerEntry
from tests.shop import shop_open

pytestmark = pytest.mark.django_db

URL = "admin:fulfillment_shipment_buy_labels"


def _two_paid() -> tuple[Order, Order]:
    shop_open()
    return paid_order("alice"), paid_order("bob")


def _page(client: Client, *orders: Order):
    ids = ",".join(str(o.shipment.pk) for o in orders)
    return client.get(reverse(URL), {"ids": ids})


def test_the_page_shows_what_will_be_bought_and_charged_and_buys_nothing():
    alice, bob = _two_paid()
    client = staff_of(alice.merchant)
    page = _page(client, alice, bob)
    html = page.content.decode()
    assert page.status_code == 200
    for order in (alice, bob):
        row = html.split(f'data-shipment="{order.shipment.pk}"', 1)[1].split("</tr>", 1)[0]
        assert f"#{order.confirmation_code}" in row
        assert "Kindle Fire HD" in row
        assert "Springfield, IL" in row
        assert f"{order.shipment.ship_by:%a} {order.shipment.ship_by.day}" in row
        assert "price known when bought" in row  # the sandbox carrier quotes nothing
        assert f"{order.total} USD" in row
    total = alice.total + bob.total
    assert f"Buy 2 labels and capture {total} USD" in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert Shipment.objects.filter(status=ShipmentStatus.AWAITING_LABEL).count() == 2
    assert not SandboxLedgerEntry.objects.filter(operation="capture").exists()


def test_confirming_buys_each_label_captures_once_and_says_so_per_shipment():
    alice, bob = _two_paid()
    client = staff_of(alice.merchant)
    ids = f"{alice.shipment.pk},{bob.shipment.pk}"
    response = client.post(reverse(URL), {"ids": ids}, follow=True)
    said = [str(m) for m in response.context["messages"]]
    for order in (alice, bob):
        order.refresh_from_db()
        assert order.status == OrderStatus.SHIPPED
        tracking = order.shipment.tracking_number
        assert (
            f"#{order.confirmation_code}: label bought, tracking number {tracking}; "
            f"payment of {order.total} USD captured."
        ) in said
    assert SandboxLedgerEntry.objects.filter(operation="capture").count() == 2
    # Sent again (a double click): nothing is bought or charged twice, and it says why.
    again = client.post(reverse(URL), {"ids": ids}, follow=True)
    assert any("nothing bought" in str(m) for m in again.context["messages"])
    assert SandboxLedgerEntry.objects.filter(operation="capture").count() == 2


def test_buying_needs_the_csrf_token():
    alice, _ = _two_paid()
    client = staff_of(alice.merchant)
    client.handler.enforce_csrf_checks = True
    response = client.post(reverse(URL), {"ids": str(alice.shipment.pk)})
    assert response.status_code == 403
    assert Shipment.objects.get(pk=alice.shipment.pk).status == ShipmentStatus.AWAITING_LABEL


def test_another_merchants_shipments_are_a_404_even_mixed_with_ours():
    alice, _ = _two_paid()
    stranger = staff_of(merchant("stranger"))
    assert _page(stranger, alice).status_code == 404
    assert stranger.post(reverse(URL), {"ids": str(alice.shipment.pk)}).status_code == 404
    ours = staff_of(alice.merchant)
    theirs = paid_order_elsewhere()
    assert _page(ours, alice, theirs).status_code == 404
    assert (
        ours.post(reverse(URL), {"ids": f"{alice.shipment.pk},{theirs.shipment.pk}"}).status_code
        == 404
    )
    assert _page(ours).status_code == 200  # no ids: the labels due
    assert not SandboxLedgerEntry.objects.filter(operation="capture").exists()


def paid_order_elsewhere() -> Order:
    """A shipment of another merchant's order, as the data set builds them."""
    return _shipment(merchant("elsewhere"), FRI).order


def test_staff_without_the_ship_permission_cannot_buy():
    alice, _ = _two_paid()
    client = staff_of(alice.merchant)
    user = get_user_model().objects.get(username=f"staff-{alice.merchant.slug}")
    for group in user.groups.all():
        group.permissions.remove(Permission.objects.get(codename="ship_shipment"))
    assert _page(client, alice).status_code == 403
    assert client.post(reverse(URL), {"ids": str(alice.shipment.pk)}).status_code == 403
    assert not SandboxLedgerEntry.objects.filter(operation="capture").exists()


def test_the_change_list_action_leads_to_the_confirmation():
    alice, bob = _two_paid()
    client = staff_of(alice.merchant)
    response = client.post(
        reverse("admin:fulfillment_shipment_changelist"),
        {"action": "buy_labels", ACTION_CHECKBOX_NAME: [alice.shipment.pk, bob.shipment.pk]},
    )
    ids = ",".join(sorted(str(o.shipment.pk) for o in (alice, bob)))
    assert response.status_code == 302
    assert response["Location"] == reverse(URL) + "?ids=" + ids.replace(",", "%2C")
    assert not SandboxLedgerEntry.objects.filter(operation="capture").exists()


class QuotingCarrier(SandboxCarrier):
    """The sandbox carrier, quoting every label at $4.20 before buying it."""

    def label_quote(self, *, parcel: Parcel) -> Quote | None:
        return Quote(amount=Decimal("4.20"))


def test_a_carrier_that_quotes_shows_each_price_and_the_total():
    alice, bob = _two_paid()
    carriers = {**settings.HASHCART["CARRIERS"], "quoting": f"{__name__}.QuotingCarrier"}
    hashcart = {**settings.HASHCART, "CARRIERS": carriers, "DEFAULT_CARRIER": "quoting"}
    with override_settings(HASHCART=hashcart):
        html = _page(staff_of(alice.merchant), alice, bob).content.decode()
    assert html.count("<td>4.20 USD</td>") == 2
    assert "<td><strong>8.40 USD</strong></td>" in html
    assert "price known when bought" not in html


def test_a_shipment_no_longer_waiting_is_shown_as_skipped_and_not_charged():
    alice, bob = _two_paid()
    client = staff_of(alice.merchant)
    client.post(reverse(URL), {"ids": str(alice.shipment.pk)})
    html = _page(client, alice, bob).content.decode()
    row = html.split(f'data-shipment="{alice.shipment.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "skipped: label bought already" in row
    assert f"Buy 1 label and capture {bob.total} USD" in html


def test_the_change_list_links_to_the_labels_due_only_for_those_who_may_buy():
    alice, _ = _two_paid()
    client = staff_of(alice.merchant)
    link = f'href="{reverse(URL)}"'
    assert link in client.get(reverse("admin:fulfillment_shipment_changelist")).content.decode()
    user = get_user_model().objects.get(username=f"staff-{alice.merchant.slug}")
    for group in user.groups.all():
        group.permissions.remove(Permission.objects.get(codename="ship_shipment"))
    listing = client.get(reverse("admin:fulfillment_shipment_changelist")).content.decode()
    assert link not in listing


def test_more_labels_due_than_one_confirmation_buys_shows_the_first_and_buys_them():
    """After a big sale, "Buy the labels due…" shows the first ``BUY_LABELS_MAX`` (most overdue
    first) and says more wait; its confirmation buys exactly those."""
    alice, _ = _two_paid()
    client = staff_of(alice.merchant)
    url = reverse("admin:fulfillment_shipment_buy_labels")
    with mock.patch("fulfillment.admin.BUY_LABELS_MAX", 1):
        page = client.get(url)
        html = page.content.decode()
        ids = html.split('name="ids" value="', 1)[1].split('"', 1)[0]
        assert "More than 1 labels are due" in html
        assert ids == str(Shipment.objects.order_by("ship_by", "id").first().pk)
        assert "Buy 1 label" in html
        confirm = client.post(url, {"ids": ids})
    assert confirm.status_code == 302
    statuses = dict(Shipment.objects.values_list("pk", "status"))
    assert sorted(statuses.values()) == [ShipmentStatus.AWAITING_LABEL, ShipmentStatus.LABEL_BOUGHT]
    assert statuses[int(ids)] == ShipmentStatus.LABEL_BOUGHT
