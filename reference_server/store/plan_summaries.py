"""A plan's id, name and base price in its latest version: what a page shows of a plan."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from reference_server.store.plan_records import BasePriceRecord
from reference_server.store.tables.core import plans


@dataclass(frozen=True)
class PlanSummary:
    id: str
    name: str
    price: BasePriceRecord | None


def latest_plan(conn: Connection, org_pk: int, env: str, plan_id: str) -> PlanSummary | None:
    """The latest version of the plan ``plan_id`` (archived or not); None when unknown."""
    row = conn.execute(
        select(plans.c.id, plans.c.name, plans.c.price)
        .where(
            plans.c.org_pk == org_pk,
            plans.c.env == env,
            plans.c.id == plan_id,
            plans.c.is_latest.is_(True),
        )
        .limit(1)
    ).first()
    return None if row is None else PlanSummary(**row._mapping)


def latest_main_plans_in(conn: Connection, org_pk: int, env: str, groups: set[str]) -> list[PlanSummary]:
    """The latest versions of the unarchived main (not add-on) plans of ``groups``, oldest first."""
    rows = conn.execute(
        select(plans.c.id, plans.c.name, plans.c.price)
        .where(
            plans.c.org_pk == org_pk,
            plans.c.env == env,
            plans.c.is_latest.is_(True),
            plans.c.archived.is_(False),
            plans.c.add_on.is_(False),
            plans.c.group.in_(groups),
        )
        .order_by(plans.c.pk)
    ).all()
    return [PlanSummary(**row._mapping) for row in rows]
