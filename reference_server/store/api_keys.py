"""An environment's API keys as the dashboard lists them (creating and revoking keys is :mod:`.tenancy`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select

from reference_server.store.tables.core import api_keys


def keys_of(conn: Connection, org_pk: int, env: str) -> list[Row[Any]]:
    """The environment's keys (every column, revoked ones too), newest first."""
    return list(
        conn.execute(
            select(api_keys)
            .where(api_keys.c.org_pk == org_pk, api_keys.c.env == env)
            .order_by(api_keys.c.pk.desc())
        ).all()
    )


def owns_key(conn: Connection, org_pk: int, env: str, key_id: str) -> bool:
    """The key ``key_id`` belongs to this organization's environment."""
    row = conn.execute(
        select(api_keys.c.pk).where(
            api_keys.c.id == key_id, api_keys.c.org_pk == org_pk, api_keys.c.env == env
        )
    ).first()
    return row is not None
