"""Suite-wide fixtures and the rule for tests that need a real service.

A test marked ``postgres`` runs only on PostgreSQL (``DATABASE_URL``); one that asks for the
``redis_url`` fixture runs only with ``REDIS_URL``. Without the service it is skipped with the
reason, unless ``REQUIRE_SERVICES=1`` (CI), when it fails instead.

The sales-tax rates table is data a migration loads; a transactional test's database is emptied
after it (flushed), so ``_shipped_tax_rates`` loads the shipped table again before each one, and
every test sees the tax a real database holds, whatever ran before it.
"""

import logging
from collections.abc import Iterator

import pytest
from django.conf import settings

# Every log line of the run, formatted, for the final scan for card numbers
# (tests/test_no_card_numbers.py); the level is lowered to DEBUG for the run.
CAPTURED_LOGS: list[str] = []
# Paused only while a fuzzer runs: its random digits (say, an order id of 16 digits in a 404's
# path) are Luhn-valid one time in ten, and they are not anybody's card.
_CAPTURE = {"paused": False}


@pytest.fixture
def fuzzing() -> Iterator[None]:
    """For property-based tests: their generated inputs stay out of the card-number scan."""
    _CAPTURE["paused"] = True
    yield
    _CAPTURE["paused"] = False


class _Keep(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if _CAPTURE["paused"]:
            return
        try:
            CAPTURED_LOGS.append(self.format(record))
        except Exception:  # a record that cannot be formatted is kept raw
            CAPTURED_LOGS.append(f"{record.msg!r} {record.args!r}")


@pytest.fixture(scope="session", autouse=True)
def _keep_every_log_line() -> None:
    """Installed once Django has configured logging (which replaces the root's handlers)."""
    handler = _Keep(level=logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)


@pytest.fixture(autouse=True)
def _shipped_tax_rates(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("django_db")
    transactional = (
        marker is not None and bool(marker.kwargs.get("transaction") or marker.args[:1] == (True,))
    ) or bool({"transactional_db", "live_server"} & set(request.fixturenames))
    if not transactional:
        return
    request.getfixturevalue("transactional_db")
    from orders.models import TaxRate
    from orders.services.tax import tax_rates_replace
    from orders.tax.rates import SHIPPED, rates_read

    if not TaxRate.objects.exists():
        with SHIPPED.open(newline="", encoding="utf-8") as stream:
            tax_rates_replace(rows=rates_read(stream))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The scan for card numbers runs after everything else, over what everything left."""
    last = [item for item in items if item.get_closest_marker("after_everything")]
    items[:] = [item for item in items if item not in last] + last


def require_service(reason: str) -> None:
    """Skip the running test for want of a service, or fail it when services are required."""
    if settings.REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres"):
        from django.db import connection

        if connection.vendor != "postgresql":
            require_service("PostgreSQL is not configured (set DATABASE_URL)")


@pytest.fixture
def redis_url() -> str:
    url = settings.REDIS_URL
    if not url:
        require_service("Redis is not configured (set REDIS_URL)")
    assert url is not None
    return url
