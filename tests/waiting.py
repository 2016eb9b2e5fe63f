"""Waiting on real processes in tests: poll with a deadline, see who waits on a row lock, and run
work on another database connection."""

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """Poll ``check`` until it returns something true; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def someone_waits_on_a_lock() -> list[int]:
    """Backend pids of other sessions of the test database waiting on a row lock."""
    with connection.cursor() as cursor:
        # Inside a transaction PostgreSQL keeps its first view of pg_stat_activity until the
        # transaction ends (and the caller usually holds one: the lock being waited on), so a
        # session that starts waiting after the first look would never be seen.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


class OtherConnection(threading.Thread):
    """``work`` on another thread, so on its own database connection; its result, or the error
    it raised, kept for the test to check after ``join``."""

    def __init__(self, work: Callable[[], object]) -> None:
        super().__init__()
        self.work = work
        self.result: object = None
        self.errors: list[BaseException] = []

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as exc:  # reported by the test after join
            self.errors.append(exc)
        finally:
            connection.close()


def in_another_connection(work: Callable[[], object]) -> OtherConnection:
    """Start ``work`` on another connection (``OtherConnection``) and return its thread."""
    thread = OtherConnection(work)
    thread.start()
    return thread
