"""Idempotency keys: a unique row per (org, env, scope, key), valid for 24 hours.

Two scopes use the table (a third, ``billing_lock``, is :mod:`reference_server.store.billing_lock`):

* ``header``: the ``Idempotency-Key`` header of any request.  The dispatcher claims the key with
  the first statement of the request's unit of work (:meth:`Database.unit_of_work`), runs the
  service in that same transaction and stores the response with the claim before the commit.
  So a crash, a rollback or a refused request never leaves a key claimed for work that did not
  happen, and a committed claim always carries the response it answered: a repeat with the same
  request (operation and canonical body, :func:`request_hash`) replays it, a different request gets
  409 ``duplicate_idempotency_key``, and a repeat while the first is still running gets 409
  ``idempotency_key_in_flight`` (PostgreSQL: a transaction-scoped advisory lock per key marks the
  claim in flight, so the second request never waits on the first's uncommitted row; SQLite has one
  writer, so a second process waits for the first to commit and then replays: there the unit reads
  the key first and inserts it with its response at the end, :class:`Pending`).
* ``body``: the ``idempotency_key`` field of ``track`` (Autumn's own rule: claimed in the track's
  transaction, a repeat gets 409, a failed track releases it by rolling back).

Expired rows (older than :data:`CLAIM_TTL_MS` at the server's base clock) are deleted in small
batches after requests that claim keys and by the background worker (:func:`purge_job`), at most
once a minute per process (:func:`purge_if_due`):
the delete is bounded and, on PostgreSQL, skips rows another transaction holds, so it never blocks
a request.  Test clocks only move an organization's time forward, so a row expired at the base clock
is expired in its organization's time too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert
from sqlalchemy.exc import IntegrityError

from reference_server.store import raw
from reference_server.store.db import Database
from reference_server.store.tables.core import idempotency_keys

log = logging.getLogger("reference_server")

CLAIM_TTL_MS = 24 * 3_600_000
HEADER_SCOPE = "header"
BODY_SCOPE = "body"
PURGED_SCOPES = (HEADER_SCOPE, BODY_SCOPE)
PURGE_INTERVAL_MS = 60_000
PURGE_BATCH = 500


def claim(conn: Connection, org_pk: int, env: str, scope: str, key: str, now: int) -> bool:
    """Claim ``key`` in the caller's transaction; False when a claim younger than 24 hours exists."""
    where = (
        idempotency_keys.c.org_pk == org_pk,
        idempotency_keys.c.env == env,
        idempotency_keys.c.scope == scope,
        idempotency_keys.c.key == key,
    )
    conn.execute(delete(idempotency_keys).where(*where, idempotency_keys.c.created_at < now - CLAIM_TTL_MS))
    try:
        with conn.begin_nested():
            conn.execute(
                insert(idempotency_keys).values(org_pk=org_pk, env=env, scope=scope, key=key, created_at=now)
            )
    except IntegrityError:
        return False
    return True


def request_hash(operation: str, payload: Any) -> str:
    """The canonical hash of a request: its operation and its JSON body (keys sorted, no spacing)."""
    canonical = json.dumps([operation, payload], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Stored:
    """A committed header claim: the request it was made for and the response it answered."""

    pk: int
    created_at: int
    request_hash: str | None
    status: int | None
    body: str | None


@dataclass(frozen=True)
class InFlight:
    """Another request with this key is running (its claim is not committed yet)."""


# SQLite: the key with its answer, at the end of the unit that holds the one write lock (:class:`Pending`).
_INSERT_ANSWERED = raw.Statement(
    "INSERT INTO idempotency_keys (org_pk, env, scope, key, created_at, request_hash, response_status, "
    "response_body) VALUES (:org, :env, 'header', :key, :now, :hash, :status, :body)"
)
# The advisory lock (released at commit or rollback) marks the key in flight: a second request
# inserts nothing at once instead of waiting on the first one's uncommitted row.
_INSERT_POSTGRES = raw.Statement(
    "INSERT INTO idempotency_keys (org_pk, env, scope, key, created_at, request_hash) "
    "SELECT :org, :env, 'header', :key, :now, :hash WHERE pg_try_advisory_xact_lock(:lock) "
    "ON CONFLICT (org_pk, env, scope, key) DO NOTHING RETURNING pk"
)
_SELECT = raw.Statement(
    "SELECT pk, created_at, request_hash, response_status, response_body FROM idempotency_keys "
    "WHERE org_pk = :org AND env = :env AND scope = 'header' AND key = :key"
)
_DELETE = raw.Statement("DELETE FROM idempotency_keys WHERE pk = :pk")
_COMPLETE = raw.Statement(
    "UPDATE idempotency_keys SET response_status = :status, response_body = :body WHERE pk = :pk"
)


def advisory_lock_id(org_pk: int, env: str, key: str) -> int:
    """The transaction-scoped advisory lock that marks a header key in flight on PostgreSQL."""
    digest = hashlib.sha256(f"{org_pk}\x00{env}\x00{key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True)
class AnsweredClaim:
    """A header claim written together with its answer, in the statement that does the work
    (PostgreSQL's keyed track, :data:`reference_server.store.subject_cache.APPLY_KEYED`)."""

    org_pk: int
    env: str
    key: str
    request_hash: str
    now: int
    status: int
    body: str

    def params(self) -> dict[str, Any]:
        return {
            "org": self.org_pk,
            "env": self.env,
            "key": self.key,
            "hash": self.request_hash,
            "now": self.now,
            "lock": advisory_lock_id(self.org_pk, self.env, self.key),
            "status": self.status,
            "body": self.body,
        }


def lookup(conn: Connection, org_pk: int, env: str, key: str) -> Stored | None:
    """The committed (or, inside the unit that made it, pending) header claim of ``key``."""
    rows = raw.fetch(conn, _SELECT, {"org": org_pk, "env": env, "key": key})
    if not rows:
        return None
    row = rows[0]
    return Stored(
        int(row.pk),
        int(row.created_at),
        row.request_hash,
        None if row.response_status is None else int(row.response_status),
        row.response_body,
    )


@dataclass(frozen=True)
class Pending:
    """A SQLite header claim not written yet: :func:`complete` inserts the key with its answer.

    SQLite has one writer and the unit of work holds it from its ``BEGIN IMMEDIATE``, so no other
    request can claim the key between :func:`begin`'s read and the insert at the end of the unit: a
    second process waits for the commit and then replays, as it did when the claim came first.
    One write instead of an insert and an update of the same row.
    """

    org_pk: int
    env: str
    key: str
    request_hash: str
    now: int


Claim = int | Pending
"""What :func:`begin` claimed: the new row's pk (PostgreSQL) or the insert still to do (SQLite)."""


def begin(
    conn: Connection, org_pk: int, env: str, key: str, hashed: str, now: int
) -> Claim | Stored | InFlight:
    """Claim the header ``key`` as the first statement of a unit of work.

    The new claim (:data:`Claim`), the live claim already committed for the key, or :class:`InFlight`.
    """
    if conn.dialect.name != "postgresql":
        stored = lookup(conn, org_pk, env, key)
        if stored is not None:
            if stored.created_at >= now - CLAIM_TTL_MS:
                return stored
            raw.execute(conn, _DELETE, {"pk": stored.pk})  # expired: claim it afresh
        return Pending(org_pk, env, key, hashed, now)
    params = {"org": org_pk, "env": env, "key": key, "now": now, "hash": hashed}
    params["lock"] = advisory_lock_id(org_pk, env, key)
    for _ in range(2):
        rows = raw.fetch(conn, _INSERT_POSTGRES, params)
        if rows:
            return int(rows[0].pk)
        stored = lookup(conn, org_pk, env, key)
        if stored is None:
            return InFlight()  # another transaction holds the key's advisory lock
        if stored.created_at >= now - CLAIM_TTL_MS:
            return stored
        raw.execute(conn, _DELETE, {"pk": stored.pk})  # expired: claim it afresh
    return InFlight()


def complete(conn: Connection, claim: Claim, status: int, body: str) -> None:
    """Store the response with the claim (same transaction as the work)."""
    if isinstance(claim, Pending):
        params = {
            "org": claim.org_pk,
            "env": claim.env,
            "key": claim.key,
            "now": claim.now,
            "hash": claim.request_hash,
            "status": status,
            "body": body,
        }
        raw.execute(conn, _INSERT_ANSWERED, params)
        return
    raw.execute(conn, _COMPLETE, {"pk": claim, "status": status, "body": body})


def release(conn: Connection, claim: Claim) -> None:
    """Give the key back (a failure the client may retry); the rest of the unit still commits."""
    if not isinstance(claim, Pending):  # a pending claim wrote nothing
        raw.execute(conn, _DELETE, {"pk": claim})


_PURGE_SQLITE = (
    "DELETE FROM idempotency_keys WHERE pk IN (SELECT pk FROM idempotency_keys "
    "WHERE created_at < :before AND scope IN ('header', 'body') LIMIT :limit)"
)
_PURGE_POSTGRES = (
    "DELETE FROM idempotency_keys WHERE pk IN (SELECT pk FROM idempotency_keys "
    "WHERE created_at < %(before)s AND scope IN ('header', 'body') LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
)


def purge_expired(db: Database, now: int, limit: int = PURGE_BATCH) -> int:
    """Delete at most ``limit`` expired header and body claims in a short transaction of its own;
    returns how many went."""
    with db.write() as conn:
        cur = raw.cursor(conn)
        try:
            sql = _PURGE_POSTGRES if conn.dialect.name == "postgresql" else _PURGE_SQLITE
            cur.execute(sql, {"before": now - CLAIM_TTL_MS, "limit": limit})
            return int(cur.rowcount or 0)
        finally:
            cur.close()


_next_purge: weakref.WeakKeyDictionary[Database, int] = weakref.WeakKeyDictionary()
_purge_guard = threading.Lock()


def purge_if_due(db: Database, now: int) -> int:
    """Run :func:`purge_expired` when a minute has passed since this process last did (with no
    transaction open on this thread); a full batch brings the next run forward.  How many went."""
    with _purge_guard:
        if _next_purge.get(db, 0) > now:
            return 0
        _next_purge[db] = now + PURGE_INTERVAL_MS
    try:
        purged = purge_expired(db, now)
    except Exception:  # a busy database: the next request tries again
        log.warning("purging expired idempotency keys failed", exc_info=True)
        with _purge_guard:
            _next_purge[db] = now
        return 0
    if purged >= PURGE_BATCH:
        with _purge_guard:
            _next_purge[db] = now
    return purged


def purge_job(db: Database, now_ms: Callable[[], int]) -> Callable[[], int]:
    """The background worker's purge (:mod:`reference_server.jobs`): keys expire even on a server
    that stops receiving keyed requests; returns how many went, as every job does."""

    def purge_expired_keys() -> int:
        return purge_if_due(db, now_ms())

    return purge_expired_keys
