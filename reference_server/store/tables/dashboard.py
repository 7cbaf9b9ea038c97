"""Tables of the dashboard and the hosted pages' branding (revision ``0011_dashboard``).

``org_branding``: the name, logo and app URL the hosted pages show for an organization.
``dashboard_admins``: who may sign in to an organization's dashboard (argon2 password hashes).
``dashboard_sessions``: signed-in browsers, by the SHA-256 of their cookie token, so signing out or
expiry ends a session on the server and a stolen database leaks no usable token.
``api_request_log``: the last API requests per organization and env, bounded (see
:data:`REQUEST_LOG_KEEP`), for the dashboard's developers page.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    select,
)

from reference_server.store.tables.core import PK, metadata

REQUEST_LOG_KEEP = 500
"""Requests kept per organization and env; older rows are pruned as new ones arrive."""

org_branding = Table(
    "org_branding",
    metadata,
    Column("org_pk", PK, ForeignKey("organizations.pk", ondelete="CASCADE"), primary_key=True),
    Column("display_name", String(255)),
    Column("logo_url", Text),
    Column("website_url", Text),
    Column("updated_at", BigInteger, nullable=False),
)

dashboard_admins = Table(
    "dashboard_admins",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("org_pk", PK, ForeignKey("organizations.pk", ondelete="CASCADE"), nullable=False),
    Column("email", String(255), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("admin_pk", PK, ForeignKey("dashboard_admins.pk", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

api_request_log = Table(
    "api_request_log",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("org_pk", PK, nullable=False),
    Column("env", String(16), nullable=False),
    Column("method", String(8), nullable=False),
    Column("path", String(255), nullable=False),
    Column("status", Integer, nullable=False),
    Column("request_id", String(64)),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_api_request_log_org_env", "org_pk", "env", "pk"),
)


@dataclass(frozen=True)
class Branding:
    """What the hosted pages show of the organization: never empty (falls back to the org's name)."""

    name: str
    logo_url: str | None
    website_url: str | None


def branding_of(conn: Connection, org_pk: int) -> Branding:
    from reference_server.store.tables.core import organizations

    row = conn.execute(
        select(
            organizations.c.name,
            org_branding.c.display_name,
            org_branding.c.logo_url,
            org_branding.c.website_url,
        )
        .select_from(organizations.outerjoin(org_branding, org_branding.c.org_pk == organizations.c.pk))
        .where(organizations.c.pk == org_pk)
    ).one()
    return Branding(row.display_name or row.name, row.logo_url or None, row.website_url or None)


def set_branding(
    conn: Connection, org_pk: int, name: str | None, logo_url: str | None, website_url: str | None, now: int
) -> None:
    values = {"display_name": name or None, "logo_url": logo_url or None, "website_url": website_url or None}
    updated = conn.execute(
        org_branding.update().where(org_branding.c.org_pk == org_pk).values(updated_at=now, **values)
    )
    if not updated.rowcount:
        conn.execute(org_branding.insert().values(org_pk=org_pk, updated_at=now, **values))
