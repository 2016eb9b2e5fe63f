"""The alert settings page and the alert list in the back office (issue 14, item 4): one
settings row per merchant; staff see and edit only theirs, the merchant not theirs to choose;
operators see every merchant's. The low-stock threshold is set on the campaign's page."""

from datetime import time

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.services import operator_upsert, staff_user_upsert
from catalog.tests.factories import CampaignFactory, MerchantFactory
from orders.models import Alert, AlertSettings
from orders.services.alerts import LOW_STOCK, SOLD_OUT
from tests.mfa import totp_enable

pytestmark = pytest.mark.django_db

_FORM = {
    "kinds_on": [SOLD_OUT, LOW_STOCK],
    "recipients": "ops@a.example, boss@a.example",
    "waitlist_threshold": "7",
    "digest_time": "06:30",
}


@pytest.fixture
def merchants():
    return MerchantFactory(), MerchantFactory()


@pytest.fixture
def staff_client(client, merchants):
    staff = staff_user_upsert(
        username="staff-a", email="a@example.com", password="pw-a", merchant_id=merchants[0].pk
    )
    totp_enable(staff)
    client.force_login(staff)
    return client


def test_staff_create_their_own_settings_from_the_list_and_come_back_to_them(
    staff_client, merchants
):
    a, b = merchants
    changelist = reverse("admin:orders_alertsettings_changelist")
    response = staff_client.get(changelist)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:orders_alertsettings_add")

    form = staff_client.get(reverse("admin:orders_alertsettings_add"))
    assert form.status_code == 200
    assert 'name="merchant"' not in form.content.decode()
    # A merchant sneaked into the post is not taken: the settings are the staff's merchant's.
    response = staff_client.post(
        reverse("admin:orders_alertsettings_add"), {**_FORM, "merchant": b.pk}
    )
    assert response.status_code == 302
    mine = AlertSettings.objects.get()
    assert mine.merchant == a
    assert mine.recipients == "ops@a.example\nboss@a.example"
    assert (mine.waitlist_threshold, mine.digest_time) == (7, time(6, 30))
    assert SOLD_OUT not in mine.kinds_off
    assert LOW_STOCK not in mine.kinds_off
    assert "late_shipments" in mine.kinds_off

    response = staff_client.get(changelist)
    assert response["Location"] == reverse("admin:orders_alertsettings_change", args=[mine.pk])
    assert staff_client.get(reverse("admin:orders_alertsettings_add")).status_code == 403


def test_staff_cannot_see_or_change_another_merchants_settings(staff_client, merchants):
    _, b = merchants
    theirs = AlertSettings.objects.create(merchant=b, recipients="b@b.example")
    page = reverse("admin:orders_alertsettings_change", args=[theirs.pk])
    assert staff_client.get(page).status_code == 404
    assert staff_client.post(page, _FORM).status_code == 404
    theirs.refresh_from_db()
    assert theirs.recipients == "b@b.example"


def test_a_recipient_that_is_not_an_address_is_refused(staff_client):
    response = staff_client.post(
        reverse("admin:orders_alertsettings_add"), {**_FORM, "recipients": "ops@a.example nope"}
    )
    assert response.status_code == 200
    assert "is not an e-mail address" in response.content.decode()
    assert not AlertSettings.objects.exists()


def test_operators_see_every_merchants_settings(client, merchants):
    rows = [AlertSettings.objects.create(merchant=m) for m in merchants]
    operator = operator_upsert(username="op", email="op@example.com", password="pw-op")
    totp_enable(operator)
    client.force_login(operator)
    response = client.get(reverse("admin:orders_alertsettings_changelist"))
    assert response.status_code == 200
    assert {obj.pk for obj in response.context["cl"].result_list} == {r.pk for r in rows}


def test_staff_list_only_their_merchants_alerts(staff_client, merchants):
    a = merchants[0]
    now = timezone.now()
    for merchant in merchants:
        Alert.objects.create(
            merchant=merchant,
            kind=SOLD_OUT,
            cause="c",
            subject=f"of {merchant.pk}",
            body="",
            raised_at=now,
        )
    response = staff_client.get(reverse("admin:orders_alert_changelist"))
    assert response.status_code == 200
    assert [obj.merchant_id for obj in response.context["cl"].result_list] == [a.pk]
    assert "Sold out" in response.content.decode()


def test_staff_set_a_campaigns_low_stock_threshold_on_its_page(staff_client, merchants):
    campaign = CampaignFactory(product__merchant=merchants[0])
    page = staff_client.get(reverse("admin:catalog_campaign_change", args=[campaign.pk]))
    assert page.status_code == 200
    assert 'name="low_stock_threshold"' in page.content.decode()
