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


# ----------------------------------------------------------------- cancellation and schedule phases


def set_canceled_at(conn: Connection, instance_pk: int, canceled_at: int) -> None:
    conn.execute(
        update(customer_plans).where(customer_plans.c.pk == instance_pk).values(canceled_at=canceled_at)
    )


def set_cancellation(
    conn: Connection, instance_pk: int, canceled_at: int | None, expires_at: int | None
) -> None:
    """Set when the instance was cancelled and when it expires (both None: uncancelled)."""
    conn.execute(
        update(customer_plans)
        .where(customer_plans.c.pk == instance_pk)
        .values(canceled_at=canceled_at, expires_at=expires_at)
    )


def end_instances_at(conn: Connection, instance_pks: list[int], expires_at: int, canceled_at: int) -> None:
    """Cancel the instances now (``canceled_at``) to expire at ``expires_at`` (a schedule's next phase)."""
    conn.execute(
        update(customer_plans)
        .where(customer_plans.c.pk.in_(instance_pks))
        .values(expires_at=expires_at, canceled_at=canceled_at)
    )


def subscription_ids(conn: Connection, instance_pks: list[int]) -> dict[int, str | None]:
    """The stored ``subscription_id`` of each instance, by pk."""
    rows = conn.execute(
        select(customer_plans.c.pk, customer_plans.c.subscription_id).where(
            customer_plans.c.pk.in_(instance_pks)
        )
    ).all()
    return {r.pk: r.subscription_id for r in rows}


# ----------------------------------------------------------------- the instance's balances


def continuous_usage_sources(conn: Connection, instance_pk: int) -> list[Row[Any, Any, Any, Any, Any]]:
    """The instance's continuous, non-flag balances (``feature_id``, ``allowance``, ``adjustment``,
    ``prepaid``, ``balance``)."""
    return list(
        conn.execute(
            select(
                balance_sources.c.feature_id,
                balance_sources.c.allowance,
                balance_sources.c.adjustment,
                balance_sources.c.prepaid,
                balance_sources.c.balance,
            ).where(
                balance_sources.c.customer_plan_pk == instance_pk,
                balance_sources.c.continuous.is_(True),
                balance_sources.c.is_flag.is_(False),
            )
        ).all()
    )


def feature_balances(conn: Connection, instance_pk: int) -> list[Row[Any, Any]]:
    """The instance's balances (``feature_id``, ``balance``)."""
    return list(
        conn.execute(
            select(balance_sources.c.feature_id, balance_sources.c.balance).where(
                balance_sources.c.customer_plan_pk == instance_pk
            )
        ).all()
    )


def first_feature_source(
    conn: Connection, instance_pk: int, feature_id: str
) -> Row[Any, Any, Any, Any, Any, Any] | None:
    """The instance's oldest balance of ``feature_id`` (``pk``, ``allowance``, ``adjustment``, ``prepaid``,
    ``balance``, ``continuous``)."""
    return conn.execute(
        select(
            balance_sources.c.pk,
            balance_sources.c.allowance,
            balance_sources.c.adjustment,
            balance_sources.c.prepaid,
            balance_sources.c.balance,
            balance_sources.c.continuous,
        )
        .where(balance_sources.c.customer_plan_pk == instance_pk, balance_sources.c.feature_id == feature_id)
        .order_by(balance_sources.c.pk)
        .limit(1)
    ).first()


def set_prepaid_and_balance(conn: Connection, source_pk: int, prepaid: float, balance: float) -> None:
    conn.execute(
        update(balance_sources)
        .where(balance_sources.c.pk == source_pk)
        .values(prepaid=prepaid, balance=balance)
    )


def consumable_sources(conn: Connection, instance_pk: int, *, oldest_first: bool = False) -> list[Row[Any]]:
    """The instance's consumable (not continuous, not flag) balances, oldest first when asked."""
    q = select(balance_sources).where(
        balance_sources.c.customer_plan_pk == instance_pk,
        balance_sources.c.is_flag.is_(False),
        balance_sources.c.continuous.is_(False),
    )
    if oldest_first:
        q = q.order_by(balance_sources.c.pk)
    return list(conn.execute(q).all())


def set_balance(conn: Connection, source_pk: int, balance: float) -> None:
    conn.execute(update(balance_sources).where(balance_sources.c.pk == source_pk).values(balance=balance))


def update_instance(conn: Connection, instance_pk: int, values: dict[str, Any]) -> None:
    """Set the instance's columns in ``values``."""
    conn.execute(update(customer_plans).where(customer_plans.c.pk == instance_pk).values(**values))


def set_period(conn: Connection, instance_pk: int, start: int | None, end: int | None) -> None:
    conn.execute(
        update(customer_plans)
        .where(customer_plans.c.pk == instance_pk)
        .values(current_period_start=start, current_period_end=end)
    )


def clear_period_end(conn: Connection, instance_pk: int) -> None:
    conn.execute(
        update(customer_plans).where(customer_plans.c.pk == instance_pk).values(current_period_end=None)
    )
