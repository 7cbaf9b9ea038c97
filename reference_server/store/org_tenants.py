"""An organization's environment as a :class:`Tenant` (its clock offset and catalogue version), for
callers that know the organization rather than an API key (the dashboard)."""

from __future__ import annotations

from sqlalchemy import Connection, select

from reference_server.store.tables.core import organizations
from reference_server.store.tenancy import Tenant


def tenant_of(conn: Connection, org_pk: int, env: str) -> Tenant:
    row = conn.execute(select(organizations).where(organizations.c.pk == org_pk)).one()
    offset = row.sandbox_clock_offset_ms if env == "sandbox" else row.live_clock_offset_ms
    return Tenant(
        org_pk=int(row.pk),
        org_id=str(row.id),
        env=env,
        clock_offset_ms=int(offset or 0),
        catalog_version=int(row.catalog_version),
    )
