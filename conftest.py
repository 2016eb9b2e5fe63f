"""Suite-wide fixtures and the rule for tests that need a real service.

A test marked ``postgres`` runs only on PostgreSQL (``DATABASE_URL``); one that asks for the
``redis_url`` fixture runs only with ``REDIS_URL``. Without the service it is skipped with the
reason, unless ``REQUIRE_SERVICES=1`` (CI), when it fails instead.
"""

import os

import pytest
from django.conf import settings


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
    url = os.environ.get("REDIS_URL")
    if not url:
        require_service("Redis is not configured (set REDIS_URL)")
    assert url is not None
    return url
