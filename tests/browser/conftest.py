"""Browser tests: Playwright driving Debian's Chromium (never a downloaded browser).

Each test gets a fresh page on a 375-pixel-wide screen (the phone the pages must work on),
pointed at pytest-django's live server. ``shot(page, name)`` keeps a screenshot per step under
``var/test-artifacts/browser/<test>/``, and ``accessible(page)`` runs axe-core in the page and
fails on serious or critical violations.
"""

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

from conftest import require_service

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

ARTIFACTS = Path(settings.BASE_DIR) / "var" / "test-artifacts" / "browser"
PHONE: "ViewportSize" = {"width": 375, "height": 812}


def _chromium() -> str | None:
    return os.environ.get("HASHCART_CHROMIUM") or shutil.which("chromium")


@pytest.fixture
def page(live_server, monkeypatch) -> Iterator:
    """A page in a new headless Chromium. Playwright is started and stopped per test: its event
    loop must not outlive the test, or Django sees every later test as running in async code."""
    executable = _chromium()
    if executable is None:
        require_service("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's loop runs in this thread, but the test's own ORM calls are synchronous and
    # single-threaded, so Django's guard is lifted for this test (and not its subprocesses).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        context = browser.new_context(viewport=PHONE, base_url=live_server.url)
        context.set_default_timeout(15_000)
        page = context.new_page()
        # Each error names the page it came from (a walk visits many).
        page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
        page.on(
            "console",
            lambda message: (
                errors.append(f"{page.url}: {message.text}")
                if message.type == "error" and "Content Security Policy" in message.text
                else None
            ),
        )
        yield page
        browser.close()
        # The test's database connection was opened while Playwright's loop ran: close it here,
        # in the same context, or the test database cannot be dropped at the end of the run.
        connections.close_all()
    assert not errors, f"errors in the page: {errors}"


@pytest.fixture
def shot(request) -> Callable:
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    count = iter(range(1, 1000))

    def take(page, name: str) -> Path:
        path = folder / f"{next(count):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def signed_in(page, user, live_server_url: str) -> None:
    """Sign ``page``'s browser in as ``user`` (a session made by Django's test client, whose
    cookie the browser is given: no login form, no TOTP step), replacing any earlier session."""
    client = Client()
    client.force_login(user)
    page.context.clear_cookies()
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server_url,
            }
        ]
    )


def accessible(page) -> None:
    """axe-core's serious and critical violations on the page: there must be none. Also: the
    page must not scroll sideways on the phone's width."""
    from axe_playwright_python.sync_playwright import Axe

    # No "preload": axe would fetch the page's stylesheets' @imports itself (the admin's forms.css
    # imports widgets.css), resolve them against the page's URL, and inject what it fetched as
    # inline <style>, which the Content-Security-Policy blocks: errors of axe's, not the page's.
    results = Axe().run(page, options={"resultTypes": ["violations"], "preload": False})
    bad = [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"accessibility violations on {page.url}: {bad}"
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the screen"


@pytest.fixture
def backoffice(page, shot, live_server) -> Callable:
    """One merchant's back office in the browser (``tests.browser.backoffice``): a function
    opening it at a screen width, signed in as its staff (or the user given)."""
    from tests.browser.backoffice import backoffice_open  # it imports ``accessible`` from here

    return backoffice_open(page, shot, live_server)
