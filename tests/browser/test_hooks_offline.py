"""The real autumn-js hooks in Chromium against each adapter, on paths that need no Autumn answer.

identify returning ``None`` must surface as the hooks' ``no_customer_id`` error, and a page on
another origin must reach the handler only when the adapter's CORS settings allow it. Each test runs
once per pinned autumn-js (1.2.28 and the newest 1.x: conftest's ``web_dist``).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from handlers.apps import FRAMEWORKS, HandlerOptions, make_app
from playwright.sync_api import Page, expect
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from autumn_handlers import CORSConfig

from .helpers import AUTUMN_JS_BUILDS, WEB
from .servers import serve, serve_asgi

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def unreachable_autumn() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def static_origin(web_dist: Path) -> Iterator[str]:
    """The test page on its own origin (another port), as a Vite dev server would serve it."""
    with serve_asgi(Starlette(routes=[Mount("/", app=StaticFiles(directory=web_dist, html=True))])) as url:
        yield url


def test_the_page_runs_the_autumn_js_it_was_built_with(
    page: Page, static_origin: str, autumn_js_version: str
) -> None:
    """The build under test bundles that version; npm installed both pinned versions side by side."""
    page.goto(f"{static_origin}/?view=plans")
    expect(page.get_by_test_id("autumn-js-version")).to_have_text(autumn_js_version)
    installed = {
        json.loads((WEB / "node_modules" / name / "package.json").read_text(encoding="utf-8"))["version"]
        for name in ("autumn-js", "autumn-js-latest")
    }
    assert installed == set(AUTUMN_JS_BUILDS)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_identify_returning_none_gives_no_customer_id(
    framework: str, page: Page, web_dist: Path, unreachable_autumn: str
) -> None:
    app = make_app(
        framework, HandlerOptions(secret_key="am_sk_test_browser", autumn_url=unreachable_autumn), web_dist
    )
    with serve(framework, app) as url:
        page.goto(f"{url}/?view=customer,plans")
        expect(page.get_by_test_id("customer-error")).to_have_text("no_customer_id:401:customerId not found")
        expect(page.get_by_test_id("customer-id")).to_have_text("")
        # listPlans needs no customer: it reached the handler, which could not reach Autumn.
        expect(page.get_by_test_id("plans-error")).to_contain_text("autumn_api_error:555:")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_cross_origin_page_works_with_cors_and_fails_without(
    framework: str, page: Page, static_origin: str, unreachable_autumn: str
) -> None:
    cors = CORSConfig(allow_origins=[static_origin], allow_headers=["content-type", "x-test-customer"])
    with_cors = make_app(framework, HandlerOptions("am_sk_test_browser", unreachable_autumn, cors=cors))
    with serve(framework, with_cors) as backend:
        page.goto(f"{static_origin}/?view=customer&customer=cus_cors&backend={backend}")
        # Preflight passed and the credentialed POST was readable: Autumn is down, so the
        # customer fails open to the empty customer (no id, no error).
        expect(page.get_by_test_id("customer-state")).to_have_text("ready")
        expect(page.get_by_test_id("customer-error")).to_have_text("")
        expect(page.get_by_test_id("check-result")).to_contain_text('"allowed":false')

    without_cors = make_app(framework, HandlerOptions("am_sk_test_browser", unreachable_autumn))
    with serve(framework, without_cors) as backend:
        page.goto(f"{static_origin}/?view=customer&customer=cus_cors&backend={backend}")
        expect(page.get_by_test_id("customer-error")).to_have_text("network_error:0:Failed to fetch")
