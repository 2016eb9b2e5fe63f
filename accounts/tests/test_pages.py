"""The cardholder's pages and the back office door, through Django's test client."""

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import Card, Cardholder
from accounts.services import cardholder_upsert, operator_upsert, staff_user_upsert
from catalog.tests.factories import MerchantFactory
from orders.models import Order, OrderStatus
from tests.mfa import totp_enable
from tests.shop import BRAND, buyer_ready, post, shop_open, tick

pytestmark = pytest.mark.django_db


def _signed_in(email="carol@example.com") -> tuple[Client, Cardholder]:
    cardholder = cardholder_upsert(email=email, password="pw-carol-123")
    client = Client()
    client.force_login(cardholder.user)
    return client, cardholder


def test_sign_up_verifies_the_email_and_makes_a_cardholder():
    client = Client()
    response = client.post(
        reverse("account_signup"),
        {
            "email": "new@example.com",
            "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase",
        },
    )
    assert response.status_code == 302
    cardholder = Cardholder.objects.get(user__email="new@example.com")
    assert cardholder.controls.paused is False
    (message,) = mail.outbox
    link = re.search(r"http://\S+/accounts/confirm-email/\S+/", message.body).group(0)
    # Not verified yet: the linking page is behind the sign-in, which waits for verification.
    assert client.get(reverse("accounts:link")).status_code == 302
    confirm = client.post(link.replace("http://testserver", ""))
    assert confirm.status_code == 302
    assert client.get(reverse("accounts:link")).status_code == 200


def test_the_link_pages_need_a_sign_in():
    for name in ("accounts:link", "accounts:link_card", "accounts:settings"):
        response = Client().get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))


def test_the_card_number_is_never_echoed_kept_or_put_in_the_session():
    client, cardholder = _signed_in()
    bad = client.post(
        reverse("accounts:link_card"),
        {"number": "4111111111111111", "exp_month": "12", "exp_year": "2031"},
    )
    assert b"use a test card number" in bad.content
    assert b"4111111111111111" not in bad.content
    good = client.post(
        reverse("accounts:link_card"),
        {"number": "4242424242424242", "exp_month": "12", "exp_year": "2031"},
    )
    assert good["Location"] == reverse("accounts:link_address")
    assert "4242424242424242" not in str(dict(client.session))
    client.post(
        reverse("accounts:link_address"),
        {
            "billing_name": "Carol",
            "address_line1": "1 Main Street",
            "city": "Springfield",
            "state": "IL",
            "postal_code": "62701",
        },
    )
    card = Card.objects.get(cardholder=cardholder)
    assert (card.brand, card.last4) == ("Visa", "4242")
    assert "4242424242424242" not in str(card.__dict__)


def test_a_bad_zip_is_explained():
    client, _ = _signed_in()
    client.post(
        reverse("accounts:link_card"),
        {"number": "4242424242424242", "exp_month": "12", "exp_year": "2031"},
    )
    response = client.post(
        reverse("accounts:link_address"),
        {
            "billing_name": "C",
            "address_line1": "1 Main",
            "city": "X",
            "state": "IL",
            "postal_code": "6270",
        },
    )
    assert b"Enter a ZIP code like 62701" in response.content
    assert not Card.objects.exists()


def test_consent_needs_the_box_ticked():
    client, cardholder = _signed_in()
    response = client.post(reverse("accounts:link_consent"), {})
    assert b"Tick the box to agree" in response.content
    assert not cardholder.consents.exists()
    client.post(reverse("accounts:link_consent"), {"agree": "on"})
    assert cardholder.consents.get().terms_version


def test_settings_forms_need_csrf():
    cardholder = cardholder_upsert(email="carol@example.com", password="pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(cardholder.user)
    response = client.post(reverse("accounts:settings_action", args=["pause"]))
    assert response.status_code == 403
    cardholder.controls.refresh_from_db()
    assert not cardholder.controls.paused


def test_a_cardholder_cancels_their_pending_order_and_no_one_elses():
    shop = shop_open()
    alice = buyer_ready("alice")
    buyer_ready("bob")
    post("alice", f"@{BRAND} #BuyKindleFireHD")
    post("bob", f"@{BRAND} #BuyKindleFireHD")
    tick()
    bobs = Order.objects.get(cardholder__user__email="bob@example.com")
    client = Client()
    client.force_login(alice.cardholder.user)
    page = client.get(reverse("accounts:settings"))
    assert b"Kindle Fire HD" in page.content
    assert bobs.confirmation_code.encode() not in page.content
    assert (
        client.post(reverse("orders:cardholder_order_cancel"), {"order": bobs.pk}).status_code
        == 404
    )
    alices = Order.objects.get(cardholder=alice.cardholder)
    client.post(reverse("orders:cardholder_order_cancel"), {"order": alices.pk})
    alices.refresh_from_db()
    bobs.refresh_from_db()
    assert (alices.status, bobs.status) == (OrderStatus.CANCELLED, OrderStatus.PENDING)
    shop.campaign.refresh_from_db()
    assert shop.campaign.stock_reserved == 1


def test_pause_and_limits_from_the_settings_page():
    client, cardholder = _signed_in()
    client.post(reverse("accounts:settings_action", args=["pause"]))
    cardholder.controls.refresh_from_db()
    assert cardholder.controls.paused
    client.post(
        reverse("accounts:settings_action", args=["controls"]),
        {"per_order_cap": "200", "per_day_cap": "", "email_confirm_above": "150"},
    )
    cardholder.controls.refresh_from_db()
    assert (cardholder.controls.per_order_cap, cardholder.controls.per_day_cap) == (200, None)
    bad = client.post(
        reverse("accounts:settings_action", args=["controls"]), {"per_order_cap": "-5"}, follow=True
    )
    assert b"Most per order: enter at least $1, or leave it empty." in bad.content
    log = client.get(reverse("accounts:settings")).content
    assert b"Buying by post paused" in log
    assert b"Caps: per order $200.00" in log


# --- The back office door --------------------------------------------------------------------
def test_the_admin_login_goes_through_allauth():
    response = Client().get(reverse("admin:login"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_staff_without_a_second_factor_are_sent_to_set_one_up():
    staff = staff_user_upsert(
        username="s", email="s@example.com", password="pw-s", merchant_id=MerchantFactory().pk
    )
    client = Client()
    client.force_login(staff)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")
    totp_enable(staff)
    assert client.get(reverse("admin:index")).status_code == 200


@pytest.mark.parametrize("prefix_setting", ["script_name", "force_script_name"])
def test_the_totp_gate_holds_when_the_site_is_served_under_a_prefix(prefix_setting, settings):
    staff = staff_user_upsert(
        username="s", email="s@example.com", password="pw-s", merchant_id=MerchantFactory().pk
    )
    client = Client()
    client.force_login(staff)
    extra = {"SCRIPT_NAME": "/shop"}
    if prefix_setting == "force_script_name":
        settings.FORCE_SCRIPT_NAME = "/shop"
        extra = {}
    # The path below the mount point: request.path is /shop/admin/..., path_info /admin/...
    for page in (reverse("admin:index"), reverse("admin:orders_order_changelist")):
        response = client.get(page, **extra)
        assert response.status_code == 302, page
        assert response["Location"].endswith(reverse("mfa_activate_totp"))


def test_staff_with_totp_are_asked_for_the_code_at_sign_in():
    from tests.mfa import totp_code

    operator = operator_upsert(username="op", email="op@example.com", password="pw-op-12345")
    secret = totp_enable(operator)
    client = Client()
    response = client.post(
        reverse("account_login"), {"login": "op@example.com", "password": "pw-op-12345"}
    )
    assert response["Location"] == reverse("mfa_authenticate")
    assert client.get(reverse("admin:index")).status_code == 302  # not signed in yet
    client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert client.get(reverse("admin:index")).status_code == 200


def test_pages_carry_a_content_security_policy():
    policy = Client().get(reverse("landing"))["Content-Security-Policy"]
    assert "script-src 'self' https://js.stripe.com" in policy
    assert "frame-ancestors 'none'" in policy
    assert "'unsafe-inline'" not in policy


def test_a_forgotten_password_is_reset_by_an_emailed_link():
    cardholder_upsert(email="carol@example.com", password="pw-carol-123")
    client = Client()
    client.post(reverse("account_reset_password"), {"email": "carol@example.com"})
    (message,) = mail.outbox
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+/)", message.body).group(1)
    form = client.get(link, follow=True)
    client.post(
        form.redirect_chain[-1][0] if form.redirect_chain else link,
        {"password1": "a-new-long-passphrase", "password2": "a-new-long-passphrase"},
    )
    assert Client().login(username="carol@example.com", password="a-new-long-passphrase")


def test_repeated_failed_sign_ins_are_throttled():
    cardholder_upsert(email="carol@example.com", password="pw-carol-123")
    client = Client()
    for _ in range(5):
        client.post(reverse("account_login"), {"login": "carol@example.com", "password": "wrong"})
    # Even the right password is refused now, for a while.
    response = client.post(
        reverse("account_login"), {"login": "carol@example.com", "password": "pw-carol-123"}
    )
    assert response.status_code in (200, 429)
    assert "_auth_user_id" not in client.session
