"""A billing lock left by a process that died is taken over at once by a process on the same machine;
one held by a running process (or by a holder this machine cannot check) still refuses, until it ages
out (``LOCK_TTL_MS``). On SQLite and PostgreSQL, against the real lock table."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from reference_server.store import lock_holders
from reference_server.store.billing_lock import LOCK_TTL_MS, SCOPE, release, try_acquire
from reference_server.store.db import Database
from reference_server.store.tables.core import idempotency_keys
from reference_server.testing import fresh_database_url

from .helpers import DB_KINDS, require_postgres

NOW = 1_800_000_000_000


@pytest.fixture(params=DB_KINDS)
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    if request.param == "postgres":
        require_postgres()
    with fresh_database_url(request.param) as url:
        database = Database(url)
        database.migrate()
        yield database
        database.dispose()


def _holder_of(db: Database, customer_id: str) -> str | None:
    with db.read() as conn:
        return conn.execute(
            select(idempotency_keys.c.holder).where(
                idempotency_keys.c.scope == SCOPE, idempotency_keys.c.key == customer_id
            )
        ).scalar_one_or_none()


def _held_by(db: Database, customer_id: str, holder: str) -> None:
    with db.write() as conn:
        conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.scope == SCOPE, idempotency_keys.c.key == customer_id)
            .values(holder=holder)
        )


def _ended_process() -> str:
    """The holder identity of a process on this machine that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    holder = lock_holders.process_identity(child.pid)
    child.wait()
    return holder


def test_the_lock_names_this_process_and_a_running_holder_keeps_it(db: Database) -> None:
    assert try_acquire(db, 1, "test", "c1", NOW)
    assert _holder_of(db, "c1") == lock_holders.this_process()
    assert lock_holders.is_running(lock_holders.this_process())
    assert not try_acquire(db, 1, "test", "c1", NOW + 1)  # held: 429 for the caller
    release(db, 1, "test", "c1")
    assert try_acquire(db, 1, "test", "c1", NOW + 2)


def test_a_lock_whose_holder_died_is_taken_over_at_once(db: Database) -> None:
    dead = _ended_process()
    assert not dead.startswith("unknown:"), "holders are checked through /proc (Linux)"
    assert not lock_holders.is_running(dead)
    assert try_acquire(db, 1, "test", "c2", NOW)
    _held_by(db, "c2", dead)  # as a server killed mid-attach leaves it
    assert try_acquire(db, 1, "test", "c2", NOW + 1)
    assert _holder_of(db, "c2") == lock_holders.this_process()


def test_a_holder_that_cannot_be_checked_waits_for_the_lock_to_age_out(db: Database) -> None:
    elsewhere = "another-machine-boot:4242:1000"  # a holder on another host sharing PostgreSQL
    assert lock_holders.is_running(elsewhere)
    assert try_acquire(db, 1, "test", "c3", NOW)
    _held_by(db, "c3", elsewhere)
    assert not try_acquire(db, 1, "test", "c3", NOW + LOCK_TTL_MS - 1)
    assert try_acquire(db, 1, "test", "c3", NOW + LOCK_TTL_MS + 1)
    assert _holder_of(db, "c3") == lock_holders.this_process()
