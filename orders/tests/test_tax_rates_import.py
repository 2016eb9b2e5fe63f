"""``tax_rates_import FILE``: a good file replaces the rates table; a bad one changes nothing
and names its bad lines (DESIGN §3.8)."""

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from orders.models import TaxRate
from orders.tax.rates import SHIPPED

pytestmark = pytest.mark.django_db

HEADER = "state,zip_prefix,jurisdiction,rate_percent,source,effective_date\n"


def _table() -> list[tuple[str, str, str, Decimal]]:
    return list(
        TaxRate.objects.order_by("state", "zip_prefix", "jurisdiction").values_list(
            "state", "zip_prefix", "jurisdiction", "rate"
        )
    )


def test_the_shipped_table_is_loaded_with_every_state_and_new_york_city():
    states = set(TaxRate.objects.filter(zip_prefix="").values_list("state", flat=True))
    assert len(states) == 51  # the 50 states and DC
    nyc = TaxRate.objects.filter(state="NY", zip_prefix__in=["100", "104", "111", "116"])
    assert nyc.count() == 8
    assert TaxRate.objects.get(state="OR").rate == 0


def test_a_good_file_replaces_the_whole_table(tmp_path, capsys):
    newer = tmp_path / "rates.csv"
    newer.write_text(
        HEADER
        + "NY,,New York,4.00,NY DTF,2027-01-01\n"
        + "NY,100,New York City,4.75,NY DTF,2027-01-01\n"
        + "OR,,Oregon,0,Oregon DOR,2027-01-01\n"
    )
    call_command("tax_rates_import", str(newer))

    assert _table() == [
        ("NY", "", "New York", Decimal("0.04000")),
        ("NY", "100", "New York City", Decimal("0.04750")),
        ("OR", "", "Oregon", Decimal("0.00000")),
    ]
    out = capsys.readouterr().out
    assert "with 3 (2 state rates, 1 local rates)" in out


def test_a_bad_file_changes_nothing_and_names_each_bad_line(tmp_path):
    before = _table()
    bad = tmp_path / "rates.csv"
    bad.write_text(
        HEADER
        + "NY,,New York,4.00,NY DTF,2027-01-01\n"
        + "XX,,Nowhere,4.00,?,2027-01-01\n"  # line 3: no such state
        + "NY,10,New York City,4.5,NY DTF,2027-01-01\n"  # line 4: a two-digit prefix
        + "NY,100,New York City,104,NY DTF,2027-01-01\n"  # line 5: over 100%
        + "NJ,,New Jersey,6.625,NJ,01/01/2027\n"  # line 6: not an ISO date
        + "NY,,New York,4.00,NY DTF,2027-01-01\n"  # line 7: repeats line 2
        + "CT,061,Hartford,1.0,?,2027-01-01\n"  # line 8: no Connecticut state row
    )
    with pytest.raises(CommandError) as raised:
        call_command("tax_rates_import", str(bad))

    message = str(raised.value)
    assert "6 error(s), nothing changed" in message
    errors = message.splitlines()[1:]
    for line, what in [
        (3, "unknown state"),
        (4, "not three digits"),
        (5, "is not 0 to 100"),
        (6, "is not YYYY-MM-DD"),
        (7, "repeats line 2"),
        (8, "which has no state row"),
    ]:
        assert [e for e in errors if e.startswith(f"line {line}: ") and what in e], line
    assert _table() == before


def test_a_file_with_the_wrong_columns_is_refused_at_line_one(tmp_path):
    before = _table()
    bad = tmp_path / "rates.csv"
    bad.write_text("state,rate\nNY,4\n")
    with pytest.raises(CommandError, match="line 1: the header must be"):
        call_command("tax_rates_import", str(bad))
    assert _table() == before


def test_check_only_changes_nothing(tmp_path, capsys):
    before = _table()
    call_command("tax_rates_import", str(SHIPPED), "--check")
    assert "good (51 state rates, 26 local rates)" in capsys.readouterr().out
    assert _table() == before
