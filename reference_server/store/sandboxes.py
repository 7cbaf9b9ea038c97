"""Sandbox organizations as stored: the SQL behind ``service.sandboxes`` (creating the organization
and its key is :mod:`.tenancy`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select

from reference_server.store.tables.core import customers, features, idempotency_keys, organizations, plans
from reference_server.store.tables.dashboard import api_request_log
from reference_server.store.tables.sandboxes import sandboxes
from reference_server.store.tenancy import Tenant


def is_sandbox(conn: Connection, org_pk: int) -> bool:
    """Whether the organization is itself a sandbox."""
    return conn.execute(select(sandboxes.c.org_pk).where(sandboxes.c.org_pk == org_pk)).first() is not None


def sandbox_rows(conn: Connection, parent_org_pk: int) -> list[Row[Any]]:
    """The organization's sandboxes (pk, id, created_at, name, sandbox_slug, color, icon), newest first."""
    return list(
        conn.execute(
            select(
                organizations.c.pk,
                organizations.c.id,
                organizations.c.created_at,
                sandboxes.c.name,
                sandboxes.c.slug.label("sandbox_slug"),
                sandboxes.c.color,
                sandboxes.c.icon,
            )
            .select_from(sandboxes.join(organizations, organizations.c.pk == sandboxes.c.org_pk))
            .where(sandboxes.c.parent_org_pk == parent_org_pk)
            .order_by(organizations.c.created_at.desc(), organizations.c.pk.desc())
        )
    )


def insert_sandbox(
    conn: Connection, org_pk: int, parent_org_pk: int, *, name: str, slug: str, color: str, icon: str
) -> None:
    conn.execute(
        insert(sandboxes).values(
            org_pk=org_pk, parent_org_pk=parent_org_pk, name=name, slug=slug, color=color, icon=icon
        )
    )


def org_created_at(conn: Connection, org_pk: int) -> int:
    created_at: int = conn.execute(
        select(organizations.c.created_at).where(organizations.c.pk == org_pk)
    ).scalar_one()
    return created_at


def child_org_count(conn: Connection, org_pk: int) -> int:
    count: int = conn.execute(
        select(func.count()).select_from(organizations).where(organizations.c.parent_org_pk == org_pk)
    ).scalar_one()
    return count


def delete_org(conn: Connection, org_pk: int) -> None:
    """Delete the organization and everything in it."""
    # the two tables keyed by organization without a foreign key; the rest cascade
    conn.execute(delete(idempotency_keys).where(idempotency_keys.c.org_pk == org_pk))
    conn.execute(delete(api_request_log).where(api_request_log.c.org_pk == org_pk))
    conn.execute(delete(organizations).where(organizations.c.pk == org_pk))


def empty_env(conn: Connection, tenant: Tenant) -> None:
    """Delete the env's customers, plans and features."""
    # customers first: their plan instances refer to the plans
    for table in (customers, plans, features):
        conn.execute(delete(table).where(table.c.org_pk == tenant.org_pk, table.c.env == tenant.env))
