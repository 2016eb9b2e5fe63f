"""Fixtures of the fault suite: a private Redis server (restarting it disturbs nobody else) and
Celery worker processes, both for the whole package and stopped when its last test is done, so
that no worker of ours touches the database under the rest of the suite (see ``harness``)."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from conftest import require_service
from tests.faults.harness import Fleet, RedisServer


@pytest.fixture(scope="package")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if not os.environ.get("REDIS_URL"):  # the suite's rule for tests that need Redis
        require_service("Redis is not configured (set REDIS_URL)")
    if shutil.which("redis-server") is None:
        require_service("redis-server is not installed (the fault suite starts its own)")
    server = RedisServer(Path(tmp_path_factory.mktemp("redis")))
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="package")
def _fleet(
    private_redis: RedisServer,
    django_db_setup: None,
    django_db_blocker: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fleet]:
    with django_db_blocker.unblock():
        workers = Fleet(broker=private_redis.url, workdir=Path(tmp_path_factory.mktemp("fleet")))
    yield workers
    workers.stop()


@pytest.fixture
def fleet(redis_url: str, private_redis: RedisServer, _fleet: Fleet) -> Iterator[Fleet]:
    """The suite's workers, ready, with nothing armed and no message of the previous scenario."""
    if private_redis.process is None or private_redis.process.poll() is not None:
        private_redis.start()  # a scenario that stopped it failed before starting it again
    _fleet.reset()
    private_redis.flush()
    _fleet.ready()
    yield _fleet
    _fleet.reset()
    connection.close()
