"""Platform accounts in the back office: operators only, credentials written encrypted and
never shown, the feed's alert visible (issue 6)."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.services import operator_upsert, staff_user_upsert
from catalog.tests.factories import MerchantFactory
from social.credentials import credentials_decrypt
from social.models import FeedCursor, FeedKind, PlatformAccount
from tests.mfa import totp_enable

pytestmark = pytest.mark.django_db


def _operator() -> Client:
    operator = operator_upsert(username="op", email="op@example.com", password="pw")
    totp_enable(operator)
    client = Client()
    client.force_login(operator)
    return client


def test_credentials_are_stored_encrypted_and_never_shown():
    client = _operator()
    response = client.post(
        reverse("admin:social_platformaccount_add"),
        {
            "platform": "x",
            "platform_user_id": "1072250532645998596",
            "handle": "HashcartDeals",
            "enabled": "on",
            "feed_mode": "mentions",
            "reply_budget": "100",
            "reply_budget_seconds": "900",
            "new_credentials": '{"access_token": "secret-access", "refresh_token": "secret-r"}',
        },
    )
    assert response.status_code == 302, response.content[:500]
    account = PlatformAccount.objects.get(handle="HashcartDeals")
    assert "secret-access" not in account.credentials_encrypted
    assert credentials_decrypt(account.credentials_encrypted)["refresh_token"] == "secret-r"
    page = client.get(reverse("admin:social_platformaccount_change", args=[account.pk]))
    assert b"secret-access" not in page.content
    assert b"set (encrypted)" in page.content
    # Saving without new credentials keeps them.
    client.post(
        reverse("admin:social_platformaccount_change", args=[account.pk]),
        {
            "platform": "x",
            "platform_user_id": "1072250532645998596",
            "handle": "HashcartDeals",
            "feed_mode": "search",
            "reply_budget": "50",
            "reply_budget_seconds": "900",
            "new_credentials": "",
        },
    )
    account.refresh_from_db()
    assert (account.enabled, account.feed_mode, account.reply_budget) == (False, "search", 50)
    assert credentials_decrypt(account.credentials_encrypted)["access_token"] == "secret-access"


def test_a_stopped_feed_shows_as_an_alert():
    account = PlatformAccount.objects.create(platform="x", platform_user_id="1", handle="Brand")
    FeedCursor.objects.create(
        account=account, feed=FeedKind.MENTIONS, stopped=True, last_error="usage cap: Monthly"
    )
    listing = _operator().get(reverse("admin:social_platformaccount_changelist"))
    assert b"STOPPED (usage cap): usage cap: Monthly" in listing.content


def test_merchant_staff_never_see_platform_accounts():
    staff = staff_user_upsert(
        username="s", email="s@example.com", password="pw", merchant_id=MerchantFactory().pk
    )
    totp_enable(staff)
    client = Client()
    client.force_login(staff)
    assert client.get(reverse("admin:social_platformaccount_changelist")).status_code == 403


def test_bad_credentials_json_is_explained():
    response = _operator().post(
        reverse("admin:social_platformaccount_add"),
        {
            "platform": "x",
            "platform_user_id": "2",
            "handle": "B",
            "feed_mode": "mentions",
            "reply_budget": "100",
            "reply_budget_seconds": "900",
            "new_credentials": "{not json",
        },
    )
    assert b"Not JSON" in response.content
    assert not PlatformAccount.objects.filter(handle="B").exists()
