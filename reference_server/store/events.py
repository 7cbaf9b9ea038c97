"""Usage events as stored: the insert on the track path, the list's pages and the aggregate's rows
(the SQL behind ``service.usage`` and ``service.events``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, or_, select

from reference_server.store import raw
from reference_server.store.tables.core import customer_plans, events
from reference_server.store.tenancy import Tenant

_INSERT_EVENT = raw.Statement(
    "INSERT INTO events (id, org_pk, env, customer_pk, customer_id, entity_id, feature_id, value, "
    "properties, deductions, timestamp) VALUES (:id, :org, :env, :customer_pk, :customer_id, :entity_id, "
    ":feature_id, "
    ":value, :properties, :deductions, :timestamp)"
)


def insert_event(conn: Connection, values: dict[str, Any]) -> None:
    """Insert one event; ``values`` are the statement's parameters (``properties`` and
    ``deductions`` not yet encoded)."""
    values["properties"] = raw.json_param(values["properties"])
    values["deductions"] = raw.json_param(values["deductions"])
    raw.execute(conn, _INSERT_EVENT, values)


@dataclass(frozen=True)
class EventFilter:
    """Which of the env's events a list or an aggregate reads."""

    customer_pk: int | None = None
    entity_id: str | None = None
    feature_ids: list[str] | None = None


def _conditions(tenant: Tenant, f: EventFilter) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [events.c.org_pk == tenant.org_pk, events.c.env == tenant.env]
    if f.customer_pk is not None:
        conds.append(events.c.customer_pk == f.customer_pk)
    if f.entity_id:
        conds.append(events.c.entity_id == f.entity_id)
    if f.feature_ids is not None:
        conds.append(events.c.feature_id.in_(f.feature_ids))
    return conds


def event_page(
    conn: Connection,
    tenant: Tenant,
    f: EventFilter,
    *,
    start: int | None,
    end: int | None,
    after: tuple[int, int] | None,
    limit: int,
) -> list[Row[Any]]:
    """Up to ``limit + 1`` events, newest first, in [start, end] and after the (timestamp, pk) ``after``."""
    conds = _conditions(tenant, f)
    if start is not None:
        conds.append(events.c.timestamp >= start)
    if end is not None:
        conds.append(events.c.timestamp <= end)
    if after is not None:
        ts, pk = after
        conds.append(or_(events.c.timestamp < ts, and_(events.c.timestamp == ts, events.c.pk < pk)))
    return list(
        conn.execute(
            select(events)
            .where(*conds)
            .order_by(events.c.timestamp.desc(), events.c.pk.desc())
            .limit(limit + 1)
        ).all()
    )


def events_between(conn: Connection, tenant: Tenant, f: EventFilter, start: int, end: int) -> list[Row[Any]]:
    """The events in [start, end], oldest first."""
    conds = _conditions(tenant, f)
    conds += [events.c.timestamp >= start, events.c.timestamp <= end]
    return list(conn.execute(select(events).where(*conds).order_by(events.c.timestamp)).all())


def active_plan_rows(conn: Connection) -> list[Row[Any, Any]]:
    """(customer_pk, plan_id) of every active plan instance."""
    return list(
        conn.execute(
            select(customer_plans.c.customer_pk, customer_plans.c.plan_id).where(
                customer_plans.c.status == "active"
            )
        )
    )
