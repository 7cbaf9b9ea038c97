"""Database connections under churn and load: threads that end give their SQLite connections back,
and the dashboard's request log writes from one thread of its own, never from the request."""

from __future__ import annotations

import concurrent.futures
import hashlib
import threading
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from autumn_sdk._generated.models import EventsAggregateParams
from reference_server.clock import SystemClock
from reference_server.request_log import FLUSH_ROWS, RequestLog
from reference_server.service import events
from reference_server.service.context import Ctx
from reference_server.store.db import Database
from reference_server.store.tables.dashboard import api_request_log
from reference_server.store.tenancy import ensure_default_org, register_key
from reference_server.testing import fresh_database_url, fresh_sqlite_url, run_server

from .helpers import require_postgres


def test_connections_kept_by_ended_threads_go_back_to_the_pool() -> None:
    """Each thread keeps a reader and a writer; 40 threads one after another would need 80 of the
    pool's 24 connections if an ended thread kept its own (the 13th would wait 30 s and fail)."""
    with fresh_sqlite_url() as url:
        db = Database(url)
        db.migrate()
        failures: list[BaseException] = []

        def read_and_write() -> None:
            try:
                with db.write() as conn:
                    conn.execute(sa.text("SELECT 1"))
                with db.read() as conn:
                    conn.execute(sa.text("SELECT 1"))
            except BaseException as exc:  # reported below
                failures.append(exc)

        for _ in range(40):
            thread = threading.Thread(target=read_and_write)
            thread.start()
            thread.join(timeout=60)
        assert failures == []
        assert db.pinned_connections() == 0
        pool = db.engine.pool
        assert isinstance(pool, sa.pool.QueuePool)
        assert pool.checkedout() == 0
        read_and_write()  # this thread keeps its two until the database is disposed
        assert db.pinned_connections() == 2 and pool.checkedout() == 2
        db.dispose()
        assert db.pinned_connections() == 0


def test_request_log_flushes_one_at_a_time_on_its_own_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    with fresh_sqlite_url() as url:
        db = Database(url)
        db.migrate()
        log = RequestLog(db, SystemClock())
        assert not log.claim_flush()  # nothing buffered
        for i in range(FLUSH_ROWS):
            log.record("unknown-key-hash", "POST", f"/v1/x{i}", 200, None)
        assert log.claim_flush()
        assert not log.claim_flush()  # taken: later requests do not start a second flush
        names: list[str] = []
        real_write = log._write

        def write(rows: list[tuple[str, str, str, int, str | None, int]]) -> None:
            names.append(threading.current_thread().name)
            real_write(rows)

        monkeypatch.setattr(log, "_write", write)
        log.flush_in_background().result(timeout=30)
        assert names and names[0].startswith("request-log")
        assert not log.claim_flush()  # flushed: nothing buffered until the next request
        log.close()
        db.dispose()


def test_a_burst_of_keyed_requests_is_served_and_logged() -> None:
    """16 clients at once, 400 requests: every answer is a 200 and every request reaches the log."""
    with fresh_sqlite_url() as url:
        _burst(url)
        db = Database(url)
        try:
            with db.read() as conn:  # the server's shutdown wrote what was still buffered
                logged = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(api_request_log)
                    .where(api_request_log.c.path == "/v1/customers.get")
                ).scalar_one()
            assert logged == 400
        finally:
            db.dispose()


def _burst(url: str) -> None:
    with run_server(url) as server:
        with server.client() as seed:
            seed.post("/v1/customers.get_or_create", json={"customer_id": "burst"}).raise_for_status()

        def calls(n: int) -> list[int]:
            with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as client:
                return [
                    client.post("/v1/customers.get", json={"customer_id": "burst"}).status_code
                    for _ in range(n)
                ]

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            statuses = [s for batch in pool.map(calls, [25] * 16) for s in batch]
        assert statuses == [200] * 400


@pytest.mark.parametrize("db_kind", ["sqlite", "postgres"])
def test_a_long_read_never_stalls_the_calls_behind_it(db_kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ``events.aggregate`` (a ``long_read`` operation) held inside its service: checks are still
    answered meanwhile, on SQLite too, where every other request runs on the event loop."""
    if db_kind == "postgres":
        require_postgres()
    inside, release = threading.Event(), threading.Event()
    real = events.aggregate

    def held(ctx: Ctx, params: EventsAggregateParams) -> dict[str, Any]:
        inside.set()
        assert release.wait(60)
        return real(ctx, params)

    monkeypatch.setattr(events, "aggregate", held)
    with fresh_database_url(db_kind) as url, run_server(url) as server, server.client() as client:
        client.post(
            "/v1/features.create",
            json={"feature_id": "m", "name": "m", "type": "metered", "consumable": True},
        )
        client.post("/v1/customers.get_or_create", json={"customer_id": "c"}).raise_for_status()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            slow = pool.submit(
                client.post,
                "/v1/events.aggregate",
                json={"customer_id": "c", "feature_id": "m", "range": "7d"},
            )
            try:
                assert inside.wait(30)
                for _ in range(5):
                    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as other:
                        answered = other.post(
                            "/v1/balances.check", json={"customer_id": "c", "feature_id": "m"}
                        )
                    assert answered.status_code == 200, answered.text
            finally:
                release.set()
            assert slow.result(timeout=60).status_code == 200, slow.result().text


@pytest.mark.parametrize("db_kind", ["sqlite", "postgres"])
def test_request_log_batches_keep_every_row_and_column(db_kind: str) -> None:
    """The log writer's multi-row INSERT (SQLite: 100 rows a statement; PostgreSQL: unnest) stores
    every buffered row with its values, a missing request id included."""
    if db_kind == "postgres":
        require_postgres()
    with fresh_database_url(db_kind) as url:
        db = Database(url)
        db.migrate()
        try:
            key = "am_sk_test_request_log_batch"
            with db.write() as conn:
                org = ensure_default_org(conn)
                register_key(conn, org.pk, key, "batch")
            log = RequestLog(db, SystemClock())
            key_hash = hashlib.sha256(key.encode()).hexdigest()
            for i in range(250):
                log.record(key_hash, "POST", f"/v1/x{i}", 200 + i % 3, None if i % 2 else f"req_{i}")
            log.flush()
            with db.read() as conn:
                rows = conn.execute(
                    sa.select(
                        api_request_log.c.org_pk,
                        api_request_log.c.method,
                        api_request_log.c.path,
                        api_request_log.c.status,
                        api_request_log.c.request_id,
                    ).order_by(api_request_log.c.pk)
                ).all()
            assert [tuple(r) for r in rows] == [
                (org.pk, "POST", f"/v1/x{i}", 200 + i % 3, None if i % 2 else f"req_{i}") for i in range(250)
            ]
        finally:
            db.dispose()
