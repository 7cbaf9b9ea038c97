"""Catalogue writes (features, plan versions, variants' links) as stored: the SQL behind
``service.features`` and ``service.plans``; reading the catalogue is :mod:`.catalog`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from reference_server.store.tables.core import customer_plans, features, plans
from reference_server.store.tenancy import Tenant

# ----------------------------------------------------------------- features


def insert_feature(
    conn: Connection, tenant: Tenant, feature_id: str, created_at: int, values: Mapping[str, object]
) -> None:
    conn.execute(
        insert(features).values(
            org_pk=tenant.org_pk, env=tenant.env, id=feature_id, created_at=created_at, **values
        )
    )


def update_feature(
    conn: Connection, tenant: Tenant, feature_id: str, new_id: str, values: Mapping[str, object]
) -> None:
    conn.execute(
        update(features)
        .where(features.c.org_pk == tenant.org_pk, features.c.env == tenant.env, features.c.id == feature_id)
        .values(id=new_id, **values)
    )


def feature_row(conn: Connection, tenant: Tenant, feature_id: str) -> Row[Any]:
    return conn.execute(
        select(features).where(
            features.c.org_pk == tenant.org_pk,
            features.c.env == tenant.env,
            features.c.id == feature_id,
        )
    ).one()


def delete_feature(conn: Connection, tenant: Tenant, feature_id: str) -> None:
    conn.execute(
        delete(features).where(
            features.c.org_pk == tenant.org_pk, features.c.env == tenant.env, features.c.id == feature_id
        )
    )


# ----------------------------------------------------------------- plans


def insert_plan(
    conn: Connection,
    tenant: Tenant,
    plan_id: str,
    version: int,
    created_at: int,
    values: Mapping[str, object],
    *,
    base_plan_id: str | None = None,
) -> int:
    """Insert a plan version as the plan's latest; its pk."""
    pk: int = conn.execute(
        insert(plans)
        .values(
            org_pk=tenant.org_pk,
            env=tenant.env,
            id=plan_id,
            version=version,
            is_latest=True,
            created_at=created_at,
            base_plan_id=base_plan_id,
            **values,
        )
        .returning(plans.c.pk)
    ).scalar_one()
    return pk


def customer_count(conn: Connection, plan_pks: list[int]) -> int:
    """How many customer plans are on any of the plan versions ``plan_pks``."""
    return int(
        conn.execute(
            select(func.count()).select_from(customer_plans).where(customer_plans.c.plan_pk.in_(plan_pks))
        ).scalar_one()
    )


def update_version(conn: Connection, plan_pk: int, values: Mapping[str, object]) -> None:
    """Set ``values`` on one plan version."""
    conn.execute(update(plans).where(plans.c.pk == plan_pk).values(**values))


def update_plan_versions(
    conn: Connection, tenant: Tenant, plan_id: str, values: Mapping[str, object]
) -> None:
    """Set ``values`` on every version of the env's plan ``plan_id``."""
    conn.execute(
        update(plans)
        .where(plans.c.org_pk == tenant.org_pk, plans.c.env == tenant.env, plans.c.id == plan_id)
        .values(**values)
    )


def rename_customer_plans(conn: Connection, plan_id: str, plan_pks: list[int], new_id: str) -> None:
    """Customer plans on the versions ``plan_pks`` of ``plan_id`` now name the plan ``new_id``."""
    conn.execute(
        update(customer_plans)
        .where(customer_plans.c.plan_id == plan_id, customer_plans.c.plan_pk.in_(plan_pks))
        .values(plan_id=new_id)
    )


def rebase_variants(conn: Connection, tenant: Tenant, base_id: str, new_base_id: str | None) -> None:
    """The env's variants of ``base_id`` become variants of ``new_base_id`` (None: plans of their own)."""
    conn.execute(
        update(plans)
        .where(plans.c.org_pk == tenant.org_pk, plans.c.env == tenant.env, plans.c.base_plan_id == base_id)
        .values(base_plan_id=new_base_id)
    )


def delete_versions(conn: Connection, plan_pks: list[int]) -> None:
    conn.execute(delete(plans).where(plans.c.pk.in_(plan_pks)))


# ----------------------------------------------------------------- internal ids


def feature_internal_ids(conn: Connection, tenant: Tenant) -> list[tuple[str, int]]:
    """(feature id, row pk) of the env's features, oldest first."""
    rows = conn.execute(
        select(features.c.id, features.c.pk)
        .where(features.c.org_pk == tenant.org_pk, features.c.env == tenant.env)
        .order_by(features.c.pk)
    ).all()
    return [(str(fid), int(pk)) for fid, pk in rows]


def plan_internal_ids(conn: Connection, tenant: Tenant) -> list[tuple[str, int]]:
    """(plan id, first version's pk) of the env's plans, oldest first."""
    rows = conn.execute(
        select(plans.c.id, func.min(plans.c.pk))
        .where(plans.c.org_pk == tenant.org_pk, plans.c.env == tenant.env)
        .group_by(plans.c.id)
        .order_by(func.min(plans.c.pk))
    ).all()
    return [(str(pid), int(pk)) for pid, pk in rows]
