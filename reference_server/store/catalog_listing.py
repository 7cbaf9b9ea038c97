"""An environment's catalogue as the dashboard lists it: features, every version of every plan, and
how many customers hold each version.  Rows are the tables' own (the templates read their columns);
the catalogue the API serves is :mod:`.catalog`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, func, select

from reference_server.store.tables.core import customer_plans, features, plans


@dataclass(frozen=True)
class Named:
    """A feature's or a plan's id and display name."""

    id: str
    name: str | None


def features_of(conn: Connection, org_pk: int, env: str) -> list[Row[Any]]:
    """The environment's features (every column), oldest first."""
    return list(
        conn.execute(
            select(features).where(features.c.org_pk == org_pk, features.c.env == env).order_by(features.c.pk)
        ).all()
    )


def feature_names(conn: Connection, org_pk: int, env: str) -> list[Named]:
    """The environment's features, oldest first."""
    return [
        Named(row.id, row.name)
        for row in conn.execute(
            select(features.c.id, features.c.name)
            .where(features.c.org_pk == org_pk, features.c.env == env)
            .order_by(features.c.pk)
        )
    ]


def current_plan_names(conn: Connection, org_pk: int, env: str) -> list[Named]:
    """The latest version of each unarchived plan, oldest first."""
    return [
        Named(row.id, row.name)
        for row in conn.execute(
            select(plans.c.id, plans.c.name)
            .where(
                plans.c.org_pk == org_pk,
                plans.c.env == env,
                plans.c.is_latest.is_(True),
                plans.c.archived.is_(False),
            )
            .order_by(plans.c.pk)
        )
    ]


def plan_versions(conn: Connection, org_pk: int, env: str, plan_id: str | None = None) -> list[Row[Any]]:
    """Every version (every column) of every plan, or of ``plan_id``, by plan id then version."""
    where = [plans.c.org_pk == org_pk, plans.c.env == env]
    if plan_id is not None:
        where.append(plans.c.id == plan_id)
    return list(conn.execute(select(plans).where(*where).order_by(plans.c.id, plans.c.version)).all())


def active_customers_per_version(
    conn: Connection, org_pk: int, env: str, plan_id: str | None = None
) -> dict[int, int]:
    """Plan version pk -> how many customers hold it (active), for every plan or ``plan_id``'s."""
    where = [plans.c.org_pk == org_pk, plans.c.env == env]
    if plan_id is not None:
        where.append(plans.c.id == plan_id)
    rows = conn.execute(
        select(customer_plans.c.plan_pk, func.count())
        .select_from(customer_plans.join(plans, plans.c.pk == customer_plans.c.plan_pk))
        .where(customer_plans.c.status == "active", *where)
        .group_by(customer_plans.c.plan_pk)
    ).all()
    return {int(pk): int(count) for pk, count in rows}
