"""``run_demo``: the web server, a Celery worker and beat on the embedded defaults, one purchase
played end to end on the sandbox network, then serving until Ctrl-C."""

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devtools.demo_play import DemoStalled, demo_purchase_play


class Command(BaseCommand):
    help = (
        "Run the web server, a Celery worker and beat, play one purchase by post and print "
        "the conversation, then keep serving until interrupted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-play", action="store_true", help="Serve without the purchase.")

    def handle(self, *args: Any, **options: Any) -> None:
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        var = Path(settings.VAR_DIR)
        address = f"{options['host']}:{options['port']}"
        commands = {
            "web": [sys.executable, manage, "runserver", "--noreload", address],
            "worker": [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-c",
                "2",
                "--loglevel=WARNING",
                "--without-gossip",
                "--without-mingle",
            ],
            "beat": [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel=WARNING",
                "-s",
                str(var / "celery" / "beat-schedule"),
            ],
        }
        children = {
            name: subprocess.Popen(argv, cwd=settings.BASE_DIR)  # noqa: S603
            for name, argv in commands.items()
        }
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            self._wait_until_serving(f"http://{address}/", children)
            self.stdout.write(
                f"web: http://{address}/  back office: http://{address}/admin/  "
                f"sandbox: http://{address}/sandbox/",
                ending="\n",
            )
            if not options["no_play"]:
                try:
                    demo_purchase_play(say=lambda line: self.stdout.write(line))
                except DemoStalled as exc:
                    raise CommandError(f"The demo purchase stalled: {exc}") from exc
            self.stdout.write("Serving. Ctrl-C stops the web server, the worker and beat.")
            while all(child.poll() is None for child in children.values()):
                time.sleep(1)
            stopped = [name for name, child in children.items() if child.poll() is not None]
            raise CommandError(f"{', '.join(stopped)} stopped; shutting the demo down.")
        except KeyboardInterrupt:
            pass
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.terminate()
            for child in children.values():
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()

    def _wait_until_serving(self, url: str, children: dict[str, subprocess.Popen[bytes]]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for name, child in children.items():
                if child.poll() is not None:
                    raise CommandError(f"The {name} process exited with code {child.returncode}.")
            try:
                urllib.request.urlopen(url, timeout=2)  # noqa: S310 (our own local server)
                return
            except OSError:
                time.sleep(0.3)
        raise CommandError(f"The web server did not answer at {url}.")
