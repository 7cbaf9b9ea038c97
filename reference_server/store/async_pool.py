"""A small pool of asyncio psycopg connections (autocommit) for PostgreSQL's check and track.

Everything else in the server is synchronous and runs in a worker thread on PostgreSQL; for the
hot paths that thread hop (a queue hand-off and two wake-ups per request) cost more CPU than the
request itself.  check and track need exactly one statement each (see
:mod:`reference_server.store.subject_cache`), so the event loop sends that statement on an
asyncio connection and stays free while PostgreSQL works.  The pool belongs to one event loop;
it is made on first use and closed at shutdown.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from reference_server.store import raw


def libpq_url(sqlalchemy_url: str) -> str:
    """``postgresql+psycopg://...`` -> the ``postgresql://...`` libpq understands."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class AsyncPool:
    """Up to ``size`` autocommit connections; a connection that fails is dropped, not reused."""

    def __init__(self, url: str, size: int = 16) -> None:
        self.url = libpq_url(url)
        self.size = size
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._open = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._freed: asyncio.Condition | None = None

    async def _acquire(self) -> psycopg.AsyncConnection[Any]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or the app moved to another loop: start afresh
            self._loop, self._idle, self._open = loop, [], 0
            self._freed = asyncio.Condition()
        assert self._freed is not None
        async with self._freed:
            while not self._idle and self._open >= self.size:
                await self._freed.wait()
            if self._idle:
                return self._idle.pop()
            self._open += 1
        try:
            return await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        except BaseException:
            await self._forget()
            raise

    async def _forget(self) -> None:
        assert self._freed is not None
        async with self._freed:
            self._open -= 1
            self._freed.notify()

    async def _release(self, conn: psycopg.AsyncConnection[Any]) -> None:
        assert self._freed is not None
        async with self._freed:
            self._idle.append(conn)
            self._freed.notify()

    async def fetch(self, stmt: raw.Statement, params: dict[str, Any]) -> list[SimpleNamespace]:
        """Run one statement (its own transaction) and return its rows by column name."""
        conn = await self._acquire()
        try:
            cur = conn.cursor()
            await cur.execute(stmt.postgres, params)
            names = stmt.names
            if names is None:
                names = stmt.names = [d.name for d in cur.description or []]
            rows = await cur.fetchall()
            await cur.close()
        except BaseException:
            await conn.close()
            await self._forget()
            raise
        await self._release(conn)
        return [SimpleNamespace(**dict(zip(names, row, strict=True))) for row in rows]

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()
        self._open -= len(idle)
