"""The card step, card removal and the limits form keep the cardholder's work (issue 13 item 8):
a sensible expiry to start from, what was typed kept when a field is refused (never the card
number), the saved address reused for a new card, a question before a card goes, and limits
whose errors say which field they are about."""

import re
from datetime import date

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Card, Cardholder
from accounts.services import card_remove, cardholder_upsert, controls_update
from core.exceptions import ApplicationError
from tests.shop import buyer_ready

pytestmark = pytest.mark.django_db

CARD = "4242424242424242"
ADDRESS = {
    "billing_name": "Carol Jones",
    "address_line1": "12 Elm Street",
    "address_line2": "Apt 3",
    "city": "Springfield",
    "state": "IL",
    "postal_code": "62701",
}


def _signed_in(cardholder: Cardholder | None = None) -> tuple[Client, Cardholder]:
    cardholder = cardholder or cardholder_upsert(email="carol@example.com", password="pw-123456")
    client = Client()
    client.force_login(cardholder.user)
    return client, cardholder


def _found(pattern: str, text: str) -> re.Match[str]:
    found = re.search(pattern, text, re.S)
    assert found is not None, pattern
    return found


def _selected(html: str, name: str) -> str:
    """The chosen option of a select (month and year numbers, or a state's code)."""
    select = _found(rf'<select name="{name}".*?</select>', html).group(0)
    return _found(r'<option value="(\w+)"[^>]*selected', select).group(1)


def _value(html: str, name: str) -> str | None:
    field = _found(rf'<input[^>]*name="{name}"[^>]*>', html).group(0)
    found = re.search(r'value="([^"]*)"', field)
    return found.group(1) if found else None


# --- The card step ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("today", "month", "year"),
    [(date(2026, 11, 29), "12", "2026"), (date(2026, 12, 3), "1", "2027")],
)
def test_the_expiry_starts_on_next_month(today, month, year):
    client, _ = _signed_in()
    with time_machine.travel(today, tick=False):
        html = client.get(reverse("accounts:link_card")).content.decode()
    assert (_selected(html, "exp_month"), _selected(html, "exp_year")) == (month, year)


def test_a_refused_card_keeps_the_expiry_but_never_the_number():
    client, _ = _signed_in()
    with time_machine.travel(date(2026, 11, 29), tick=False):
        expired = client.post(
            reverse("accounts:link_card"), {"number": CARD, "exp_month": "3", "exp_year": "2026"}
        ).content.decode()
        refused = client.post(
            reverse("accounts:link_card"),
            {"number": "4111111111111111", "exp_month": "7", "exp_year": "2030"},
        ).content.decode()
    assert "This card has expired." in expired
    assert (_selected(expired, "exp_month"), _selected(expired, "exp_year")) == ("3", "2026")
    assert CARD not in expired
    assert _value(expired, "number") is None
    assert (_selected(refused, "exp_month"), _selected(refused, "exp_year")) == ("7", "2030")
    assert "4111111111111111" not in refused
    assert _value(refused, "number") is None
    assert not Card.objects.exists()


def test_a_refused_address_keeps_what_was_typed():
    client, _ = _signed_in()
    client.post(
        reverse("accounts:link_card"), {"number": CARD, "exp_month": "12", "exp_year": "2031"}
    )
    html = client.post(
        reverse("accounts:link_address"), {**ADDRESS, "postal_code": "6270"}
    ).content.decode()
    assert "Enter a ZIP code like 62701" in html
    for name in ("billing_name", "address_line1", "address_line2", "city"):
        assert _value(html, name) == ADDRESS[name]
    assert _value(html, "postal_code") == "6270"
    assert _selected(html, "state") == "IL"


@pytest.mark.parametrize("removed_first", [False, True])
def test_a_new_card_starts_from_the_saved_address(removed_first):
    buyer = buyer_ready("carol", address={"address_line1": "9 Oak Road", "city": "Chicago"})
    client, cardholder = _signed_in(buyer.cardholder)
    if removed_first:
        client.post(
            reverse("accounts:settings_action", args=["remove-card"]), {"card": buyer.card.pk}
        )
        assert not cardholder.cards.filter(removed_at__isnull=True).exists()
    client.post(
        reverse("accounts:link_card"), {"number": CARD, "exp_month": "12", "exp_year": "2031"}
    )
    html = client.get(reverse("accounts:link_address")).content.decode()
    assert "We filled in the address you saved" in html
    assert (_value(html, "address_line1"), _value(html, "city")) == ("9 Oak Road", "Chicago")
    assert _selected(html, "state") == "IL"


def test_the_first_card_starts_from_an_empty_address():
    client, _ = _signed_in()
    client.post(
        reverse("accounts:link_card"), {"number": CARD, "exp_month": "12", "exp_year": "2031"}
    )
    html = client.get(reverse("accounts:link_address")).content.decode()
    assert "We filled in" not in html
    assert _value(html, "address_line1") is None


# --- Removing a card asks first -------------------------------------------------------------
def test_removing_a_card_asks_first_and_only_the_answer_removes_it():
    buyer = buyer_ready("carol")
    client, _ = _signed_in(buyer.cardholder)
    settings_page = client.get(reverse("accounts:settings")).content.decode()
    ask = reverse("accounts:card_remove_confirm", args=[buyer.card.pk])
    assert f'href="{ask}"' in settings_page
    # The settings page itself has no button that removes a card at once.
    assert reverse("accounts:settings_action", args=["remove-card"]) not in settings_page
    question = client.get(ask)
    assert question.status_code == 200
    assert b"Yes, remove this card" in question.content
    assert b"not yet charged are cancelled" in question.content
    buyer.card.refresh_from_db()
    assert buyer.card.removed_at is None  # asking changes nothing
    form = _found(r'<form method="post" action="([^"]+)">', question.content.decode())
    client.post(form.group(1), {"card": buyer.card.pk})
    buyer.card.refresh_from_db()
    assert buyer.card.removed_at is not None


def test_the_question_about_another_s_card_or_a_removed_one_is_a_404():
    carol = buyer_ready("carol")
    dave = buyer_ready("dave")
    client, _ = _signed_in(carol.cardholder)
    assert (
        client.get(reverse("accounts:card_remove_confirm", args=[dave.card.pk])).status_code == 404
    )
    card_remove(cardholder=carol.cardholder, card_id=carol.card.pk, now=timezone.now())
    assert (
        client.get(reverse("accounts:card_remove_confirm", args=[carol.card.pk])).status_code == 404
    )


# --- The limits form --------------------------------------------------------------------------
def _limits(client: Client, **values: str):
    data = {"per_order_cap": "", "per_day_cap": "", "email_confirm_above": "", **values}
    return client.post(reverse("accounts:settings_action", args=["controls"]), data)


def test_a_per_order_cap_above_the_per_day_cap_is_refused_naming_the_field_and_keeping_input():
    client, cardholder = _signed_in()
    response = _limits(client, per_order_cap="300", per_day_cap="100", email_confirm_above="50")
    html = response.content.decode()
    assert response.status_code == 200  # the page again, not a redirect that forgets the input
    assert "Your limits are not saved" in html
    assert "Most per order: $300.00 is more than your most per day ($100.00)" in html
    assert (_value(html, "per_order_cap"), _value(html, "per_day_cap")) == ("300", "100")
    assert _value(html, "email_confirm_above") == "50"
    assert 'aria-invalid="true"' in html
    cardholder.controls.refresh_from_db()
    assert cardholder.controls.per_order_cap is None
    assert cardholder.controls.per_day_cap is None


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"per_order_cap": "-5"}, "Most per order: enter at least $1, or leave it empty."),
        ({"per_day_cap": "lots"}, "Most per day: enter an amount in dollars"),
        ({"email_confirm_above": "1.999"}, "Also confirm by e-mail above: use at most two digits"),
    ],
)
def test_each_limits_error_names_its_field_and_keeps_the_input(values, error):
    client, _ = _signed_in()
    html = _limits(client, **values).content.decode()
    assert error in html
    ((name, typed),) = values.items()
    assert _value(html, name) == typed


def test_equal_caps_and_a_per_day_cap_alone_are_saved():
    client, cardholder = _signed_in()
    assert _limits(client, per_order_cap="100", per_day_cap="100").status_code == 302
    cardholder.controls.refresh_from_db()
    assert cardholder.controls.per_order_cap == cardholder.controls.per_day_cap == 100
    assert _limits(client, per_day_cap="50").status_code == 302


def test_the_service_refuses_a_per_order_cap_above_the_per_day_cap_too():
    _, cardholder = _signed_in()
    with pytest.raises(ApplicationError, match="per order cannot be more than the most per day"):
        controls_update(
            cardholder=cardholder,
            per_order_cap=200,
            per_day_cap=100,
            email_confirm_above=None,
            now=timezone.now(),
        )
