"""The API request log as stored (``api_request_log``): reads of an org env's recent requests, and the
dashboard's request log writing batches of them."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, select

from reference_server.store import raw
from reference_server.store.tables.core import api_keys
from reference_server.store.tables.dashboard import api_request_log
from reference_server.store.tenancy import Tenant


def requests_between(conn: Connection, tenant: Tenant, start: int, end: int) -> list[Row[Any, Any, Any, Any]]:
    """(method, path, status, created_at) of the env's requests in [start, end], newest first."""
    log = api_request_log
    return list(
        conn.execute(
            select(log.c.method, log.c.path, log.c.status, log.c.created_at)
            .where(
                log.c.org_pk == tenant.org_pk,
                log.c.env == tenant.env,
                log.c.created_at >= start,
                log.c.created_at <= end,
            )
            .order_by(log.c.created_at.desc(), log.c.pk.desc())
        ).all()
    )


def recent_requests(conn: Connection, org_pk: int, env: str, limit: int = 100) -> list[Row[Any]]:
    """The env's latest requests (every column), newest first."""
    return list(
        conn.execute(
            select(api_request_log)
            .where(api_request_log.c.org_pk == org_pk, api_request_log.c.env == env)
            .order_by(api_request_log.c.pk.desc())
            .limit(limit)
        ).all()
    )


def key_owners(conn: Connection, key_hashes: set[str]) -> dict[str, tuple[int, str]]:
    """Key hash -> (org pk, env) of the keys among ``key_hashes`` that exist."""
    return {
        r.key_hash: (int(r.org_pk), str(r.env))
        for r in conn.execute(
            select(api_keys.c.key_hash, api_keys.c.org_pk, api_keys.c.env).where(
                api_keys.c.key_hash.in_(key_hashes)
            )
        )
    }


_REQUEST_COLUMNS = ("org_pk", "env", "method", "path", "status", "request_id", "created_at")
_SQLITE_CHUNK = 100
"""Rows per SQLite INSERT: 700 parameters, under the 999 of SQLite builds older than 3.32."""
_INSERT_POSTGRES = (
    f"INSERT INTO api_request_log ({', '.join(_REQUEST_COLUMNS)}) SELECT * FROM unnest("
    "%s::bigint[], %s::text[], %s::text[], %s::text[], %s::integer[], %s::text[], %s::bigint[])"
)


@functools.lru_cache(maxsize=8)
def _insert_sqlite(n: int) -> str:
    """One INSERT of ``n`` rows with positional parameters."""
    row = "(" + ", ".join(["?"] * len(_REQUEST_COLUMNS)) + ")"
    return f"INSERT INTO api_request_log ({', '.join(_REQUEST_COLUMNS)}) VALUES " + ", ".join([row] * n)


def insert_requests(conn: Connection, values: list[dict[str, Any]]) -> None:
    """Insert a batch of log rows (each dict holds every column but ``pk``), straight to the driver:
    one statement per 100 rows on SQLite, one per batch on PostgreSQL (``unnest`` of a column
    array each).  Row by row through SQLAlchemy the log writer cost about a tenth of a check's CPU
    per logged request."""
    cur = raw.cursor(conn)
    try:
        if conn.dialect.name == "postgresql":
            cur.execute(_INSERT_POSTGRES, [[row[c] for row in values] for c in _REQUEST_COLUMNS])
            return
        for start in range(0, len(values), _SQLITE_CHUNK):
            chunk = values[start : start + _SQLITE_CHUNK]
            cur.execute(_insert_sqlite(len(chunk)), [row[c] for row in chunk for c in _REQUEST_COLUMNS])
    finally:
        cur.close()


def keep_latest_requests(conn: Connection, org_pk: int, env: str, keep: int) -> None:
    """Delete all but the env's ``keep`` latest requests."""
    scope = and_(api_request_log.c.org_pk == org_pk, api_request_log.c.env == env)
    oldest_kept = conn.execute(
        select(api_request_log.c.pk)
        .where(scope)
        .order_by(api_request_log.c.pk.desc())
        .offset(keep - 1)
        .limit(1)
    ).scalar()
    if oldest_kept is not None:
        conn.execute(delete(api_request_log).where(scope, api_request_log.c.pk < oldest_kept))
