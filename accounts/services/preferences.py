"""The cardholder's saved option values (``Size`` = ``M``), which fill what a purchase post
leaves out (README, "Posting a purchase: variant and quantity")."""

from django.db import transaction

from accounts.models import Cardholder, OptionPreference
from social.hashtags import hashtag_key


def option_preferences_set(*, cardholder: Cardholder, preferences: dict[str, str]) -> None:
    """Replace the cardholder's saved option values with ``preferences`` (option name ->
    value; blank names or values are left out, and of two names alike once normalised the
    last one given wins)."""
    rows: dict[str, OptionPreference] = {}
    for name, value in preferences.items():
        name, value = name.strip(), value.strip()
        if name and value:
            rows[hashtag_key(name)] = OptionPreference(
                cardholder=cardholder, name=name, name_key=hashtag_key(name), value=value
            )
    with transaction.atomic():
        OptionPreference.objects.filter(cardholder=cardholder).delete()
        OptionPreference.objects.bulk_create(rows.values())
