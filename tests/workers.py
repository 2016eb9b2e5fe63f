"""Celery worker processes (with beat) for the end-to-end tests: on the test database and a
Redis database of the caller's, stopped (and their process groups killed) afterwards."""

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def celery_workers(
    *, broker: str, tmp_path: Path, env: dict[str, str]
) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Yield ``start``: each call starts one worker with beat (2 processes) on ``broker``, with
    the pipeline's fast intervals and ``env`` on top, logging to ``tmp_path/worker-N.log``."""
    db = connection.settings_dict
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": broker,
        "HASHCART_POLL_INTERVAL_SECONDS": "0.3",
        "HASHCART_SWEEP_INTERVAL_SECONDS": "0.5",
        "HASHCART_RECOVER_INTERVAL_SECONDS": "2",
        "CELERY_VISIBILITY_TIMEOUT": "5",
        **env,
    }
    started: list[subprocess.Popen[bytes]] = []
    logs = []

    def start() -> subprocess.Popen[bytes]:
        logs.append((tmp_path / f"worker-{len(started)}.log").open("w"))
        process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-B",
                "-c",
                "2",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=WARNING",
                "-s",
                str(tmp_path / f"beat-{len(started)}"),
            ],
            cwd=ROOT,
            env=environment,
            stdout=logs[-1],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=20)
        for log in logs:
            log.close()
        connection.close()
