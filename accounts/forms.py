"""Forms of the linking and settings pages. Validation only; the writes are services."""

from datetime import date
from typing import Any

from django import forms

US_STATES = [
    ("AL", "Alabama"), ("AK", "Alaska"), ("AZ", "Arizona"), ("AR", "Arkansas"),
    ("CA", "California"), ("CO", "Colorado"), ("CT", "Connecticut"), ("DE", "Delaware"),
    ("DC", "District of Columbia"), ("FL", "Florida"), ("GA", "Georgia"), ("HI", "Hawaii"),
    ("ID", "Idaho"), ("IL", "Illinois"), ("IN", "Indiana"), ("IA", "Iowa"), ("KS", "Kansas"),
    ("KY", "Kentucky"), ("LA", "Louisiana"), ("ME", "Maine"), ("MD", "Maryland"),
    ("MA", "Massachusetts"), ("MI", "Michigan"), ("MN", "Minnesota"), ("MS", "Mississippi"),
    ("MO", "Missouri"), ("MT", "Montana"), ("NE", "Nebraska"), ("NV", "Nevada"),
    ("NH", "New Hampshire"), ("NJ", "New Jersey"), ("NM", "New Mexico"), ("NY", "New York"),
    ("NC", "North Carolina"), ("ND", "North Dakota"), ("OH", "Ohio"), ("OK", "Oklahoma"),
    ("OR", "Oregon"), ("PA", "Pennsylvania"), ("RI", "Rhode Island"), ("SC", "South Carolina"),
    ("SD", "South Dakota"), ("TN", "Tennessee"), ("TX", "Texas"), ("UT", "Utah"),
    ("VT", "Vermont"), ("VA", "Virginia"), ("WA", "Washington"), ("WV", "West Virginia"),
    ("WI", "Wisconsin"), ("WY", "Wyoming"), ("PR", "Puerto Rico"), ("GU", "Guam"),
    ("VI", "U.S. Virgin Islands"), ("AS", "American Samoa"), ("MP", "Northern Mariana Islands"),
]  # fmt: skip


class CardNumberInput(forms.TextInput):
    """Never echoes the number back into the page, even when the form is shown again."""

    def format_value(self, value: Any) -> str | None:
        return None


class CardForm(forms.Form):
    """A card typed into the linking page. The number goes to the vault (``accounts.vault``)
    and nowhere else."""

    number = forms.CharField(
        label="Card number",
        max_length=23,
        widget=CardNumberInput(
            attrs={"autocomplete": "cc-number", "inputmode": "numeric", "spellcheck": "false"}
        ),
    )
    exp_month = forms.TypedChoiceField(
        label="Expiry month",
        coerce=int,
        choices=[(m, f"{m:02d}") for m in range(1, 13)],
        widget=forms.Select(attrs={"autocomplete": "cc-exp-month"}),
    )
    exp_year = forms.TypedChoiceField(
        label="Expiry year",
        coerce=int,
        choices=[],
        widget=forms.Select(attrs={"autocomplete": "cc-exp-year"}),
    )

    def __init__(self, *args: Any, today: date, number_help: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today
        self.fields["number"].help_text = number_help
        years = range(today.year, today.year + 15)
        self.fields["exp_year"].choices = [(y, str(y)) for y in years]  # type: ignore[attr-defined]
        # The first choices (January of this year) would be a card already expired: start on
        # next month, the earliest expiry a card in use can have after this one.
        year, month = divmod(today.year * 12 + today.month, 12)
        self.fields["exp_month"].initial = month + 1
        self.fields["exp_year"].initial = year

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        month, year = data.get("exp_month"), data.get("exp_year")
        if month and year and (year, month) < (self.today.year, self.today.month):
            raise forms.ValidationError("This card has expired.")
        return data


class AddressForm(forms.Form):
    """The billing address, which is also where every order ships (US only)."""

    billing_name = forms.CharField(
        label="Name on the card", max_length=200, widget=forms.TextInput({"autocomplete": "name"})
    )
    address_line1 = forms.CharField(
        label="Street address",
        max_length=200,
        widget=forms.TextInput({"autocomplete": "address-line1"}),
    )
    address_line2 = forms.CharField(
        label="Apartment, suite (optional)",
        max_length=200,
        required=False,
        widget=forms.TextInput({"autocomplete": "address-line2"}),
    )
    city = forms.CharField(
        label="City", max_length=100, widget=forms.TextInput({"autocomplete": "address-level2"})
    )
    state = forms.ChoiceField(
        label="State",
        choices=[("", "Choose…"), *US_STATES],
        widget=forms.Select({"autocomplete": "address-level1"}),
    )
    postal_code = forms.RegexField(
        label="ZIP code",
        regex=r"^[0-9]{5}(-[0-9]{4})?$",
        max_length=10,
        error_messages={"invalid": "Enter a ZIP code like 62701 or 62701-1234."},
        widget=forms.TextInput({"autocomplete": "postal-code", "inputmode": "numeric"}),
    )


class ConsentForm(forms.Form):
    agree = forms.BooleanField(
        label="I agree to the terms of buying by post above",
        required=True,
        error_messages={"required": "Tick the box to agree, or leave this page."},
    )


def _cap_errors(label: str, *, least: int) -> dict[str, str]:
    """Error messages of an amount field that say which field they are about."""
    return {
        "invalid": f"{label}: enter an amount in dollars, like 150 or 149.99.",
        "min_value": f"{label}: enter at least ${least}, or leave it empty.",
        "max_digits": f"{label}: that amount is too large.",
        "max_whole_digits": f"{label}: that amount is too large.",
        "max_decimal_places": f"{label}: use at most two digits for the cents.",
    }


class ControlsForm(forms.Form):
    """The limits of buying by post. Each error names its field (they are also said at the top
    of the page), and a per-order cap above the per-day cap is refused: no order could use it."""

    per_order_cap = forms.DecimalField(
        label="Most per order ($)",
        required=False,
        min_value=1,
        max_digits=10,
        decimal_places=2,
        error_messages=_cap_errors("Most per order", least=1),
    )
    per_day_cap = forms.DecimalField(
        label="Most per day ($)",
        required=False,
        min_value=1,
        max_digits=10,
        decimal_places=2,
        error_messages=_cap_errors("Most per day", least=1),
    )
    email_confirm_above = forms.DecimalField(
        label="Also confirm by e-mail above ($)",
        required=False,
        min_value=0,
        max_digits=10,
        decimal_places=2,
        help_text="Orders above this amount also need a click on a private link we e-mail you.",
        error_messages=_cap_errors("Also confirm by e-mail above", least=0),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        per_order, per_day = data.get("per_order_cap"), data.get("per_day_cap")
        if per_order is not None and per_day is not None and per_order > per_day:
            self.add_error(
                "per_order_cap",
                f"Most per order: ${per_order:,.2f} is more than your most per day "
                f"(${per_day:,.2f}); make it ${per_day:,.2f} or less.",
            )
        return data


# Saved option values shown on the settings page (a product has at most three options).
PREFERENCE_ROWS = 3


class PreferencesForm(forms.Form):
    """The cardholder's saved option values: up to ``PREFERENCE_ROWS`` pairs of an option name
    (``Size``) and a value (``M``); a pair left blank is removed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for n in range(1, PREFERENCE_ROWS + 1):
            self.fields[f"name_{n}"] = forms.CharField(
                label=f"Option {n}", required=False, max_length=50
            )
            self.fields[f"value_{n}"] = forms.CharField(
                label=f"Your choice for option {n}", required=False, max_length=50
            )

    @classmethod
    def from_saved(cls, saved: dict[str, str]) -> "PreferencesForm":
        initial = {}
        for n, (name, value) in enumerate(sorted(saved.items()), start=1):
            initial[f"name_{n}"], initial[f"value_{n}"] = name, value
        return cls(initial=initial)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for n in range(1, PREFERENCE_ROWS + 1):
            name, value = cleaned.get(f"name_{n}", ""), cleaned.get(f"value_{n}", "")
            if bool(name.strip()) != bool(value.strip()):
                self.add_error(f"value_{n}", f"Option {n}: give both the option and your choice.")
        return cleaned

    def preferences(self) -> dict[str, str]:
        return {
            self.cleaned_data[f"name_{n}"]: self.cleaned_data[f"value_{n}"]
            for n in range(1, PREFERENCE_ROWS + 1)
            if self.cleaned_data[f"name_{n}"].strip()
        }
