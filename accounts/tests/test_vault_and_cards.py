"""The sandbox vault keeps no number; cards and addresses start the cooling-off (§6, §8)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AccountEvent, Card
from accounts.services import address_change, card_save, cardholder_upsert
from core.exceptions import ApplicationError
from sandbox.vault import card_tokenize, luhn_valid

ADDRESS = {
    "billing_name": "Carol",
    "address_line1": "1 Main Street",
    "address_line2": "",
    "city": "Springfield",
    "state": "IL",
    "postal_code": "62701",
}


@pytest.mark.parametrize(
    ("number", "valid"),
    [("4242424242424242", True), ("4242424242424241", False), ("79927398713", True)],
)
def test_luhn(number, valid):
    assert luhn_valid(number) is valid


def test_test_cards_are_tokenized_and_the_number_is_not_kept():
    card = card_tokenize(number="4242 4242-4242 4242", exp_month=12, exp_year=2030)
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("Visa", "4242", 12, 2030)
    assert card.token.startswith("tok_sandbox_")
    assert "4242424242424242" not in repr(card)
    declined = card_tokenize(number="4000000000000002", exp_month=1, exp_year=2031)
    assert "decline" in declined.token


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("4242424242424241", "not a valid card number"),
        ("4242", "not a valid card number"),
        ("4242x24242424242", "not a valid card number"),
        ("4111111111111111", "use a test card number"),  # Luhn-valid, but not a sandbox card
    ],
)
def test_other_numbers_are_refused(number, message):
    with pytest.raises(ApplicationError, match=message):
        card_tokenize(number=number, exp_month=12, exp_year=2030)


@pytest.mark.django_db
def test_a_new_address_restarts_the_cooling_off_and_the_same_one_does_not():
    cardholder = cardholder_upsert(email="carol@example.com", password="pw")
    start = timezone.now() - timedelta(days=3)
    vaulted = card_tokenize(number="4242424242424242", exp_month=12, exp_year=2030)
    card = card_save(
        cardholder=cardholder, card=vaulted, gateway="sandbox", address=ADDRESS, now=start
    )
    assert card.address_changed_at == start
    same = address_change(cardholder=cardholder, address=ADDRESS, now=start + timedelta(days=1))
    assert same.address_changed_at == start
    moved = address_change(
        cardholder=cardholder,
        address={**ADDRESS, "address_line1": "2 Elm Street"},
        now=start + timedelta(days=2),
    )
    assert moved.address_changed_at == start + timedelta(days=2)
    kinds = list(AccountEvent.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["card_added", "address_changed"]


@pytest.mark.django_db
def test_a_second_card_becomes_the_default_and_keeps_the_address_time_when_unchanged():
    cardholder = cardholder_upsert(email="carol@example.com", password="pw")
    start = timezone.now() - timedelta(days=3)
    first = card_tokenize(number="4242424242424242", exp_month=12, exp_year=2030)
    second = card_tokenize(number="5555555555554444", exp_month=12, exp_year=2031)
    card_save(cardholder=cardholder, card=first, gateway="sandbox", address=ADDRESS, now=start)
    card = card_save(
        cardholder=cardholder, card=second, gateway="sandbox", address=ADDRESS, now=timezone.now()
    )
    assert card.address_changed_at == start
    assert list(Card.objects.filter(is_default=True).values_list("brand", flat=True)) == [
        "Mastercard"
    ]
