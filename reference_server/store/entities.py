"""Entities as stored (a customer's seats, workspaces, ...): the writes and lists behind
``service.entities`` and ``service.license_ops``; reading one entity is :mod:`.subjects`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, delete, insert, or_, select, update

from reference_server.engine.plan_controls import ControlsRecord
from reference_server.store.subjects import EntityRow, entity_from_row
from reference_server.store.tables.core import customer_plans, customers, entities
from reference_server.store.tenancy import Tenant


def insert_entity(
    conn: Connection,
    customer_pk: int,
    *,
    entity_id: str | None,
    name: str | None,
    feature_id: str,
    billing_controls: ControlsRecord,
    created_at: int,
) -> EntityRow:
    """Insert an entity of the customer and read it back."""
    pk = conn.execute(
        insert(entities)
        .values(
            customer_pk=customer_pk,
            id=entity_id,
            name=name,
            feature_id=feature_id,
            billing_controls=billing_controls,
            created_at=created_at,
        )
        .returning(entities.c.pk)
    ).scalar_one()
    return entity_from_row(conn.execute(select(entities).where(entities.c.pk == pk)).one())


def entity_with_owner(conn: Connection, tenant: Tenant, entity_id: str) -> Row[Any] | None:
    """The env's (first) entity ``entity_id`` with its customer's public id as ``cid``."""
    return conn.execute(
        select(entities, customers.c.id.label("cid"))
        .join(customers, customers.c.pk == entities.c.customer_pk)
        .where(
            customers.c.org_pk == tenant.org_pk,
            customers.c.env == tenant.env,
            entities.c.id == entity_id,
        )
        .order_by(entities.c.pk)
    ).first()


def entity_page(
    conn: Connection,
    tenant: Tenant,
    *,
    after_pk: int,
    customer_pk: int | None,
    limit: int,
    search: str | None = None,
    plan_pks: list[list[int]] | None = None,
    subscription_status: str | None = None,
    stripe_only: bool = False,
) -> list[Row[Any]]:
    """Up to ``limit + 1`` of the env's entities (with their customer's ``cid``) after ``after_pk``,
    oldest first; only the customer's when given.

    ``search``: in the entity's id or name; ``plan_pks``: entities holding a plan instance (their own,
    or their customer's own, which they inherit) of any of these lists of plan versions;
    ``subscription_status``: only instances of that status match (else any but expired); ``stripe_only``:
    entities of customers with a Stripe customer.  As ``customers.list`` filters customers."""
    q = (
        select(entities, customers.c.id.label("cid"))
        .join(customers, customers.c.pk == entities.c.customer_pk)
        .where(
            customers.c.org_pk == tenant.org_pk,
            customers.c.env == tenant.env,
            entities.c.pk > after_pk,
        )
        .order_by(entities.c.pk)
        .limit(limit + 1)
    )
    if customer_pk is not None:
        q = q.where(entities.c.customer_pk == customer_pk)
    if search:
        pattern = f"%{search}%"
        q = q.where(or_(entities.c.id.ilike(pattern), entities.c.name.ilike(pattern)))
    if plan_pks or subscription_status:
        held = and_(
            customer_plans.c.customer_pk == entities.c.customer_pk,
            or_(customer_plans.c.entity_pk == entities.c.pk, customer_plans.c.entity_pk.is_(None)),
            customer_plans.c.status != "expired",
        )
        if subscription_status:
            held = and_(held, customer_plans.c.status == subscription_status)
        if plan_pks:
            conds: list[ColumnElement[bool]] = [customer_plans.c.plan_pk.in_(pks) for pks in plan_pks]
            held = and_(held, or_(*conds))
        q = q.where(select(customer_plans.c.pk).where(held).exists())
    if stripe_only:
        q = q.where(customers.c.stripe_id.is_not(None))
    return list(conn.execute(q).all())


def update_entity(conn: Connection, entity_pk: int, values: dict[str, Any]) -> None:
    conn.execute(update(entities).where(entities.c.pk == entity_pk).values(**values))


def delete_entity(conn: Connection, entity_pk: int) -> None:
    conn.execute(delete(entities).where(entities.c.pk == entity_pk))


def entity_billing_controls(conn: Connection, entity_pk: int) -> Row[Any] | None:
    """The entity's ``billing_controls`` column (None: the entity is gone)."""
    return conn.execute(select(entities.c.billing_controls).where(entities.c.pk == entity_pk)).one_or_none()
