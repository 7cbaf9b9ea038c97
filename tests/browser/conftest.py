"""Fixtures for the browser tests: Debian's Chromium driven by Playwright, and the built test page.

``tests/browser/setup.sh`` installs Chromium and builds the page. Without them the tests skip with
the reason, except under ``CI=true``, where a missing prerequisite is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
WEB_DIST = Path(__file__).parent / "web" / "dist"
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


@pytest.fixture(scope="session")
def web_dist() -> Path:
    """The built test page (``npm run build`` in tests/browser/web)."""
    if not (WEB_DIST / "index.html").is_file():
        _missing_prerequisite(f"the test page is not built ({WEB_DIST / 'index.html'} is missing)")
    return WEB_DIST


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

__all__ = ["browser", "page", "reference", "web_dist"]
