"""The per-customer billing lock: one attach, update or multi-attach at a time per customer (§5.2.12).

Autumn answers 429 while another billing change for the same customer is in flight.  The lock is a
row in the database, not a process-local mutex, so it holds across server processes and workers.
It reuses the claim table of idempotency keys (a unique row per org, env, scope and key with its
creation time) under its own scope: taking the lock is inserting the row in a committed
transaction, releasing it is deleting the row.  A holder that died leaves its row behind: the next
caller takes it over at once when the row names a holder on this machine that no longer runs
(:mod:`reference_server.store.lock_holders`), else once the row is older than :data:`LOCK_TTL_MS`.

The check reads first: a committed lock row is visible to a read transaction even while the holder
is inside a long write transaction (SQLite allows one writer), so the second caller gets its 429
at once instead of queueing behind the database write lock.

The lock rows commit on their own (``Database.write(independent=True)``), also inside a request's
unit of work (:meth:`reference_server.store.db.Database.unit_of_work`); there the lock is released
only once the unit's transaction has ended, so the next billing change starts from committed state.
SQLite cannot commit a row while a unit holds its one writer, so there the dispatcher takes the lock
before it opens the unit (:func:`billing_lock` is re-entrant on one thread).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import ColumnElement, delete, insert, or_, select
from sqlalchemy.exc import IntegrityError

from reference_server.errors import ApiError
from reference_server.store import lock_holders
from reference_server.store.db import Database, after_transaction
from reference_server.store.tables.core import idempotency_keys

LOCK_TTL_MS = 120_000  # the time after which a lock of a holder that died is taken over
SCOPE = "billing_lock"

_held = threading.local()
"""The (database, org, env, customer) locks this thread holds: a nested ``billing_lock`` is a no-op."""


def billing_in_progress(customer_id: str) -> ApiError:
    return ApiError(
        429,
        "lock_already_exists",
        f"A billing operation is already running for customer {customer_id}, try again in a few seconds",
    )


def _where(org_pk: int, env: str, customer_id: str) -> tuple[ColumnElement[bool], ...]:
    return (
        idempotency_keys.c.org_pk == org_pk,
        idempotency_keys.c.env == env,
        idempotency_keys.c.scope == SCOPE,
        idempotency_keys.c.key == customer_id,
    )


def try_acquire(db: Database, org_pk: int, env: str, customer_id: str, now: int) -> bool:
    """Take the customer's billing lock; False while another live holder has it."""
    where = _where(org_pk, env, customer_id)
    with db.read() as conn:
        held = conn.execute(
            select(idempotency_keys.c.created_at, idempotency_keys.c.holder).where(*where)
        ).first()
    abandoned: ColumnElement[bool] = idempotency_keys.c.created_at < now - LOCK_TTL_MS
    if held is not None:
        if held.created_at >= now - LOCK_TTL_MS and lock_holders.is_running(held.holder):
            return False
        if held.holder is not None:  # its holder is gone: the row goes, unless another took it meanwhile
            abandoned = or_(abandoned, idempotency_keys.c.holder == held.holder)
    try:
        with db.write(independent=True) as conn:
            conn.execute(delete(idempotency_keys).where(*where, abandoned))
            conn.execute(
                insert(idempotency_keys).values(
                    org_pk=org_pk,
                    env=env,
                    scope=SCOPE,
                    key=customer_id,
                    created_at=now,
                    holder=lock_holders.this_process(),
                )
            )
    except IntegrityError:
        return False
    return True


def release(db: Database, org_pk: int, env: str, customer_id: str) -> None:
    with db.write(independent=True) as conn:
        conn.execute(delete(idempotency_keys).where(*_where(org_pk, env, customer_id)))


@contextmanager
def billing_lock(db: Database, org_pk: int, env: str, customer_id: str, now: int) -> Iterator[None]:
    """Hold the customer's billing lock around a billing change, or raise the 429.

    Re-entrant on one thread; inside a unit of work the release waits for the unit's end."""
    held: set[tuple[int, int, str, str]] = _held.__dict__.setdefault("locks", set())
    mine = (id(db), org_pk, env, customer_id)
    if mine in held:
        yield
        return
    if not try_acquire(db, org_pk, env, customer_id, now):
        raise billing_in_progress(customer_id)
    held.add(mine)
    deferred = False
    try:
        yield
    finally:
        held.discard(mine)
        unit = db.current_unit()
        if unit is not None:
            deferred = after_transaction(unit, lambda: release(db, org_pk, env, customer_id))
        if not deferred:
            release(db, org_pk, env, customer_id)
