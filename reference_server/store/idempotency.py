"""Idempotency claims: a unique row per (org, env, scope, key), valid for 24 hours.

The claim is inserted in the same transaction as the work it guards, so a request that fails
releases its key by rolling back, and two concurrent requests with one key can never both pass
the unique constraint.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert
from sqlalchemy.exc import IntegrityError

from reference_server.store.tables import idempotency_keys

CLAIM_TTL_MS = 24 * 3_600_000


def claim(conn: Connection, org_pk: int, env: str, scope: str, key: str, now: int) -> bool:
    """Claim ``key``; False when a claim younger than 24 hours exists."""
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


def release(conn: Connection, org_pk: int, env: str, scope: str, key: str) -> None:
    conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.org_pk == org_pk,
            idempotency_keys.c.env == env,
            idempotency_keys.c.scope == scope,
            idempotency_keys.c.key == key,
        )
    )
