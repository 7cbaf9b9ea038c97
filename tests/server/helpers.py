"""Shared helpers of the reference server suite: the operation tables, the raw-httpx :class:`Api` client
for one organization, a new organization's key, and the PostgreSQL guard.  Fixtures live in
``conftest.py``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from autumn_sdk._generated.operations import OPERATIONS
from reference_server.clock import ManualClock
from reference_server.testing import RunningServer, postgres_available, run_server

OPS_BY_PATH = {op.path: op for op in OPERATIONS if op.http_method == "POST"}
OPS_BY_NAME = {op.qualified_name: op for op in OPERATIONS}
DB_KINDS = ["sqlite", "postgres"]


def require_postgres() -> None:
    if not postgres_available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL must be available on 127.0.0.1:5432 in CI")
        pytest.skip("PostgreSQL is not available")


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.code = body.get("code")


class Api:
    """A tiny raw-httpx client for one organization env; validates bodies with the generated models."""

    def __init__(self, server: RunningServer, key: str, clock: ManualClock) -> None:
        self.server = server
        self.key = key
        self.clock = clock
        self.http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)

    def raw(self, path: str, body: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
        return self.http.post(path, json=body if body is not None else {}, headers=headers)

    def __call__(self, _op: str, headers: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
        op = OPS_BY_NAME.get(_op)
        path = op.path if op is not None else f"/v1/{_op}"
        r = self.http.post(path, json=body, headers=headers or {})
        data = r.json()
        if r.status_code >= 400:
            assert set(data) >= {"message", "code", "env"}, data
            raise ApiError(r.status_code, data)
        if op is not None and op.response_model is not None:
            op.response_model.model_validate(data)
        return dict(data)

    def error(self, _op: str, **body: Any) -> ApiError:
        try:
            self(_op, **body)
        except ApiError as exc:
            return exc
        raise AssertionError(f"{_op} succeeded but an error was expected")

    # -- shortcuts used across scenarios

    def feature(self, fid: str, type_: str = "metered", **kw: Any) -> dict[str, Any]:
        if type_ == "metered":
            kw.setdefault("consumable", True)
        return self("features.create", feature_id=fid, name=kw.pop("name", fid), type=type_, **kw)

    def plan(self, pid: str, items: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
        return self("plans.create", plan_id=pid, name=kw.pop("name", pid.title()), items=items, **kw)

    def customer(self, cid: str | None = None, **kw: Any) -> dict[str, Any]:
        return self("customers.get_or_create", customer_id=cid or "cus_" + secrets.token_hex(4), **kw)

    def balance(self, cid: str, fid: str, entity_id: str | None = None) -> dict[str, Any] | None:
        if entity_id:
            return self("entities.get", customer_id=cid, entity_id=entity_id)["balances"].get(fid)  # type: ignore[no-any-return]
        return self("customers.get", customer_id=cid)["balances"].get(fid)  # type: ignore[no-any-return]

    def track(self, cid: str, fid: str, value: float | None = None, **kw: Any) -> dict[str, Any]:
        if value is not None:
            kw["value"] = value
        return self("track", customer_id=cid, feature_id=fid, **kw)

    def check(self, cid: str, fid: str, **kw: Any) -> dict[str, Any]:
        return self("check", customer_id=cid, feature_id=fid, **kw)

    def advance(self, ms: int = 0, *, days: float = 0, hours: float = 0) -> None:
        """Move this org's sandbox test clock forward."""
        self("test_clocks.advance", advance_by_ms=int(ms + days * 86_400_000 + hours * 3_600_000))


def new_org_key(srv: RunningServer, env: str = "test") -> str:
    r = httpx.post(
        srv.url + "/v1/platform/organizations",
        headers=srv.headers,
        json={
            "user_email": "owner@example.com",
            "name": "Test org",
            "slug": "t-" + secrets.token_hex(6),
            "env": env,
        },
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["test_secret_key" if env == "test" else "live_secret_key"])


class SqliteStatements:
    """The statements SQLite runs on the connections opened while it is installed (see
    :func:`traced_api`), each with the connection that ran it, while on."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []
        self.on = False

    def connect(self, dbapi_conn: Any, _record: Any) -> None:
        if isinstance(dbapi_conn, sqlite3.Connection):
            key = id(dbapi_conn)
            dbapi_conn.set_trace_callback(lambda sql: self._trace(key, sql))

    def _trace(self, key: int, sql: str) -> None:
        if self.on:
            self.seen.append((key, sql))

    def during(self, api: Api, op: str, **body: Any) -> list[tuple[int, str]]:
        """(connection, statement) of each statement run while ``op`` is answered."""
        self.seen, self.on = [], True
        try:
            api(op, **body)
        finally:
            self.on = False
        return self.seen

    def sql_during(self, api: Api, op: str, **body: Any) -> list[str]:
        """The statements run while ``op`` is answered."""
        return [sql for _, sql in self.during(api, op, **body)]


@contextlib.contextmanager
def traced_api() -> Iterator[tuple[Api, SqliteStatements]]:
    """A new organization's :class:`Api` on a server over a fresh SQLite database (a manual clock at
    2026-01-01, no background jobs), and the statements SQLite runs for it."""
    statements = SqliteStatements()
    event.listen(Engine, "connect", statements.connect)
    try:
        clock = ManualClock(1_767_225_600_000)
        with run_server(clock=clock, background_jobs=False) as srv:
            client = Api(srv, new_org_key(srv), clock)
            yield client, statements
            client.http.close()
    finally:
        event.remove(Engine, "connect", statements.connect)
