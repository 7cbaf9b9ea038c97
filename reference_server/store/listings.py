"""Cross-customer pages of balances and plan instances (the official SDK's ``balances.list``,
``subscriptions.list`` and ``purchases.list``), newest customer first, then newest row first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, false, or_, select

from reference_server.store.tables.core import balance_sources, customer_plans, customers, entities
from reference_server.store.tenancy import Tenant

Cursor = tuple[int, int, int]
"""The (customer pk, created_at, pk) of the previous page's last row."""


def _after(
    cursor: Cursor | None,
    customer_col: ColumnElement[Any],
    created_col: ColumnElement[Any],
    pk_col: ColumnElement[Any],
) -> ColumnElement[bool] | None:
    """Rows strictly after ``cursor`` in (customer, created_at, pk) descending order."""
    if cursor is None:
        return None
    c, t, p = cursor
    return or_(
        customer_col < c,
        and_(customer_col == c, or_(created_col < t, and_(created_col == t, pk_col < p))),
    )


def balance_page(
    conn: Connection,
    tenant: Tenant,
    *,
    now: int,
    statuses: set[str],
    customer_pk: int | None,
    entity_pk: int | None,
    plan_filter: bool,
    plan_id: str | None,
    feature_id: str | None,
    cursor: Cursor | None,
    limit: int,
) -> list[Row[Any]]:
    """Up to ``limit + 1`` balance sources (pk, created_at, cpk, cid, eid) after ``cursor``.

    ``statuses`` {"active"} / {"expired"} narrows by expiry against each customer's own clock (``now``
    plus its offset); ``plan_filter`` narrows to ``plan_id``'s sources (None: standalone ones).
    """
    s, c = balance_sources, customers
    # A customer's own test clock moves its "now": expired compares expires_at with it.
    now_col = now + c.c.clock_offset_ms
    expired = and_(s.c.expires_at.is_not(None), s.c.expires_at <= now_col)
    q = (
        select(s.c.pk, s.c.created_at, c.c.pk.label("cpk"), c.c.id.label("cid"), entities.c.id.label("eid"))
        .select_from(s.join(c, s.c.customer_pk == c.c.pk).outerjoin(entities, s.c.entity_pk == entities.c.pk))
        .where(c.c.org_pk == tenant.org_pk, c.c.env == tenant.env, s.c.is_flag.is_(False))
    )
    if statuses == {"active"}:
        q = q.where(~expired)
    elif statuses == {"expired"}:
        q = q.where(expired)
    if customer_pk is not None:
        q = q.where(s.c.customer_pk == customer_pk)
    if entity_pk is not None:
        q = q.where(s.c.entity_pk == entity_pk)
    if plan_filter:
        q = q.where(s.c.customer_plan_pk.is_(None) if plan_id is None else s.c.plan_id == plan_id)
    if feature_id is not None:
        q = q.where(s.c.feature_id == feature_id)
    after = _after(cursor, c.c.pk, s.c.created_at, s.c.pk)
    if after is not None:
        q = q.where(after)
    q = q.order_by(c.c.pk.desc(), s.c.created_at.desc(), s.c.pk.desc()).limit(limit + 1)
    return list(conn.execute(q))


def customer_plan_page(
    conn: Connection,
    tenant: Tenant,
    *,
    db_statuses: list[str],
    one_off_pks: list[int],
    purchases: bool,
    customer_pk: int | None,
    entity_pk: int | None,
    plan_id: str | None,
    cursor: Cursor | None,
    limit: int,
) -> list[Row[Any]]:
    """Up to ``limit + 1`` plan instances (with cpk, cid, eid) after ``cursor``: the one-off ones
    (``one_off_pks``) when ``purchases``, the others otherwise."""
    p, c = customer_plans, customers
    q = (
        select(p, c.c.pk.label("cpk"), c.c.id.label("cid"), entities.c.id.label("eid"))
        .select_from(p.join(c, p.c.customer_pk == c.c.pk).outerjoin(entities, p.c.entity_pk == entities.c.pk))
        .where(c.c.org_pk == tenant.org_pk, c.c.env == tenant.env, p.c.status.in_(db_statuses))
    )
    if purchases:
        q = q.where(p.c.plan_pk.in_(one_off_pks) if one_off_pks else false())
    elif one_off_pks:
        q = q.where(p.c.plan_pk.not_in(one_off_pks))
    if customer_pk is not None:
        q = q.where(p.c.customer_pk == customer_pk)
    if entity_pk is not None:
        q = q.where(p.c.entity_pk == entity_pk)
    if plan_id is not None:
        q = q.where(p.c.plan_id == plan_id)
    after = _after(cursor, c.c.pk, p.c.created_at, p.c.pk)
    if after is not None:
        q = q.where(after)
    q = q.order_by(c.c.pk.desc(), p.c.created_at.desc(), p.c.pk.desc()).limit(limit + 1)
    return list(conn.execute(q))
