"""pytest plugin (entry point ``pytest11: autumn``): test an app against Autumn without a conftest.

Fixtures:

* ``autumn_server`` (session): the reference server, in process on a loopback port, on a fresh SQLite
  file, or on PostgreSQL with ``--autumn-database-url URL`` / ``AUTUMN_TEST_DATABASE_URL``;
  ``--autumn-server-scope=test`` starts a fresh one per test instead.
* ``autumn_target``: where this test's calls go. On the reference server every test gets its own
  organization (catalogue, customers and test clock of its own), so tests never see each other.
* ``autumn`` / ``autumn_async``: a ready ``Autumn`` / ``AsyncAutumn`` (fail-open off) for the target.
* ``autumn_pricing``: the project's ``autumn_config.py`` (``--autumn-config PATH`` or the ini option
  ``autumn_config``) pushed to the target; returns the loaded :class:`~autumn_sdk.config.PricingConfig`.
* ``autumn_clock``: ``autumn_clock.advance(days=31)`` moves the test clock (sandbox-wide, or one
  customer with ``customer_id=``).

``--autumn-sandbox`` (or the ``autumn_sandbox`` marker on a test) points the same tests at a real
Autumn sandbox (``AUTUMN_SECRET_KEY``, ``AUTUMN_URL``) instead: no local server is started and
``autumn_clock`` skips, since Autumn's cloud has no test clock for a whole sandbox.

Nothing heavy is imported until a fixture is used.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest


def _async_fixture(fn: Callable[..., AsyncIterator[Any]]) -> Any:
    """pytest-asyncio's decorator (so the fixture works in its strict mode too) when it is installed."""
    try:
        import pytest_asyncio
    except ImportError:  # pragma: no cover - without pytest-asyncio no async test can use it
        return pytest.fixture(fn)
    return pytest_asyncio.fixture(fn)


if TYPE_CHECKING:
    from autumn_sdk import AsyncAutumn, Autumn
    from autumn_sdk.config import PricingConfig
    from reference_server.testing import RunningServer

DAY_MS = 86_400_000


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("autumn", "Autumn billing (autumn-kit)")
    group.addoption(
        "--autumn-database-url",
        default=None,
        help="Database for the in-process reference server (default: a fresh SQLite file; "
        "env AUTUMN_TEST_DATABASE_URL).",
    )
    group.addoption(
        "--autumn-server-scope",
        choices=("session", "test"),
        default="session",
        help="One reference server for the session (each test its own organization) or one per test.",
    )
    group.addoption("--autumn-config", default=None, help="The pricing config autumn_pricing loads.")
    group.addoption(
        "--autumn-sandbox",
        action="store_true",
        default=False,
        help="Run against a real Autumn sandbox (AUTUMN_SECRET_KEY, AUTUMN_URL), not a local server.",
    )
    parser.addini("autumn_config", "The pricing config autumn_pricing loads (default autumn_config.py).")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "autumn_sandbox: run this test against a real Autumn sandbox instead of a local server"
    )


@dataclass
class AutumnTarget:
    """Where a test's Autumn calls go."""

    url: str
    secret_key: str
    reference: bool
    """True on the in-process reference server (test clocks available)."""


def _sandbox(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--autumn-sandbox")) or (
        request.node.get_closest_marker("autumn_sandbox") is not None
    )


def _database_url(config: pytest.Config) -> str | None:
    url = config.getoption("--autumn-database-url") or os.environ.get("AUTUMN_TEST_DATABASE_URL")
    return str(url) if url else None


@pytest.fixture(scope="session")
def _autumn_session_server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    from reference_server.testing import run_server

    with run_server(_database_url(request.config)) as server:
        yield server


@pytest.fixture
def autumn_server(request: pytest.FixtureRequest) -> Iterator[RunningServer | None]:
    """The in-process reference server (``None`` when the test targets a real sandbox)."""
    if _sandbox(request):
        yield None
    elif request.config.getoption("--autumn-server-scope") == "test":
        from reference_server.testing import run_server

        with run_server(_database_url(request.config)) as server:
            yield server
    else:
        yield request.getfixturevalue("_autumn_session_server")


def _new_organization(server: RunningServer) -> str:
    import httpx

    r = httpx.post(
        server.url + "/v1/platform/organizations",
        headers=server.headers,
        json={
            "user_email": "tests@example.com",
            "name": "pytest",
            "slug": "pytest-" + secrets.token_hex(6),
            "env": "test",
        },
        timeout=30,
    )
    r.raise_for_status()
    return str(r.json()["test_secret_key"])


@pytest.fixture
def autumn_target(request: pytest.FixtureRequest, autumn_server: RunningServer | None) -> AutumnTarget:
    """This test's server and key: its own organization on the reference server, or the sandbox."""
    if autumn_server is None:
        key = os.environ.get("AUTUMN_SECRET_KEY")
        if not key:
            pytest.skip("--autumn-sandbox needs AUTUMN_SECRET_KEY (a sandbox key)")
        if key.startswith("am_sk_live_"):
            pytest.fail("--autumn-sandbox refuses a live key: tests change the catalogue and customers")
        return AutumnTarget(os.environ.get("AUTUMN_URL") or "https://api.useautumn.com", key, False)
    return AutumnTarget(autumn_server.url, _new_organization(autumn_server), True)


@pytest.fixture
def autumn(autumn_target: AutumnTarget) -> Iterator[Autumn]:
    """A sync client for the target (fail-open off, so a broken call fails the test)."""
    from autumn_sdk import Autumn

    with Autumn(autumn_target.secret_key, server_url=autumn_target.url, fail_open=False) as client:
        yield client


@_async_fixture
async def autumn_async(autumn_target: AutumnTarget) -> AsyncIterator[AsyncAutumn]:
    """An async client for the target (fail-open off)."""
    from autumn_sdk import AsyncAutumn

    async with AsyncAutumn(autumn_target.secret_key, server_url=autumn_target.url, fail_open=False) as client:
        yield client


def _config_path(config: pytest.Config) -> Path:
    given = config.getoption("--autumn-config") or config.getini("autumn_config")
    path = Path(str(given)) if given else Path("autumn_config.py")
    return path if path.is_absolute() else Path(config.rootpath) / path


@pytest.fixture
def autumn_pricing(request: pytest.FixtureRequest, autumn: Autumn) -> PricingConfig:
    """The project's pricing config, pushed to the target (what ``autumn push --yes`` does)."""
    from autumn_cli.catalog import apply_changes, plan_changes
    from autumn_sdk.config import load_config

    config = load_config(_config_path(request.config))
    changes = plan_changes(autumn, config)
    if not changes.empty:
        apply_changes(autumn, changes)
    return config


class AutumnClock:
    """The target's test clock."""

    def __init__(self, client: Autumn) -> None:
        self._client = client

    def advance(
        self, *, days: float = 0, hours: float = 0, ms: int = 0, customer_id: str | None = None
    ) -> int:
        """Move time forward for the whole sandbox (or one customer); returns the new now (ms)."""
        from autumn_cli.catalog import CUSTOMERS_ADVANCE_TEST_CLOCK, TEST_CLOCKS_ADVANCE, call_extra

        body: dict[str, Any] = {"advance_by_ms": int(ms + days * DAY_MS + hours * 3_600_000)}
        op = TEST_CLOCKS_ADVANCE
        if customer_id is not None:
            body["customer_id"] = customer_id
            op = CUSTOMERS_ADVANCE_TEST_CLOCK
        result = call_extra(self._client, op, body)
        if result is None:
            raise RuntimeError("this server has no test clock")
        return int(result["now"])


@pytest.fixture
def autumn_clock(autumn_target: AutumnTarget, autumn: Autumn) -> AutumnClock:
    """``autumn_clock.advance(days=31)``; skips against a real sandbox."""
    if not autumn_target.reference:
        pytest.skip("autumn_clock needs the reference server: a real Autumn sandbox has no test clock here")
    return AutumnClock(autumn)
