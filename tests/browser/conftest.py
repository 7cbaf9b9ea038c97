"""Fixtures for the browser tests: Debian's Chromium driven by Playwright, and the built test page.

``tests/browser/setup.sh`` installs Chromium and builds the page, once per autumn-js version that
web/package.json pins: ``autumn-js`` (1.2.28, into web/dist) and ``autumn-js-latest`` (the newest 1.x,
an npm alias, into web/dist-latest). Every test that loads the page runs against both builds
(:func:`web_dist` is parametrized). Without them the tests skip with the reason, except under
``CI=true``, where a missing prerequisite is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .helpers import AUTUMN_JS_BUILDS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing_prerequisite(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: run tests/browser/setup.sh first)", pytrace=False)
    pytest.skip(f"{reason}; run tests/browser/setup.sh")


@pytest.fixture(scope="session", params=list(AUTUMN_JS_BUILDS), ids=lambda v: f"autumn-js-{v}")
def autumn_js_version(request: pytest.FixtureRequest) -> str:
    """The autumn-js version the page under test runs."""
    return str(request.param)


@pytest.fixture(scope="session")
def web_dist(autumn_js_version: str) -> Path:
    """The test page built with that autumn-js (``npm run build`` in tests/browser/web builds both)."""
    dist = AUTUMN_JS_BUILDS[autumn_js_version]
    if not (dist / "index.html").is_file():
        _missing_prerequisite(f"the test page is not built ({dist / 'index.html'} is missing)")
    return dist


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the browser tests.

    Package scope, not session: Playwright's sync API keeps an event loop running on the main thread
    while it is open, and every later test that calls ``asyncio.run`` would fail under it.
    """
    if not CHROMIUM.exists():
        _missing_prerequisite(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies, no cache) and page per test."""
    context = browser.new_context()
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()


from handlers.live import reference  # noqa: E402  (the seeded reference server, shared with handlers)

__all__ = ["autumn_js_version", "browser", "page", "reference", "web_dist"]
