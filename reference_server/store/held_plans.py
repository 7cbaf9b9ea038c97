"""The plans a customer holds itself (not through an entity), with each plan's name and price: what the
customer portal lists and offers to switch between."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from reference_server.store.plan_records import BasePriceRecord
from reference_server.store.tables.billing import subscription_billing
from reference_server.store.tables.core import customer_plans, plans


@dataclass(frozen=True)
class HeldPlan:
    """One active or scheduled plan instance of the customer, joined with its plan version."""

    plan_id: str
    status: str
    canceled_at: int | None
    expires_at: int | None
    current_period_end: int | None
    trial_ends_at: int | None
    starts_at: int | None
    started_at: int
    current_period_start: int | None
    name: str
    price: BasePriceRecord | None
    add_on: bool
    past_due: bool | None  # None without a billing row


def held_plans(conn: Connection, customer_pk: int) -> list[HeldPlan]:
    """The customer's active and scheduled plans, oldest first."""
    rows = conn.execute(
        select(
            customer_plans.c.plan_id,
            customer_plans.c.status,
            customer_plans.c.canceled_at,
            customer_plans.c.expires_at,
            customer_plans.c.current_period_end,
            customer_plans.c.trial_ends_at,
            customer_plans.c.starts_at,
            customer_plans.c.started_at,
            customer_plans.c.current_period_start,
            plans.c.name,
            plans.c.price,
            plans.c.add_on,
            subscription_billing.c.past_due,
        )
        .select_from(
            customer_plans.join(plans, customer_plans.c.plan_pk == plans.c.pk).outerjoin(
                subscription_billing, subscription_billing.c.customer_plan_pk == customer_plans.c.pk
            )
        )
        .where(
            customer_plans.c.customer_pk == customer_pk,
            customer_plans.c.status.in_(("active", "scheduled")),
            customer_plans.c.entity_pk.is_(None),
        )
        .order_by(customer_plans.c.pk)
    ).all()
    return [HeldPlan(**row._mapping) for row in rows]


def active_main_plan_groups(conn: Connection, customer_pk: int) -> set[str]:
    """The groups of the customer's active main (not add-on) plans."""
    return set(
        conn.execute(
            select(plans.c.group)
            .select_from(customer_plans.join(plans, customer_plans.c.plan_pk == plans.c.pk))
            .where(
                customer_plans.c.customer_pk == customer_pk,
                customer_plans.c.status == "active",
                customer_plans.c.entity_pk.is_(None),
                plans.c.add_on.is_(False),
            )
        ).scalars()
    )
