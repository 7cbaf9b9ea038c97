"""The platform's tenant organizations and their users as stored: the SQL behind
``service.platform`` (creating organizations, users and keys is :mod:`.tenancy`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select

from reference_server.store.tables.core import memberships, organizations, users


def org_by_slug(conn: Connection, slug: str) -> Row[Any] | None:
    return conn.execute(select(organizations).where(organizations.c.slug == slug)).first()


def child_org_by_slug(conn: Connection, parent_org_pk: int, slug: str) -> Row[Any] | None:
    """The organization ``slug`` if ``parent_org_pk`` created it."""
    return conn.execute(
        select(organizations).where(
            organizations.c.slug == slug,
            organizations.c.parent_org_pk == parent_org_pk,
        )
    ).first()


def child_orgs(conn: Connection, parent_org_pk: int, limit: int, offset: int) -> list[Row[Any]]:
    """A page of the organizations ``parent_org_pk`` created, oldest first."""
    return list(
        conn.execute(
            select(organizations)
            .where(organizations.c.parent_org_pk == parent_org_pk)
            .order_by(organizations.c.pk)
            .limit(limit)
            .offset(offset)
        ).all()
    )


def child_org_users(conn: Connection, parent_org_pk: int, limit: int, offset: int) -> list[Row[Any]]:
    """A page of the users who are members of an organization ``parent_org_pk`` created."""
    tenant_orgs = select(organizations.c.pk).where(organizations.c.parent_org_pk == parent_org_pk)
    user_pks = select(memberships.c.user_pk).where(memberships.c.org_pk.in_(tenant_orgs))
    return list(
        conn.execute(
            select(users).where(users.c.pk.in_(user_pks)).order_by(users.c.pk).limit(limit).offset(offset)
        ).all()
    )


def user_child_orgs(conn: Connection, parent_org_pk: int, user_pk: int) -> list[Row[Any]]:
    """The organizations ``parent_org_pk`` created that the user is a member of."""
    return list(
        conn.execute(
            select(organizations)
            .join(memberships, memberships.c.org_pk == organizations.c.pk)
            .where(memberships.c.user_pk == user_pk, organizations.c.parent_org_pk == parent_org_pk)
        ).all()
    )
