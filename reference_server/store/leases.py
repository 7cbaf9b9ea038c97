"""Leases that one process holds at a time, and the lock that serializes a server's start-up.

A lease (table ``leases``) names work that must run in exactly one place across processes and
machines sharing the database: the background jobs.  Its holder renews it every few seconds; a holder
that dies (SIGKILL, a lost machine) stops renewing, and another process takes the lease over once it
has expired, seconds later.  Times are the processes' wall clocks in Unix milliseconds, so machines
sharing a database need their clocks in step (NTP) to well under the lease's length.

:func:`startup_lock` serializes migrations and the first writes of processes starting at once on
one database: a PostgreSQL advisory lock, or an exclusive ``flock`` of a file beside a SQLite
database.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    String,
    Table,
    case,
    delete,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from reference_server.store.db import Database
from reference_server.store.tables.core import metadata

leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("acquired_at", BigInteger, nullable=False),
)

_STARTUP_LOCK_NAME = "autumn-reference-server:startup"
STARTUP_LOCK_KEY = int.from_bytes(
    hashlib.sha256(_STARTUP_LOCK_NAME.encode()).digest()[:8], "big", signed=True
)
"""The PostgreSQL advisory lock key of :func:`startup_lock` (a stable 64-bit number)."""


def acquire(conn: Connection, name: str, holder: str, now_ms: int, ttl_ms: int) -> bool:
    """Take or renew the lease ``name`` for ``holder`` until ``now_ms + ttl_ms``: True when held.

    Taken when it is free, already ``holder``'s, or expired; one statement each way, so two
    processes racing for an expired lease cannot both win (the row's update is serialized).
    """
    renewed = conn.execute(
        update(leases)
        .where(leases.c.name == name, (leases.c.holder == holder) | (leases.c.expires_at < now_ms))
        .values(
            holder=holder,
            expires_at=now_ms + ttl_ms,
            # kept while the same holder renews; the new holder's time on a takeover
            acquired_at=case((leases.c.holder == holder, leases.c.acquired_at), else_=literal(now_ms)),
        )
    ).rowcount
    if renewed:
        return True
    if conn.execute(select(leases.c.name).where(leases.c.name == name)).first() is not None:
        return False  # someone else holds it
    nested = conn.begin_nested()
    try:
        conn.execute(
            insert(leases).values(name=name, holder=holder, expires_at=now_ms + ttl_ms, acquired_at=now_ms)
        )
    except IntegrityError:  # another process inserted it first: theirs
        nested.rollback()
        return False
    nested.commit()
    return True


def release(conn: Connection, name: str, holder: str) -> None:
    """Give the lease up at once (a clean stop), so another process need not wait for it to expire."""
    conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))


def holder_of(conn: Connection, name: str, now_ms: int) -> str | None:
    """The process holding ``name`` now, if any."""
    row = conn.execute(
        select(leases.c.holder).where(leases.c.name == name, leases.c.expires_at >= now_ms)
    ).first()
    return None if row is None else str(row.holder)


def _sqlite_path(db: Database) -> Path | None:
    database = make_url(db.url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


@contextlib.contextmanager
def startup_lock(db: Database) -> Iterator[None]:
    """Hold the start-up lock of ``db``'s database: one process at a time migrates and seeds it.

    PostgreSQL: a session advisory lock on a connection of its own (released when that connection
    ends, even if this process dies).  SQLite: ``flock`` on ``<database>.lock`` beside the file
    (released by the kernel when the process dies).  Others wait for it.
    """
    if db.is_sqlite:
        path = _sqlite_path(db)
        if path is None:
            yield
            return
        lock_path = path.with_name(path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock
        return
    with db.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": STARTUP_LOCK_KEY})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": STARTUP_LOCK_KEY})
            conn.commit()


__all__ = ["STARTUP_LOCK_KEY", "acquire", "holder_of", "leases", "release", "startup_lock"]
