"""``make demo`` on embedded defaults: web server, Celery worker and beat on SQLite and the
filesystem broker; one purchase played end to end; the back office with the four campaigns.

This runs the README's demo command itself, in a scratch ``var/`` directory, reads the printed
transcript, and logs in through the real login form (CSRF included) as the demo operator.
"""

import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo(tmp_path):
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env["HASHCART_VAR_DIR"] = str(tmp_path / "var")
    log = (tmp_path / "demo.log").open("w")
    process = subprocess.Popen(  # noqa: S603
        ["make", "--no-print-directory", "demo", f"PORT={port}"],  # noqa: S607
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"make demo exited: {(tmp_path / 'demo.log').read_text()}")
        try:
            urllib.request.urlopen(f"{base}/", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        pytest.fail(f"make demo did not serve in time: {(tmp_path / 'demo.log').read_text()}")
    yield base, tmp_path / "demo.log"
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)
    log.close()


def _wait_for_line(log: Path, pattern: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text(), re.MULTILINE)
        if found:
            return found.group(0)
        time.sleep(0.5)
    pytest.fail(f"no line matching {pattern!r} in:\n{log.read_text()[-3000:]}")


def test_make_demo_plays_a_purchase_on_real_workers(demo):
    _, log = demo
    _wait_for_line(log, r"^Order #[2-9A-Z]{5} is paid: ships by \S+, promised for \S+\.$")
    transcript = log.read_text()
    handle = re.search(r"A new shopper, @(shopper\d+)", transcript).group(1)
    lines = [line.strip() for line in transcript.splitlines() if line.startswith("  @")]
    assert lines[0] == f"@{handle}: @HashcartDeals #BuyKindleFireHD"
    assert lines[1].startswith(f"@HashcartDeals: @{handle} To buy Kindle Fire HD for $149.00")
    assert lines[2].startswith(f"@{handle}: @HashcartDeals #Confirm")
    assert lines[3].startswith(f"@HashcartDeals: @{handle} Thanks!")


def test_make_demo_serves_the_admin_with_the_four_campaigns(demo):
    base, log = demo
    assert "brand: @HashcartDeals" in log.read_text()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    # The admin's login sends everyone to allauth's sign-in (by e-mail), then back.
    response = opener.open(f"{base}/admin/login/?next=/admin/catalog/campaign/")
    login_url = response.geturl()
    assert "/accounts/login/" in login_url
    page = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {
            "csrfmiddlewaretoken": token,
            "login": "ops@example.com",
            "password": "hashcart-demo",
            "next": "/admin/catalog/campaign/",
        }
    ).encode()
    request = urllib.request.Request(login_url, data=form, headers={"Referer": login_url})
    page = opener.open(request).read().decode()
    for tag in (
        "#BuyKindleFireHD",
        "#BuyActionCamPack",
        "#BuyUrbanZenBracelet",
        "#BuyXbox360Bundle",
    ):
        assert tag in page
    landing = opener.open(f"{base}/").read().decode()
    assert "#BuyKindleFireHD" in landing


def test_the_demo_database_keeps_the_one_live_campaign_per_key_triggers(demo):
    """SQLite drops a table's triggers when a migration rebuilds the table (0007 once did so
    silently): the demo's database, built by every migration there is, must hold them all."""
    _, log = demo
    with sqlite3.connect(log.parent / "var" / "hashcart.sqlite3") as database:
        triggers = {
            name
            for (name,) in database.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }
    assert {
        "campaign_one_live_per_key_insert",
        "campaign_one_live_per_key_update",
        "campaignlisting_one_live_per_key_insert",
        "campaignlisting_one_live_per_key_update",
    } <= triggers
