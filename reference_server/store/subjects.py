"""Loading and saving a customer, its entities and its balance sources.

Writers lock the customer first (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
already serializes writers), read the sources of the features involved in one query, and write
back only the sources the engine marked dirty.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update

from reference_server.engine.model import Rollover, Source
from reference_server.service.context import Tenant
from reference_server.store.tables import balance_sources, customers, entities


@dataclass
class CustomerRow:
    pk: int
    id: str | None
    name: str | None
    email: str | None
    fingerprint: str | None
    stripe_id: str | None
    metadata: dict[str, Any]
    send_email_receipts: bool
    billing_controls: dict[str, Any]
    config: dict[str, Any]
    clock_offset_ms: int
    maintenance_due_at: int | None
    created_at: int


@dataclass
class EntityRow:
    pk: int
    id: str | None
    name: str | None
    feature_id: str | None
    billing_controls: dict[str, Any]
    created_at: int
    customer_pk: int


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def customer_from_row(r: Any) -> CustomerRow:
    return CustomerRow(
        pk=r.pk,
        id=r.id,
        name=r.name,
        email=r.email,
        fingerprint=r.fingerprint,
        stripe_id=r.stripe_id,
        metadata=r.metadata or {},
        send_email_receipts=bool(r.send_email_receipts),
        billing_controls=r.billing_controls or {},
        config=r.config or {},
        clock_offset_ms=int(r.clock_offset_ms or 0),
        maintenance_due_at=r.maintenance_due_at,
        created_at=int(r.created_at),
    )


def entity_from_row(r: Any) -> EntityRow:
    return EntityRow(
        pk=r.pk,
        id=r.id,
        name=r.name,
        feature_id=r.feature_id,
        billing_controls=r.billing_controls or {},
        created_at=int(r.created_at),
        customer_pk=r.customer_pk,
    )


def get_customer(
    conn: Connection, tenant: Tenant, customer_id: str, *, lock: bool = False
) -> CustomerRow | None:
    q = select(customers).where(
        customers.c.org_pk == tenant.org_pk, customers.c.env == tenant.env, customers.c.id == customer_id
    )
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    r = conn.execute(q).first()
    return customer_from_row(r) if r is not None else None


def lock_customer_pk(conn: Connection, customer_pk: int) -> None:
    """Serialize writers of one customer (PostgreSQL); SQLite's BEGIN IMMEDIATE already does."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(customers.c.pk).where(customers.c.pk == customer_pk).with_for_update())


def get_entity(conn: Connection, customer_pk: int, entity_id: str) -> EntityRow | None:
    r = conn.execute(
        select(entities).where(entities.c.customer_pk == customer_pk, entities.c.id == entity_id)
    ).first()
    return entity_from_row(r) if r is not None else None


def list_entities(conn: Connection, customer_pk: int) -> list[EntityRow]:
    rows = conn.execute(select(entities).where(entities.c.customer_pk == customer_pk).order_by(entities.c.pk))
    return [entity_from_row(r) for r in rows]


_SOURCE_COLUMNS = [*balance_sources.c, entities.c.id.label("entity_public_id")]


def source_from_row(r: Any) -> Source:
    return Source(
        pk=r.pk,
        id=r.balance_id or f"cus_ent_{r.pk}",
        feature_id=r.feature_id,
        plan_id=r.plan_id,
        customer_plan_pk=r.customer_plan_pk,
        entity_pk=r.entity_pk,
        entity_id=r.entity_public_id,
        is_flag=bool(r.is_flag),
        allowance=float(r.allowance),
        adjustment=float(r.adjustment),
        prepaid=float(r.prepaid),
        balance=float(r.balance),
        unlimited=bool(r.unlimited),
        usage_allowed=bool(r.usage_allowed),
        max_purchase=None if r.max_purchase is None else float(r.max_purchase),
        interval=r.interval,
        interval_count=int(r.interval_count or 1),
        anchor_at=r.anchor_at,
        next_reset_at=r.next_reset_at,
        expires_at=r.expires_at,
        rollover_config=r.rollover_config,
        price=r.price,
        is_addon=bool(r.is_addon),
        continuous=bool(r.continuous),
        created_at=int(r.created_at),
        rollovers=[Rollover.from_json(x) for x in (r.rollovers or [])],
    )


def load_sources(conn: Connection, customer_pk: int, feature_ids: set[str] | None = None) -> list[Source]:
    q = (
        select(*_SOURCE_COLUMNS)
        .select_from(balance_sources.outerjoin(entities, balance_sources.c.entity_pk == entities.c.pk))
        .where(balance_sources.c.customer_pk == customer_pk)
        .order_by(balance_sources.c.pk)
    )
    if feature_ids is not None:
        q = q.where(balance_sources.c.feature_id.in_(sorted(feature_ids)))
    return [source_from_row(r) for r in conn.execute(q)]


def save_sources(conn: Connection, sources: list[Source]) -> None:
    """Write back every source the engine changed (balance, adjustment, reset state, rollovers)."""
    dirty = [s for s in sources if s.dirty]
    if not dirty:
        return
    from sqlalchemy import bindparam

    stmt = (
        update(balance_sources)
        .where(balance_sources.c.pk == bindparam("b_pk"))
        .values(
            balance=bindparam("b_balance"),
            adjustment=bindparam("b_adjustment"),
            next_reset_at=bindparam("b_next_reset_at"),
            expires_at=bindparam("b_expires_at"),
            allowance=bindparam("b_allowance"),
            rollovers=bindparam("b_rollovers", type_=balance_sources.c.rollovers.type),
        )
    )
    conn.execute(
        stmt,
        [
            {
                "b_pk": s.pk,
                "b_balance": s.balance,
                "b_adjustment": s.adjustment,
                "b_next_reset_at": s.next_reset_at,
                "b_expires_at": s.expires_at,
                "b_allowance": s.allowance,
                "b_rollovers": [r.to_json() for r in s.rollovers],
            }
            for s in dirty
        ],
    )
    for s in dirty:
        s.dirty = False


def insert_source(conn: Connection, values: dict[str, Any]) -> int:
    values = {"rollovers": [], "adjustment": 0.0, **values}
    result = conn.execute(insert(balance_sources).values(**values).returning(balance_sources.c.pk))
    return int(result.scalar_one())


def scoped(sources: list[Source], entity: EntityRow | None) -> list[Source]:
    """The sources a subject sees: the customer's own plus one entity's, or all for the customer."""
    if entity is None:
        return sources
    return [s for s in sources if s.entity_pk is None or s.entity_pk == entity.pk]


def entity_filter(entity_pk: int | None) -> Any:
    return and_(balance_sources.c.entity_pk == entity_pk) if entity_pk is not None else None
