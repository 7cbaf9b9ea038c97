"""Engine creation, migrations and transactions for SQLite and PostgreSQL.

Writes that change balances run in one transaction that serializes per customer:
SQLite opens it with ``BEGIN IMMEDIATE`` (one writer, WAL so readers never block); PostgreSQL
locks the customer row with ``SELECT ... FOR UPDATE`` (see :mod:`reference_server.store.customers`).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.pool import NullPool

DEFAULT_DATABASE_URL = "sqlite:///./autumn.db"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def normalize_url(url: str) -> str:
    """Map ``postgresql://`` / ``postgres://`` to the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


AFTER_TRANSACTION = "autumn_after_transaction"
"""``Connection.info`` key of the callbacks :meth:`Database.write` runs once its transaction has ended."""


def after_transaction(conn: Connection, callback: Callable[[], object]) -> bool:
    """Run ``callback`` once the write transaction of ``conn`` has ended, committed or not.

    For work outside the database that has to be reconciled with what the transaction did (a
    payment taken from a processor, say): the callback runs after the commit or rollback, with no
    transaction open, and finds out from the database which one it was.  False (nothing registered)
    when ``conn`` is not in a transaction opened by :meth:`Database.write`.
    """
    callbacks = conn.info.get(AFTER_TRANSACTION)
    if callbacks is None:
        return False
    callbacks.append(callback)
    return True


class _Pinned:
    """One thread's kept connections, by role (SQLite's ``reader``, ``writer``; PostgreSQL's
    ``autocommit`` of the event loop, :meth:`Database.kept_autocommit`).

    A thread keeps them between requests, which saves a pool checkout and check-in per request.
    When the thread ends, its ``threading.local`` data goes and with it this object, whose finalizer
    closes the connections, handing them back to the pool: worker threads come and go (anyio's exit
    after 10 idle seconds), and connections pinned to dead threads would drain the pool for good.
    """

    __slots__ = ("__weakref__", "by_role")

    def __init__(self) -> None:
        self.by_role: dict[str, Connection] = {}
        # The finalizer holds the dict, not this object, so it never keeps the object alive.
        weakref.finalize(self, _close_all, self.by_role)

    def get(self, role: str) -> Connection | None:
        conn = self.by_role.get(role)
        return None if conn is None or conn.closed or conn.invalidated else conn


def _close_all(by_role: dict[str, Connection]) -> None:
    for conn in list(by_role.values()):
        with contextlib.suppress(Exception):
            conn.close()
    by_role.clear()


_SAVEPOINT_DEPTH = "autumn_savepoint_depth"


@contextmanager
def _savepoint(conn: Connection) -> Iterator[None]:
    """A SAVEPOINT of ``conn``'s open transaction, sent straight to the driver.

    What ``conn.begin_nested()`` does, without SQLAlchemy compiling a savepoint clause each time
    (a fifth of a keyed ``track``).  On an exception the savepoint's statements are rolled back and
    the exception goes on; if that rollback itself fails, its error goes on instead, so the caller
    never commits work the savepoint should have undone.
    """
    depth = int(conn.info.get(_SAVEPOINT_DEPTH, 0)) + 1
    conn.info[_SAVEPOINT_DEPTH] = depth
    name = f"autumn_sp_{depth}"
    driver: Any = conn.connection.dbapi_connection
    try:
        driver.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            driver.execute(f"ROLLBACK TO SAVEPOINT {name}")
            driver.execute(f"RELEASE SAVEPOINT {name}")
            raise
        driver.execute(f"RELEASE SAVEPOINT {name}")
    finally:
        conn.info[_SAVEPOINT_DEPTH] = depth - 1


def _run_after(callbacks: list[Callable[[], object]]) -> None:
    for callback in callbacks:
        with contextlib.suppress(Exception):  # each callback records its own failures
            callback()


class Database:
    """One engine plus the transaction helpers the store uses."""

    def __init__(self, url: str | None = None, *, pool_size: int = 20) -> None:
        self.url = normalize_url(url or DEFAULT_DATABASE_URL)
        self.is_sqlite = self.url.startswith("sqlite")
        self._local = threading.local()
        self._pinned: weakref.WeakSet[_Pinned] = weakref.WeakSet()
        if self.is_sqlite:
            self.engine: Engine = create_engine(
                self.url,
                connect_args={"check_same_thread": False, "timeout": 30},
                pool_size=8,
                max_overflow=16,
            )
            self._setup_sqlite(self.engine)
        else:
            self.engine = create_engine(self.url, pool_size=pool_size, max_overflow=40, pool_pre_ping=False)
        # Hot paths: connections that stay in autocommit (each statement its own transaction, no
        # BEGIN / COMMIT round trips), in their own pool so checkouts never switch modes.
        self._autocommit_engine = (
            self.engine
            if self.is_sqlite
            else create_engine(
                self.url,
                pool_size=8,
                max_overflow=32,
                isolation_level="AUTOCOMMIT",
                pool_reset_on_return=None,
            )
        )

    @staticmethod
    def _setup_sqlite(engine: Engine) -> None:
        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
            # Straight to the driver: this runs once per request on the hot path.
            conn.connection.dbapi_connection.execute(f"BEGIN {mode}")  # type: ignore[union-attr]

    def _pinned_here(self) -> _Pinned:
        """This thread's kept SQLite connections (see :class:`_Pinned`)."""
        pinned: _Pinned | None = getattr(self._local, "pinned", None)
        if pinned is None:
            pinned = self._local.pinned = _Pinned()
            self._pinned.add(pinned)
        return pinned

    def pinned_connections(self) -> int:
        """How many kept SQLite connections live threads hold."""
        return sum(len(p.by_role) for p in list(self._pinned))

    def current_unit(self) -> Connection | None:
        """The connection of this thread's open :meth:`unit_of_work`, if any."""
        unit: Connection | None = getattr(self._local, "unit", None)
        return unit

    @contextmanager
    def unit_of_work(self) -> Iterator[Connection]:
        """One write transaction that every :meth:`write`, :meth:`read`, :meth:`hot_read` and
        :meth:`autocommit` on this thread joins until it ends (a request with an ``Idempotency-Key``
        header: the key's claim, the work and the stored response commit together or not at all).

        Inside it, a :meth:`write` is a SAVEPOINT of this transaction (its failure rolls back only its
        own statements, as its own transaction did before) and reads see its uncommitted writes;
        :func:`after_transaction` callbacks run once the OUTER transaction has ended.  Writes that
        must commit at once whatever the unit does take ``write(independent=True)``; they are:

        * the per-customer billing lock rows (:mod:`reference_server.store.billing_lock`): other
          processes must see them at once to answer 429.  On SQLite (one writer) they cannot commit
          while a unit is open, so the dispatcher takes the billing lock before it opens the unit
          and the service's own ``billing_lock`` is then re-entrant.

        Nothing else a request runs needs to commit early: work reconciled with Stripe after the
        fact (compensation's refunds and voids, the subscription mirror's syncs) already waits for the
        end of the transaction through :func:`after_transaction`; a record kept after a refusal (a
        failed seat charge's voided invoice) is a savepoint the dispatcher commits with the 4xx; the
        checkout pages and webhook routes never run inside a unit.
        """
        if self.current_unit() is not None:
            raise RuntimeError("a unit of work is already open on this thread")
        with self.write() as conn:
            self._local.unit = conn
            try:
                yield conn
            finally:
                self._local.unit = None

    @contextmanager
    def write(self, *, independent: bool = False) -> Iterator[Connection]:
        """A read-write transaction (BEGIN IMMEDIATE on SQLite).

        On SQLite each thread keeps one write connection open too (like :meth:`read`): a pool
        checkout and check-in cost more than a track's statements.  A nested write on the same
        thread (never done on purpose) still gets its own pooled connection.

        Inside this thread's :meth:`unit_of_work` the write is a SAVEPOINT of the unit, unless
        ``independent``: then it is a transaction of its own on another connection, committed at
        once (PostgreSQL only: SQLite's single writer is the unit itself, see :meth:`unit_of_work`).
        """
        unit = self.current_unit()
        if unit is not None:
            if not independent:
                with _savepoint(unit):
                    yield unit
                return
            if self.is_sqlite:
                raise RuntimeError(
                    "SQLite has one writer: a write that commits on its own cannot run inside a unit of work"
                )
        if self.is_sqlite:
            pinned = self._pinned_here()
            conn = pinned.get("writer")
            if conn is None:
                conn = pinned.by_role["writer"] = self.engine.connect()
            if not conn.in_transaction():
                after: list[Callable[[], object]] = []
                conn.info[AFTER_TRANSACTION] = after
                try:
                    with conn.begin():
                        yield conn
                finally:
                    with contextlib.suppress(Exception):
                        conn.info.pop(AFTER_TRANSACTION, None)
                        # A COMMIT SQLite refused (a deferred constraint) leaves its transaction open,
                        # which SQLAlchemy no longer tracks: end it, or this thread's writer stays stuck.
                        dbapi = conn.connection.dbapi_connection
                        if dbapi is not None and dbapi.in_transaction:
                            dbapi.rollback()
                    _run_after(after)
                return
        after_pooled: list[Callable[[], object]] = []
        try:
            with self.engine.connect() as pooled:
                pooled.info[AFTER_TRANSACTION] = after_pooled
                try:
                    with pooled.begin():
                        yield pooled
                finally:
                    with contextlib.suppress(Exception):
                        pooled.info.pop(AFTER_TRANSACTION, None)
        finally:
            _run_after(after_pooled)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (deferred BEGIN on SQLite, so it never takes the write lock).

        On SQLite each thread keeps one read connection open (requests run on the event-loop
        thread), which saves a pool checkout and check-in per request; PostgreSQL connections
        stay pooled so worker threads never pin more connections than the pool allows.
        """
        unit = self.current_unit()
        if unit is not None:  # the open unit of work: its own uncommitted writes are visible
            yield unit
            return
        if self.is_sqlite:
            pinned = self._pinned_here()
            conn = pinned.get("reader")
            if conn is None:
                conn = self.engine.connect().execution_options(sqlite_begin="DEFERRED")
                pinned.by_role["reader"] = conn
            with conn.begin():
                yield conn
            return
        with self.engine.connect() as pg_conn, pg_conn.begin():
            yield pg_conn

    @contextmanager
    def hot_read(self) -> Iterator[Connection]:
        """The check path's read: :meth:`read` on SQLite, an autocommit connection on PostgreSQL.

        PostgreSQL reads at READ COMMITTED take a snapshot per statement anyway, so a read
        transaction only adds a BEGIN and a COMMIT round trip around the one query check needs.
        """
        if self.is_sqlite or self.current_unit() is not None:
            with self.read() as conn:
                yield conn
            return
        with self.autocommit() as conn:
            yield conn

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A pooled connection in autocommit mode: every statement commits on its own.

        Inside this thread's :meth:`unit_of_work`, the unit's connection (its statements then
        commit with the unit)."""
        unit = self.current_unit()
        if unit is not None:
            yield unit
            return
        with self._autocommit_engine.connect() as conn:
            yield conn

    @contextmanager
    def kept_autocommit(self) -> Iterator[Connection]:
        """:meth:`autocommit` on a connection this thread keeps (PostgreSQL; SQLite: :meth:`autocommit`).

        For a synchronous read on the event loop's hot path that only rarely reaches the database
        (the track watcher's cache misses): a pool checkout and check-in for each call cost a tenth
        of a PostgreSQL track.  Only the event-loop thread calls it, so it keeps one connection;
        it is never used across an ``await``.
        """
        unit = self.current_unit()
        if unit is not None or self.is_sqlite:
            with self.autocommit() as conn:
                yield conn
            return
        pinned = self._pinned_here()
        kept = pinned.get("autocommit")
        if kept is None:
            kept = pinned.by_role["autocommit"] = self._autocommit_engine.connect()
        try:
            yield kept
        finally:
            if kept.in_transaction():  # SQLAlchemy's autobegin (nothing to end on the server)
                kept.rollback()

    def ping(self) -> None:
        """Run ``SELECT 1`` on a fresh connection of the engine (raises when the database is down)."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest revision."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        engine = self.engine
        if self.is_sqlite:
            # Alembic manages its own transaction; use a plain connection without the BEGIN hook.
            engine = create_engine(self.url, poolclass=NullPool)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        if engine is not self.engine:
            engine.dispose()

    def dispose(self) -> None:
        for pinned in list(self._pinned):
            _close_all(pinned.by_role)
        self._pinned = weakref.WeakSet()
        self._local = threading.local()
        if self._autocommit_engine is not self.engine:
            self._autocommit_engine.dispose()
        self.engine.dispose()
