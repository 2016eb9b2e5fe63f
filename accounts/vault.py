"""The card vault's contract (DESIGN §6): where the linking page sends a card number.

A vault takes the number and gives back a token and what may be shown (``VaultedCard``: brand,
last four digits, expiry); the number is never stored, logged or returned.
``HASHCART["CARD_VAULT"]`` names the vault by dotted path, as Django names its ``EMAIL_BACKEND``:
the sandbox's test-card vault (``sandbox.vault.SandboxVault``) or Stripe's
(``accounts.stripe_vault.StripeVault``).
"""

from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class VaultedCard:
    """What is kept of a card: never its number."""

    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


class CardVault:
    """Where card numbers go.

    ``name`` is recorded on each card the vault keeps (``Card.gateway``). A ``hosted`` vault
    takes the number on the provider's own page (Stripe's Payment Element: the linking page
    never sees it); any other vault gets it from the linking page's card form, through
    ``tokenize``, with ``number_help`` shown under the number field.
    """

    name: str = ""
    hosted: bool = False
    number_help: str = ""

    def tokenize(self, *, number: str, exp_month: int, exp_year: int) -> VaultedCard:
        """Vault the card; raises ``core.exceptions.ApplicationError`` with a message for the
        cardholder when the number is refused."""
        raise NotImplementedError(f"The {self.name} vault takes cards on its own page.")


def card_vault() -> CardVault:
    """The vault configured in ``HASHCART["CARD_VAULT"]``."""
    vault: CardVault = import_string(settings.HASHCART["CARD_VAULT"])()
    return vault
