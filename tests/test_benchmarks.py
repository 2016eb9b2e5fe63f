"""Every benchmark command runs at a tiny size on PostgreSQL, so a schema change that breaks one
fails the suite (issue 10 §7). Their figures are printed, not asserted: a test machine's timings
say nothing; the commands' own invariants and their exit status do."""

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from orders.admin import OrderAdmin

pytestmark = pytest.mark.postgres


def _run(name: str, *args: str) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_admin_changelist_benchmark_loads_its_orders_and_prints_every_view():
    out = _run("bench_admin_changelist", "--orders", "60", "--repeat", "1")

    assert "orders in the bench merchants: 60" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("view"))
    rows = {line[:28].strip(): line.split() for line in lines[header + 1 :]}
    assert set(rows) == {
        "staff, all orders",
        "staff, status=delivered",
        "staff, search by handle",
        "staff, page 20",
        "operator, all orders",
        "operator, status=paid",
        "staff, code",
        "staff, #code in lower case",
        "staff, @HANDLE in capitals",
        "staff, post id",
        "staff, X link",
        "staff, one day a year ago",
        "staff, 30 days a year ago",
        "staff, e-mail (finds none)",
        "operator, code",
        "operator, e-mail",
        "operator, card last four",
        "operator, one day",
    }
    page = OrderAdmin.list_per_page
    assert rows["staff, all orders"][-1] == str(min(30, page))  # one of the two bench merchants
    assert rows["operator, all orders"][-1] == str(min(60, page))  # both
    # Each search finds the sampled order (a code, a post: one), staff never by e-mail.
    for label in ("staff, code", "staff, #code in lower case", "staff, X link", "operator, code"):
        assert rows[label][-1] == "1", label
    assert rows["staff, e-mail (finds none)"][-1] == "0"
    assert int(rows["operator, e-mail"][-1]) >= 1


@pytest.mark.django_db(transaction=True)
def test_the_flash_sale_benchmark_runs_and_keeps_its_invariants(redis_url, tmp_path, settings):
    settings.REDIS_URL = redis_url
    out = _run(
        "bench_flash_sale",
        "--buyers",
        "200",
        "--noise",
        "80",
        "--units",
        "20",
        "--rate",
        "200",
        "--rate-seconds",
        "1",
        "--pgbench-seconds",
        "1",
        "--pgbench-scale",
        "1",
        "--reply-budget",
        "5/900",
        "--report-dir",
        str(tmp_path),
    )
    report = json.loads(Path(out.strip().rsplit("report: ", 1)[1]).read_text())
    # Five requests fit the reply budget; the other fifteen went privately, and every buyer's
    # request is out (the figures are printed, not asserted).
    assert "purchase post to confirmation request" in out
    requests = report["requests"]
    assert (requests["orders"], requests["public"], requests["private"]) == (20, 5, 15)
    assert requests["private_emails_sent"] == 15
    assert requests["public_replies_with_a_private_code"] == 0
    assert report["invariants"]["orders"] == 20
    assert report["invariants"]["stock_never_negative"] is True
    assert report["invariants"]["undecided_posts"] == 0
    assert report["invariants"]["duplicate_reply_texts"] == 0
    assert report["authorizations"]["paid"] == 20
    assert report["pgbench"]["tps"] > 0
    assert [phase["name"] for phase in report["phases"]] == [
        "flash sale",
        "confirmations",
        "steady load",
    ]
