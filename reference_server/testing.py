"""Helpers to run the reference server in tests (used by the SDK, handler and server suites).

    with run_server() as server:                 # fresh SQLite file, key am_sk_test_reference
        httpx.post(server.url + "/v1/balances.check", headers=server.headers, json={...})
        server.advance_clock(days=31)            # moves the sandbox test clock, no sleeping

    with fresh_postgres_url() as url, run_server(url) as server: ...

Names here are a contract with other test suites: keep them stable.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

DEFAULT_TEST_KEY = "am_sk_test_reference_server_key"
DEFAULT_TEST_ENCRYPTION_KEY = "dWaB_LHVLoBb5-omsiAzxSJm5li4xvHPpTdeCS1lPEg="
"""The Fernet key :func:`run_server` encrypts stored Stripe secrets with (tests only: it is public)."""
POSTGRES_HOST = os.environ.get("AUTUMN_TEST_PG_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("AUTUMN_TEST_PG_PORT", "5432"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    """A server started by :func:`run_server`."""

    url: str
    secret_key: str
    app: Starlette
    database_url: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret_key}"}

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client with the base URL and the key set."""
        return httpx.Client(base_url=self.url, headers=self.headers, **kwargs)

    def advance_clock(
        self, ms: int = 0, *, days: float = 0, hours: float = 0, customer_id: str | None = None
    ) -> int:
        """Move the sandbox test clock forward (the whole org, or one customer); returns the new now."""
        body: dict[str, Any] = {"advance_by_ms": int(ms + days * 86_400_000 + hours * 3_600_000)}
        path = "/v1/test_clocks.advance"
        if customer_id is not None:
            body["customer_id"] = customer_id
            path = "/v1/customers.advance_test_clock"
        r = httpx.post(self.url + path, json=body, headers=self.headers, timeout=30)
        r.raise_for_status()
        return int(r.json()["now"])


class _ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # running in a thread: leave signals to the main thread
        pass


@contextlib.contextmanager
def serve_app(app: Starlette, port: int | None = None) -> Iterator[str]:
    """Serve any ASGI app under uvicorn on 127.0.0.1 in a background thread; yields its URL."""
    from reference_server.settings import server_stack

    port = port or free_port()
    stack = server_stack()  # autumn-server's stack; uvicorn sets no global loop policy (see there)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", http=stack.http, loop=stack.loop
    )
    server = _ThreadedServer(config)
    thread = threading.Thread(target=server.run, name=f"autumn-server-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the reference server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def run_server(
    database_url: str | None = None,
    secret_key: str = DEFAULT_TEST_KEY,
    demo: bool = False,
    **kw: Any,
) -> Iterator[RunningServer]:
    """Start the reference server on a free port; a fresh SQLite file when no database is given.

    Extra keyword arguments go to :func:`reference_server.app.create_app` (``clock=``,
    ``rate_limits=`` (off by default here), ``public_url=``...).  Responses are checked against the
    generated models here (``validate_responses=True``), unlike in production.  Stored Stripe secrets
    are encrypted with :data:`DEFAULT_TEST_ENCRYPTION_KEY` on every database, so a second server on the
    same database reads them; ``encryption_keys=None`` resolves keys as production does
    (``AUTUMN_ENCRYPTION_KEYS``, then a key file beside a SQLite database).
    """
    from reference_server.app import create_app

    kw.setdefault("encryption_keys", DEFAULT_TEST_ENCRYPTION_KEY)
    kw.setdefault("rate_limits", False)
    kw.setdefault("validate_responses", True)
    with contextlib.ExitStack() as stack:
        if database_url is None:
            database_url = stack.enter_context(fresh_sqlite_url())
        port = free_port()
        kw.setdefault("bind_url", f"http://127.0.0.1:{port}")  # the base of links made with no request
        app = create_app(database_url, secret_key=secret_key, demo=demo, **kw)
        url = stack.enter_context(serve_app(app, port))
        yield RunningServer(url=url, secret_key=secret_key, app=app, database_url=database_url)


@contextlib.contextmanager
def fresh_sqlite_url() -> Iterator[str]:
    """A new SQLite database file in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="autumn-test-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'autumn.db'}"


def _pg_admin_connect() -> Any:
    import psycopg

    last: Exception | None = None
    for user in ("root", "postgres"):
        try:
            return psycopg.connect(
                host=POSTGRES_HOST,
                port=POSTGRES_PORT,
                user=user,
                dbname="postgres",
                autocommit=True,
                connect_timeout=5,
            ), user
        except psycopg.OperationalError as exc:
            last = exc
    raise RuntimeError(f"PostgreSQL is not reachable on {POSTGRES_HOST}:{POSTGRES_PORT}: {last}")


def postgres_available() -> bool:
    try:
        conn, _user = _pg_admin_connect()
    except RuntimeError:
        return False
    conn.close()
    return True


@contextlib.contextmanager
def fresh_postgres_url() -> Iterator[str]:
    """``CREATE DATABASE autumn_test_<random>`` on 127.0.0.1:5432 (user root or postgres), dropped after."""
    name = f"autumn_test_{secrets.token_hex(6)}"
    conn, user = _pg_admin_connect()
    try:
        conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    try:
        yield f"postgresql://{user}@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    finally:
        conn, _ = _pg_admin_connect()
        try:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()


@contextlib.contextmanager
def fresh_database_url(kind: str) -> Iterator[str]:
    """``kind`` is ``"sqlite"`` or ``"postgres"``: the matching fresh database."""
    if kind == "sqlite":
        with fresh_sqlite_url() as url:
            yield url
    elif kind == "postgres":
        with fresh_postgres_url() as url:
            yield url
    else:
        raise ValueError(f"unknown database kind {kind!r}")


__all__ = [
    "DEFAULT_TEST_ENCRYPTION_KEY",
    "DEFAULT_TEST_KEY",
    "RunningServer",
    "free_port",
    "fresh_database_url",
    "fresh_postgres_url",
    "fresh_sqlite_url",
    "postgres_available",
    "run_server",
    "serve_app",
]
