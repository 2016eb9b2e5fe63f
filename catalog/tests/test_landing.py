"""The site's root page says how to start and where to post (issue 13 item 8)."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.services import cardholder_upsert
from tests.shop import BRAND, shop_open

pytestmark = pytest.mark.django_db


def test_the_landing_page_says_to_link_a_card_and_names_the_brand_account():
    shop_open()
    html = Client().get(reverse("landing")).content.decode()
    assert "How to start" in html
    assert f'<a href="{reverse("accounts:link")}">Link your card</a>' in html
    assert f"<strong>@{BRAND}</strong> on Sandbox" in html
    assert "#BuyKindleFireHD" in html


def test_without_a_brand_account_the_page_still_says_how_to_start():
    html = Client().get(reverse("landing")).content.decode()
    assert "Link your card" in html
    assert "the brand account" in html


def test_a_signed_in_visitor_is_not_told_to_sign_up():
    client = Client()
    client.force_login(cardholder_upsert(email="carol@example.com", password="pw-123456").user)
    assert "sign up, then" not in client.get(reverse("landing")).content.decode()
    assert "sign up, then" in Client().get(reverse("landing")).content.decode()
