"""The sales report benchmark runs at a tiny size on PostgreSQL, so a schema change that breaks it
fails the suite. Its figures are printed, not asserted; its rows are."""

import io

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_the_sales_report_benchmark_loads_its_world_and_prints_every_case():
    out = io.StringIO()
    call_command("bench_sales_report", "--orders", "400", "--repeat", "1", stdout=out)
    text = out.getvalue()

    assert "orders of the two bench merchants: 400" in text
    rows = {line[:28].strip(): line.split() for line in text.splitlines()[-7:-1]}
    assert set(rows) == {
        "staff, 30 days",
        "staff, 365 days",
        "staff, 365 days, CSV",
        "operator, merchant A, 365",
        "operator, all, 30 days",
        "operator, all, 365 days",
    }
    # Rows per day and platform: at most two platforms a day, for one merchant or both.
    for label, days in (("staff, 30 days", 30), ("staff, 365 days", 365)):
        assert 0 < int(rows[label][-1]) <= 2 * days
    assert rows["staff, 365 days, CSV"][-1] == rows["staff, 365 days"][-1]
