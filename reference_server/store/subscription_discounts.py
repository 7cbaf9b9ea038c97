"""Coupons applied to subscriptions (``subscription_discounts``): the SQL behind
:mod:`reference_server.billing.discounts`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from reference_server.store.stripe_objects import stripe_subscriptions
from reference_server.store.tables.billing import subscription_discounts
from reference_server.store.tables.core import customer_plans


@dataclass(frozen=True)
class AppliedDiscount:
    """One coupon on one subscription (a plan instance), as stored."""

    pk: int
    customer_plan_pk: int
    reward_id: str
    name: str
    type: str
    value: str
    plan_ids: tuple[str, ...] | None
    currency: str
    duration_type: str
    duration_length: int | None
    periods_left: int | None
    credit_left: int | None
    total_discount: int
    started_at: int
    ended_at: int | None
    subscription_id: str | None = None
    """The instance's Stripe subscription (the mirror's), when it has one (only :func:`customer_discounts`
    reads it)."""


def _record(row: Any, subscription_id: str | None = None) -> AppliedDiscount:
    return AppliedDiscount(
        pk=int(row.pk),
        customer_plan_pk=int(row.customer_plan_pk),
        reward_id=str(row.reward_id),
        name=str(row.name),
        type=str(row.type),
        value=str(row.value),
        plan_ids=tuple(row.plan_ids) if row.plan_ids is not None else None,
        currency=str(row.currency),
        duration_type=str(row.duration_type),
        duration_length=row.duration_length,
        periods_left=row.periods_left,
        credit_left=None if row.credit_left is None else int(row.credit_left),
        total_discount=int(row.total_discount),
        started_at=int(row.started_at),
        ended_at=None if row.ended_at is None else int(row.ended_at),
        subscription_id=subscription_id,
    )


def add_discount(conn: Connection, customer_pk: int, customer_plan_pk: int, values: dict[str, Any]) -> int:
    """Record a coupon on the instance; ``values`` are the other columns."""
    pk: int = conn.execute(
        insert(subscription_discounts)
        .values(customer_pk=customer_pk, customer_plan_pk=customer_plan_pk, **values)
        .returning(subscription_discounts.c.pk)
    ).scalar_one()
    return pk


def discounts_of(conn: Connection, customer_plan_pk: int) -> list[AppliedDiscount]:
    """The instance's coupons still in force, in the order they were applied."""
    rows = conn.execute(
        select(subscription_discounts)
        .where(
            subscription_discounts.c.customer_plan_pk == customer_plan_pk,
            subscription_discounts.c.ended_at.is_(None),
        )
        .order_by(subscription_discounts.c.pk)
    ).all()
    return [_record(row) for row in rows]


def record_use(
    conn: Connection,
    pk: int,
    *,
    amount: int,
    periods_left: int | None,
    credit_left: int | None,
    ended_at: int | None,
    customer_plan_pk: int | None = None,
) -> None:
    """One invoice's use of a coupon: ``amount`` more taken off, what is left of it, its end; and the
    instance it moves to (``customer_plan_pk``: a change that replaces the instance keeps its coupons)."""
    values: dict[str, Any] = {
        "total_discount": subscription_discounts.c.total_discount + amount,
        "periods_left": periods_left,
        "credit_left": credit_left,
        "ended_at": ended_at,
    }
    if customer_plan_pk is not None:
        values["customer_plan_pk"] = customer_plan_pk
    conn.execute(update(subscription_discounts).where(subscription_discounts.c.pk == pk).values(**values))


def end_discount(conn: Connection, pk: int, at: int) -> None:
    """The coupon is removed from its subscription (``remove_discounts``): no longer in force from ``at``."""
    conn.execute(update(subscription_discounts).where(subscription_discounts.c.pk == pk).values(ended_at=at))


def move_discounts(conn: Connection, from_pk: int, to_pk: int) -> None:
    """The coupons in force on instance ``from_pk`` go on ``to_pk`` (the plan that follows it)."""
    conn.execute(
        update(subscription_discounts)
        .where(
            subscription_discounts.c.customer_plan_pk == from_pk,
            subscription_discounts.c.ended_at.is_(None),
        )
        .values(customer_plan_pk=to_pk)
    )


def customer_discounts(conn: Connection, customer_pk: int) -> list[AppliedDiscount]:
    """The customer's coupons in force on its active or scheduled instances, oldest first."""
    rows = conn.execute(
        select(subscription_discounts, stripe_subscriptions.c.stripe_id.label("processor_subscription_id"))
        .join(customer_plans, customer_plans.c.pk == subscription_discounts.c.customer_plan_pk)
        .outerjoin(
            stripe_subscriptions,
            (stripe_subscriptions.c.customer_plan_pk == subscription_discounts.c.customer_plan_pk)
            & (stripe_subscriptions.c.status == "active"),
        )
        .where(
            subscription_discounts.c.customer_pk == customer_pk,
            subscription_discounts.c.ended_at.is_(None),
            customer_plans.c.status.in_(("active", "scheduled")),
        )
        .order_by(subscription_discounts.c.pk)
    ).all()
    seen: dict[int, AppliedDiscount] = {}  # (one row each, should an instance have two Stripe accounts)
    for row in rows:
        seen.setdefault(int(row.pk), _record(row, row.processor_subscription_id))
    return list(seen.values())
