"""How much an organization's environment holds: customers, current plans, features, live API keys."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Table, func, select

from reference_server.store.tables.core import api_keys, customers, features, plans


@dataclass(frozen=True)
class EnvCounts:
    customers: int
    plans: int
    features: int
    keys: int


def env_counts(conn: Connection, org_pk: int, env: str) -> EnvCounts:
    def where(table: Table) -> ColumnElement[bool]:
        return (table.c.org_pk == org_pk) & (table.c.env == env)

    def count(table: Table, *more: ColumnElement[bool]) -> int:
        return int(
            conn.execute(select(func.count()).select_from(table).where(where(table), *more)).scalar_one()
        )

    return EnvCounts(
        customers=count(customers),
        plans=count(plans, plans.c.is_latest.is_(True)),
        features=count(features),
        keys=count(api_keys, api_keys.c.revoked_at.is_(None)),
    )
