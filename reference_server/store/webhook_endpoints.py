"""Webhook endpoints as stored (``webhook_endpoints`` and their Svix-style details): the SQL behind
``webhooks.endpoints`` and ``service.webhook_endpoints``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from reference_server.store.tables.billing import webhook_endpoints
from reference_server.store.tables.webhooks import webhook_endpoint_details


def insert_endpoint(
    conn: Connection,
    org_pk: int,
    env: str,
    *,
    endpoint_id: str,
    url: str,
    secret: str,
    event_types: Sequence[str],
    created_at: int,
) -> int:
    """Insert an enabled endpoint; its pk."""
    pk: int = conn.execute(
        insert(webhook_endpoints)
        .values(
            id=endpoint_id,
            org_pk=org_pk,
            env=env,
            url=url,
            secret=secret,
            event_types=list(event_types),
            enabled=True,
            created_at=created_at,
        )
        .returning(webhook_endpoints.c.pk)
    ).scalar_one()
    return pk


def delete_endpoint_by_id(conn: Connection, org_pk: int, env: str, endpoint_id: str) -> int:
    """Delete the env's endpoint ``endpoint_id``; how many rows went."""
    deleted: int = conn.execute(
        delete(webhook_endpoints).where(
            webhook_endpoints.c.org_pk == org_pk,
            webhook_endpoints.c.env == env,
            webhook_endpoints.c.id == endpoint_id,
        )
    ).rowcount
    return deleted


def delete_endpoint(conn: Connection, endpoint_pk: int) -> None:
    conn.execute(delete(webhook_endpoints).where(webhook_endpoints.c.pk == endpoint_pk))


def endpoints_with_details(conn: Connection, org_pk: int, env: str) -> list[Row[Any]]:
    """The env's endpoints (pk, id, url, event_types, enabled, created_at) with their details
    (webhook_id, managed, description, updated_at; null without), oldest first."""
    e, d = webhook_endpoints, webhook_endpoint_details
    return list(
        conn.execute(
            select(
                e.c.pk,
                e.c.id,
                e.c.url,
                e.c.event_types,
                e.c.enabled,
                e.c.created_at,
                d.c.webhook_id,
                d.c.managed,
                d.c.description,
                d.c.updated_at,
            )
            .select_from(e.outerjoin(d, d.c.endpoint_pk == e.c.pk))
            .where(e.c.org_pk == org_pk, e.c.env == env)
            .order_by(e.c.pk)
        )
    )


def disable_endpoint(conn: Connection, endpoint_pk: int) -> None:
    conn.execute(update(webhook_endpoints).where(webhook_endpoints.c.pk == endpoint_pk).values(enabled=False))


def insert_details(
    conn: Connection, endpoint_pk: int, org_pk: int, env: str, details: dict[str, Any]
) -> None:
    conn.execute(
        insert(webhook_endpoint_details).values(endpoint_pk=endpoint_pk, org_pk=org_pk, env=env, **details)
    )


def update_endpoint(
    conn: Connection, endpoint_pk: int, *, url: str, event_types: list[str], enabled: bool
) -> None:
    conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.pk == endpoint_pk)
        .values(url=url, event_types=event_types, enabled=enabled)
    )


def update_details(conn: Connection, endpoint_pk: int, details: dict[str, Any]) -> int:
    """Change the endpoint's details; how many rows changed (0: it has none yet)."""
    d = webhook_endpoint_details
    changed: int = conn.execute(update(d).where(d.c.endpoint_pk == endpoint_pk).values(**details)).rowcount
    return changed
