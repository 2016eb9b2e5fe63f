"""A merchant's time zone is checked against the tz database, not frozen into a migration
(issue 10, item 21): a tzdata update must never make ``makemigrations --check`` fail."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.urls import reverse

from accounts.services import operator_upsert
from catalog.tests.factories import MerchantFactory
from catalog.validators import validate_time_zone
from tests.mfa import totp_enable

pytestmark = pytest.mark.django_db


def test_the_migrations_freeze_no_list_of_time_zones():
    state = MigrationLoader(connection).project_state()
    field = state.models["catalog", "merchant"].fields["time_zone"]
    assert not field.choices
    assert validate_time_zone in field.validators


@pytest.mark.parametrize("name", ["America/New_York", "Europe/Paris", "Asia/Kolkata"])
def test_a_merchant_in_a_real_time_zone_is_valid(name):
    merchant = MerchantFactory.build(time_zone=name)
    merchant.full_clean(exclude=["slug"])


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "america/new_york", "", "EST5EDT "])
def test_a_merchant_in_no_time_zone_is_refused(name):
    merchant = MerchantFactory.build(time_zone=name)
    with pytest.raises(ValidationError) as refused:
        merchant.full_clean(exclude=["slug"])
    assert "time_zone" in refused.value.message_dict


def test_the_merchant_form_still_offers_the_time_zones(client):
    operator = operator_upsert(username="ops", email="ops@example.com", password="pw")
    totp_enable(operator)
    client.force_login(operator)
    page = client.get(reverse("admin:catalog_merchant_add"))
    assert page.status_code == 200
    assert b'<option value="Europe/Paris">Europe/Paris</option>' in page.content
