"""Plan instances as stored (``customer_plans`` rows and the balances they own), and the customer's
maintenance schedule (``customers.maintenance_due_at``): the SQL behind ``service.subscriptions``
and ``service.maintenance``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, or_, select, update

from reference_server.store.tables.core import balance_sources, customer_plans, customers, entities, locks


def instance_rows(conn: Connection, customer_pk: int, *, include_expired: bool = False) -> list[Row[Any]]:
    """The customer's plan instances, oldest first (expired ones only when asked)."""
    q = (
        select(customer_plans)
        .where(customer_plans.c.customer_pk == customer_pk)
        .order_by(customer_plans.c.pk)
    )
    if not include_expired:
        q = q.where(customer_plans.c.status != "expired")
    return list(conn.execute(q))


def instance_row(conn: Connection, instance_pk: int) -> Row[Any]:
    return conn.execute(select(customer_plans).where(customer_plans.c.pk == instance_pk)).one()


def set_status(conn: Connection, instance_pk: int, status: str) -> None:
    conn.execute(update(customer_plans).where(customer_plans.c.pk == instance_pk).values(status=status))


def insert_instance(conn: Connection, values: dict[str, Any]) -> int:
    """Insert a plan instance (``values``: its columns); its pk."""
    return int(
        conn.execute(insert(customer_plans).values(**values).returning(customer_plans.c.pk)).scalar_one()
    )


def end_instance(conn: Connection, instance_pk: int, expires_at: int) -> None:
    """Delete the instance's balances and mark it expired at ``expires_at``."""
    conn.execute(delete(balance_sources).where(balance_sources.c.customer_plan_pk == instance_pk))
    conn.execute(
        update(customer_plans)
        .where(customer_plans.c.pk == instance_pk)
        .values(status="expired", expires_at=expires_at)
    )


def entity_count(conn: Connection, customer_pk: int, feature_id: str) -> int:
    """How many entities of ``feature_id`` the customer has (the seats in use)."""
    count: int = conn.execute(
        select(func.count())
        .select_from(entities)
        .where(entities.c.customer_pk == customer_pk, entities.c.feature_id == feature_id)
    ).scalar_one()
    return count


# ----------------------------------------------------------------- maintenance schedule


def schedule_maintenance(conn: Connection, customer_pk: int, at: int) -> None:
    """Bring the customer's maintenance forward to ``at`` (never later than already due)."""
    conn.execute(
        update(customers)
        .where(customers.c.pk == customer_pk)
        .where(or_(customers.c.maintenance_due_at.is_(None), customers.c.maintenance_due_at > at))
        .values(maintenance_due_at=at)
    )


def set_maintenance_due(conn: Connection, customer_pk: int, due: int | None) -> None:
    conn.execute(update(customers).where(customers.c.pk == customer_pk).values(maintenance_due_at=due))


def next_due(conn: Connection, customer_pk: int) -> int | None:
    """When the customer's next transition (expiry, scheduled start, lock expiry, period end, trial
    end) is due; None: nothing is."""
    candidates = [
        conn.execute(
            select(func.min(customer_plans.c.expires_at)).where(
                customer_plans.c.customer_pk == customer_pk, customer_plans.c.status == "active"
            )
        ).scalar(),
        conn.execute(
            select(func.min(customer_plans.c.starts_at)).where(
                customer_plans.c.customer_pk == customer_pk, customer_plans.c.status == "scheduled"
            )
        ).scalar(),
        conn.execute(select(func.min(locks.c.expires_at)).where(locks.c.customer_pk == customer_pk)).scalar(),
        conn.execute(
            select(func.min(customer_plans.c.current_period_end)).where(
                customer_plans.c.customer_pk == customer_pk, customer_plans.c.status == "active"
            )
        ).scalar(),
        # A default plan's trial (attach_defaults) has no billing period until paid billing converts it.
        conn.execute(
            select(func.min(customer_plans.c.trial_ends_at)).where(
                customer_plans.c.customer_pk == customer_pk,
                customer_plans.c.status == "active",
                customer_plans.c.current_period_end.is_(None),
            )
        ).scalar(),
    ]
    present = [int(c) for c in candidates if c is not None]
    return min(present) if present else None
