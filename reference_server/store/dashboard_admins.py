"""Dashboard admins and their signed-in sessions as stored; hashing passwords and tokens is the
dashboard's (:mod:`reference_server.dashboard.auth`), these functions take and return the hashes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select

from reference_server.store.tables.core import organizations
from reference_server.store.tables.dashboard import dashboard_admins, dashboard_sessions


@dataclass(frozen=True)
class AdminCredentials:
    pk: int
    password_hash: str


@dataclass(frozen=True)
class SessionAdmin:
    """The admin a live session belongs to, with its organization and the session's CSRF token."""

    pk: int
    email: str
    org_pk: int
    org_id: str
    org_name: str
    csrf_token: str


def org_pk_of(conn: Connection, org_id: str) -> int | None:
    """The organization whose id or slug is ``org_id``."""
    pk = conn.execute(
        select(organizations.c.pk).where((organizations.c.id == org_id) | (organizations.c.slug == org_id))
    ).scalar()
    return None if pk is None else int(pk)


def admin_exists(conn: Connection, email: str) -> bool:
    return (
        conn.execute(select(dashboard_admins.c.pk).where(dashboard_admins.c.email == email)).first()
        is not None
    )


def insert_admin(conn: Connection, org_pk: int, email: str, password_hash: str, now: int) -> int:
    return int(
        conn.execute(
            insert(dashboard_admins)
            .values(org_pk=org_pk, email=email, password_hash=password_hash, created_at=now)
            .returning(dashboard_admins.c.pk)
        ).scalar_one()
    )


def admin_credentials(conn: Connection, email: str) -> AdminCredentials | None:
    row = conn.execute(
        select(dashboard_admins.c.pk, dashboard_admins.c.password_hash).where(
            dashboard_admins.c.email == email
        )
    ).first()
    return None if row is None else AdminCredentials(int(row.pk), str(row.password_hash))


def set_password_hash(conn: Connection, admin_pk: int, password_hash: str) -> None:
    conn.execute(
        dashboard_admins.update().where(dashboard_admins.c.pk == admin_pk).values(password_hash=password_hash)
    )


def insert_session(
    conn: Connection, token_hash: str, admin_pk: int, csrf_token: str, now: int, expires_at: int
) -> None:
    """A new session, after dropping every session that expired before ``now``."""
    conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.expires_at < now))
    conn.execute(
        insert(dashboard_sessions).values(
            token_hash=token_hash,
            admin_pk=admin_pk,
            csrf_token=csrf_token,
            created_at=now,
            expires_at=expires_at,
        )
    )


def session_admin(conn: Connection, token_hash: str, now: int) -> SessionAdmin | None:
    """The admin of the session ``token_hash`` while it has not expired."""
    row = conn.execute(
        select(
            dashboard_admins.c.pk,
            dashboard_admins.c.email,
            dashboard_admins.c.org_pk,
            organizations.c.id.label("org_id"),
            organizations.c.name.label("org_name"),
            dashboard_sessions.c.csrf_token,
        )
        .select_from(
            dashboard_sessions.join(
                dashboard_admins, dashboard_admins.c.pk == dashboard_sessions.c.admin_pk
            ).join(organizations, organizations.c.pk == dashboard_admins.c.org_pk)
        )
        .where(dashboard_sessions.c.token_hash == token_hash, dashboard_sessions.c.expires_at > now)
    ).first()
    if row is None:
        return None
    return SessionAdmin(int(row.pk), row.email, int(row.org_pk), row.org_id, row.org_name, row.csrf_token)


def delete_session(conn: Connection, token_hash: str) -> None:
    conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.token_hash == token_hash))
