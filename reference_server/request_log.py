"""A small, bounded log of the API requests each organization's keys made, for the dashboard.

The server kept no request log, so this one is deliberately cheap: the middleware only appends
(key hash, method, path, status, request id, time) to an in-memory buffer; the buffer is written in
batches by one writer thread of its own (at least a second apart, or at 100 rows), never awaited by a
request, and before the dashboard reads it; each organization env keeps its last
:data:`REQUEST_LOG_KEEP` rows.  Rows of unknown keys are dropped.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import threading
import time
from collections import deque
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reference_server.clock import Clock
from reference_server.observability import request_id as current_request_id
from reference_server.store.db import Database
from reference_server.store.request_log import insert_requests, keep_latest_requests, key_owners
from reference_server.store.tables.dashboard import REQUEST_LOG_KEEP

BUFFER_LIMIT = 10_000
FLUSH_ROWS = 100
FLUSH_SECONDS = 1.0
_Row = tuple[str, str, str, int, str | None, int]


class RequestLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._buffer: deque[_Row] = deque(maxlen=BUFFER_LIMIT)
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._flushing = False
        # One thread writes the batches: a flush per request thread would pile up behind the lock,
        # each holding a database connection, and starve the requests of the pool.
        self._writer = self._new_writer()

    def record(self, key_hash: str, method: str, path: str, status: int, request_id: str | None) -> None:
        self._buffer.append((key_hash, method, path[:255], status, request_id, self.clock.now_ms()))

    def due(self) -> bool:
        return (
            bool(self._buffer)
            and not self._flushing
            and (len(self._buffer) >= FLUSH_ROWS or time.monotonic() - self._last_flush >= FLUSH_SECONDS)
        )

    def claim_flush(self) -> bool:
        """Whether a flush is due; if so it is taken, and no other claim succeeds until it has run.

        Called on the event loop (one caller at a time), so the check and the claim are one step.
        """
        if not self.due():
            return False
        self._flushing = True
        return True

    def flush_in_background(self) -> concurrent.futures.Future[None]:
        """Run :meth:`flush` on the log's writer thread; failures are logged, never raised."""
        return self._writer.submit(self._flush_logged)

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except Exception:
            logging.getLogger("reference_server").warning("writing the request log failed", exc_info=True)

    def close(self) -> None:
        """Write what is buffered and stop the writer thread (the app's shutdown; an app started
        again gets a fresh writer thread on its first flush)."""
        writer, self._writer = self._writer, self._new_writer()
        writer.shutdown(wait=True)
        self._flush_logged()

    @staticmethod
    def _new_writer() -> concurrent.futures.ThreadPoolExecutor:
        return concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="request-log")

    def flush(self) -> None:
        """Write the buffered rows (one transaction), then trim each touched org env to the newest rows."""
        with self._lock:
            self._flushing = True
            try:
                rows: list[_Row] = []
                while self._buffer:
                    rows.append(self._buffer.popleft())
                self._last_flush = time.monotonic()
                if rows:
                    self._write(rows)
            finally:
                self._flushing = False

    def _write(self, rows: list[_Row]) -> None:
        hashes = {row[0] for row in rows}
        with self.db.write() as conn:
            owners = key_owners(conn, hashes)
            values: list[dict[str, Any]] = []
            for key_hash, method, path, status, request_id, at in rows:
                owner = owners.get(key_hash)
                if owner is not None:
                    values.append(
                        {
                            "org_pk": owner[0],
                            "env": owner[1],
                            "method": method,
                            "path": path,
                            "status": status,
                            "request_id": request_id,
                            "created_at": at,
                        }
                    )
            if not values:
                return
            insert_requests(conn, values)
            for org_pk, env in {(v["org_pk"], v["env"]) for v in values}:
                keep_latest_requests(conn, org_pk, env, REQUEST_LOG_KEEP)


class RequestLogMiddleware:
    """Records every ``/v1/`` request that carried a bearer key, after its response is sent."""

    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            key = _bearer(scope)
            if key:
                request_id = current_request_id.get()
                self.log.record(
                    hashlib.sha256(key.encode()).hexdigest(),
                    scope.get("method", ""),
                    path,
                    status,
                    None if request_id == "-" else request_id[:64],
                )
                if self.log.claim_flush():  # written behind the response, never awaited here
                    self.log.flush_in_background()


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text = value.decode("latin-1")
            if text[:7].lower() == "bearer ":
                return text[7:].strip() or None
    return None
