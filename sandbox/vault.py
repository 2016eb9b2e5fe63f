"""The sandbox card vault: what a payment provider's hosted card form does, for the sandbox.

The card number comes in, is checked, and goes no further: out come a token and what may be
shown (brand, last four digits, expiry). The number is never stored, logged or returned. The
token tells the sandbox gateway how to answer (``sandbox.gateway``).
"""

import secrets

from accounts.vault import CardVault, VaultedCard
from core.exceptions import ApplicationError

# Test numbers, as payment providers publish them: (brand, how the gateway answers).
TEST_CARDS: dict[str, tuple[str, str]] = {
    "4242424242424242": ("Visa", "approve"),
    "5555555555554444": ("Mastercard", "approve"),
    "378282246310005": ("American Express", "approve"),
    "4000000000000002": ("Visa", "decline"),
    "4000000000009995": ("Visa", "decline"),
    # Stripe's card whose bank always asks the cardholder to authenticate (3-D Secure).
    "4000002760003184": ("Visa", "authenticate"),
}
# The token's prefix tells the sandbox gateway how to answer (``sandbox.gateway``).
TOKEN_PREFIXES = {
    "approve": "tok_sandbox_",
    "decline": "tok_sandbox_decline_",
    "authenticate": "tok_sandbox_3ds_",
}


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (only digits) pass the Luhn check every card number passes."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def card_tokenize(*, number: str, exp_month: int, exp_year: int) -> VaultedCard:
    """Tokenize a sandbox test card. Spaces and dashes in ``number`` are ignored.

    Raises ``ApplicationError`` for a number that is not a card number (length, digits, Luhn) or
    not one of the sandbox's test numbers: a real card never enters the sandbox.
    """
    digits = "".join(ch for ch in number if ch not in " -")
    if not digits.isdigit() or not 13 <= len(digits) <= 19 or not luhn_valid(digits):
        raise ApplicationError("That is not a valid card number.")
    if digits not in TEST_CARDS:
        raise ApplicationError(
            "This is the sandbox: use a test card number, such as 4242 4242 4242 4242."
        )
    brand, answer = TEST_CARDS[digits]
    return VaultedCard(
        token=TOKEN_PREFIXES[answer] + secrets.token_hex(12),
        brand=brand,
        last4=digits[-4:],
        exp_month=exp_month,
        exp_year=exp_year,
    )


class SandboxVault(CardVault):
    """The linking page's card form, taking the sandbox's test numbers (``card_tokenize``)."""

    name = "sandbox"
    number_help = (
        "Sandbox test cards: 4242 4242 4242 4242 is approved, 4000 0000 0000 0002 is declined, "
        "4000 0027 6000 3184 asks you to authenticate each purchase."
    )

    def tokenize(self, *, number: str, exp_month: int, exp_year: int) -> VaultedCard:
        return card_tokenize(number=number, exp_month=exp_month, exp_year=exp_year)
