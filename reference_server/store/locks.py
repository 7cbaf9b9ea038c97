"""Balance locks as stored (``locks``: a held amount and the receipt of the sources that paid it):
the SQL behind ``service.lock_settlement`` and ``service.locks``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select

from reference_server.store.tables.core import locks
from reference_server.store.tenancy import Tenant


def insert_lock(
    conn: Connection,
    tenant: Tenant,
    *,
    lock_id: str,
    customer_pk: int,
    entity_id: str | None,
    feature_id: str,
    value: float,
    receipt: list[dict[str, Any]],
    expires_at: int,
    created_at: int,
) -> None:
    conn.execute(
        insert(locks).values(
            org_pk=tenant.org_pk,
            env=tenant.env,
            lock_id=lock_id,
            customer_pk=customer_pk,
            entity_id=entity_id,
            feature_id=feature_id,
            value=value,
            receipt=receipt,
            expires_at=expires_at,
            created_at=created_at,
        )
    )


def delete_lock(conn: Connection, pk: int) -> None:
    conn.execute(delete(locks).where(locks.c.pk == pk))


def expired_locks(conn: Connection, customer_pk: int, now: int) -> list[Row[Any]]:
    """The customer's locks whose expiry is at or before ``now``."""
    return list(
        conn.execute(select(locks).where(locks.c.customer_pk == customer_pk, locks.c.expires_at <= now)).all()
    )


def find_lock(conn: Connection, tenant: Tenant, lock_id: str, *, lock: bool = False) -> Row[Any] | None:
    """The env's lock ``lock_id``; ``lock`` holds its row (``FOR UPDATE``, PostgreSQL only)."""
    q = select(locks).where(
        locks.c.org_pk == tenant.org_pk, locks.c.env == tenant.env, locks.c.lock_id == lock_id
    )
    return conn.execute(q.with_for_update() if lock and conn.dialect.name == "postgresql" else q).first()
