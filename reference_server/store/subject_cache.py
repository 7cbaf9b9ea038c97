"""Per-process cache of track subjects on PostgreSQL, so a track costs one database round trip.

A track must read the customer and the feature's sources before it can write, and on PostgreSQL
that read (under the customer's row lock) plus the writes and the commit are four or more round
trips.  This cache keeps, per customer and feature set, the subject the process last read or wrote
together with the database's fingerprint of it (``autumn_subject_fingerprint``, migration 0003).
The next track computes from the cached subject and sends one statement, ``autumn_track_apply``,
which locks the customer, re-checks the fingerprint in a fresh snapshot and only then writes the
sources and the event.  A mismatch means something changed the subject (another process, a plan
change, a balance update, a concurrent track): the entry is dropped and the caller falls back to
the ordinary locked path, so the cache is invalidated on change without anyone having to tell it.

An entry is taken out of the cache while a request works on it (the engine mutates sources in
place), so two requests never share one; a concurrent track of the same customer takes the locked
path instead.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from reference_server.engine.entitlements import Source
from reference_server.store import raw
from reference_server.store.idempotency import AnsweredClaim
from reference_server.store.subjects import _SUBJECT_SQL, CustomerRow, subject_from_rows
from reference_server.store.tenancy import Tenant

MAX_ENTRIES = 20_000

SubjectKey = tuple[int, str, str, frozenset[str]]


@dataclass
class CachedSubject:
    customer: CustomerRow
    sources: list[Source]
    fingerprint: str


class SubjectCache:
    """Subjects by (org, env, customer id, feature ids); see the module docstring.

    A request :meth:`claim` s a key before it works on the subject and :meth:`release` s it after,
    handing back the entry only if its write succeeded.  A key already claimed means a concurrent
    track of the same customer: the caller goes straight to the locked path, since a second
    compare-and-write would almost surely lose and only add round trips to a hot customer.
    """

    def __init__(self) -> None:
        self._entries: dict[SubjectKey, CachedSubject] = {}
        self._busy: set[SubjectKey] = set()
        self._lock = threading.Lock()

    def claim(self, key: SubjectKey) -> tuple[bool, CachedSubject | None]:
        """(False, None) if another request holds the key; else (True, the cached entry or None)."""
        with self._lock:
            if key in self._busy:
                return False, None
            self._busy.add(key)
            return True, self._entries.pop(key, None)

    def release(self, key: SubjectKey, entry: CachedSubject | None) -> None:
        with self._lock:
            self._busy.discard(key)
            if entry is not None:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[key] = entry


def subject_key(tenant: Tenant, customer_id: str, feature_ids: Iterable[str]) -> SubjectKey:
    return (tenant.org_pk, tenant.env, customer_id, frozenset(feature_ids))


@functools.lru_cache(maxsize=64)
def _fingerprinted_sql(n_features: int) -> raw.Statement:
    names = [f":f{i}" for i in range(n_features)]
    sql = _SUBJECT_SQL.format(features="(" + ", ".join(names) + ")")
    array = f"CAST(ARRAY[{', '.join(names)}] AS text[])"
    fingerprint = f"autumn_subject_fingerprint(c.pk, {array}) AS subject_fp, "
    return raw.Statement(sql.replace("SELECT ", "SELECT " + fingerprint, 1))


def fingerprinted_query(
    tenant: Tenant, customer_id: str, feature_ids: set[str]
) -> tuple[raw.Statement, dict[str, Any]]:
    """The statement reading a subject and its fingerprint together (so both share one snapshot)."""
    values = sorted(feature_ids) or [""]
    params: dict[str, Any] = {f"f{i}": v for i, v in enumerate(values)}
    params.update({"org": tenant.org_pk, "env": tenant.env, "id": customer_id})
    return _fingerprinted_sql(len(values)), params


def cached_subject(rows: list[Any]) -> CachedSubject | None:
    """A cache entry from the rows of :func:`fingerprinted_query` (None: no such customer)."""
    loaded = subject_from_rows(rows)
    if loaded is None or rows[0].subject_fp is None:
        return None
    return CachedSubject(loaded[0], loaded[1], str(rows[0].subject_fp))


def load_fingerprinted(
    conn: Connection, tenant: Tenant, customer_id: str, feature_ids: set[str]
) -> CachedSubject | None:
    stmt, params = fingerprinted_query(tenant, customer_id, feature_ids)
    return cached_subject(raw.fetch(conn, stmt, params))


APPLY = raw.Statement(
    "SELECT autumn_track_apply(CAST(:customer_pk AS bigint), CAST(:features AS text[]), :expected, "
    "CAST(:updates AS json), CAST(:event AS json)) AS fp"
)


def apply_params(
    entry: CachedSubject, feature_ids: set[str], dirty: list[Source], event: dict[str, Any]
) -> dict[str, Any]:
    """Parameters of :data:`APPLY`: the changed sources and the event, checked against the fingerprint."""
    updates = [
        {
            "pk": s.pk,
            "balance": s.balance,
            "adjustment": s.adjustment,
            "next_reset_at": s.next_reset_at,
            "expires_at": s.expires_at,
            "allowance": s.allowance,
            "anchor_at": s.anchor_at,
            "rollovers": [r.to_json() for r in s.rollovers],
        }
        for s in dirty
    ]
    return {
        "customer_pk": entry.customer.pk,
        "features": sorted(feature_ids) or [""],
        "expected": entry.fingerprint,
        "updates": raw.json_param(updates),
        "event": raw.json_param(event),
    }


APPLY_KEYED = raw.Statement(
    "SELECT autumn_track_apply_keyed(CAST(:customer_pk AS bigint), CAST(:features AS text[]), :expected, "
    "CAST(:updates AS json), CAST(:event AS json), CAST(:org AS bigint), :env, :key, :hash, "
    "CAST(:now AS bigint), CAST(:lock AS bigint), CAST(:status AS integer), :body) AS fp"
)
""":data:`APPLY` that also claims the request's ``Idempotency-Key`` with its answer (migration 0024):
NULL, with nothing written, when the key is held or claimed before, or the subject changed."""


def keyed_apply_params(
    entry: CachedSubject,
    feature_ids: set[str],
    dirty: list[Source],
    event: dict[str, Any],
    claim: AnsweredClaim,
) -> dict[str, Any]:
    """Parameters of :data:`APPLY_KEYED`."""
    return {**apply_params(entry, feature_ids, dirty, event), **claim.params()}


APPLY_BATCH = raw.Statement(
    "SELECT autumn_track_apply_batch(CAST(:customer_pk AS bigint), CAST(:features AS text[]), :expected, "
    "CAST(:updates AS json), CAST(:events AS json), CAST(:claims AS json)) AS fp"
)
""":data:`APPLY` for several tracks of one customer, with their header claims (migration 0025):
all or nothing, NULL when any key is held or claimed before, or the subject changed."""


def batch_apply_params(
    entry: CachedSubject,
    feature_ids: set[str],
    dirty: list[Source],
    events: list[dict[str, Any]],
    claims: list[AnsweredClaim],
) -> dict[str, Any]:
    """Parameters of :data:`APPLY_BATCH`."""
    params = apply_params(entry, feature_ids, dirty, {})
    del params["event"]
    params["events"] = raw.json_param(events)
    params["claims"] = raw.json_param([c.params() for c in claims])
    return params


def apply_track(
    conn: Connection,
    entry: CachedSubject,
    feature_ids: set[str],
    dirty: list[Source],
    event: dict[str, Any],
) -> str | None:
    """Write the changed sources and the event if the subject is unchanged; the new fingerprint or None."""
    rows = raw.fetch(conn, APPLY, apply_params(entry, feature_ids, dirty, event))
    fp = rows[0].fp if rows else None
    return None if fp is None else str(fp)
