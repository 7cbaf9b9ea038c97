"""The API request log as stored (``api_request_log``): reads of an org env's recent requests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select

from reference_server.store.dashboard_tables import api_request_log
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
