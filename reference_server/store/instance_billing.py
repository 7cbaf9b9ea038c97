"""A plan instance's billing state as stored: its ``subscription_billing`` row (anchor, prepaid
quantities, customized plan) and the released paid seats it may reuse (``seat_replaceables``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from reference_server.store.plan_records import CustomPlanRecord
from reference_server.store.tables.billing import seat_replaceables, subscription_billing
from reference_server.store.tables.core import customer_plans


def billing_row(conn: Connection, instance_pk: int) -> Row[Any] | None:
    """The instance's ``subscription_billing`` row (None: it is not billed here)."""
    return conn.execute(
        select(subscription_billing).where(subscription_billing.c.customer_plan_pk == instance_pk)
    ).first()


def stored_prepaid_quantities(conn: Connection, instance_pk: int) -> dict[str, Any] | None:
    """The instance's stored ``prepaid_quantities`` (None: no billing row or none stored)."""
    stored: dict[str, Any] | None = conn.execute(
        select(subscription_billing.c.prepaid_quantities).where(
            subscription_billing.c.customer_plan_pk == instance_pk
        )
    ).scalar_one_or_none()
    return stored


def set_prepaid_quantities(conn: Connection, instance_pk: int, quantities: dict[str, str], now: int) -> None:
    conn.execute(
        update(subscription_billing)
        .where(subscription_billing.c.customer_plan_pk == instance_pk)
        .values(prepaid_quantities=quantities, updated_at=now)
    )


def merge_processor_metadata(conn: Connection, instance_pks: Sequence[int], metadata: dict[str, str]) -> None:
    """Add ``metadata`` (the caller's keys for the processor's subscription) to the instances' billing
    rows, over the keys they already carry."""
    for instance_pk in instance_pks:
        current = conn.execute(
            select(subscription_billing.c.processor_metadata).where(
                subscription_billing.c.customer_plan_pk == instance_pk
            )
        ).scalar_one_or_none()
        conn.execute(
            update(subscription_billing)
            .where(subscription_billing.c.customer_plan_pk == instance_pk)
            .values(processor_metadata={**dict(current or {}), **metadata})
        )


# ----------------------------------------------------------------- reusable released seats


def replaceable_seats(conn: Connection, instance_pk: int, feature_id: str) -> Row[Any, Any] | None:
    """The instance's released paid seats of ``feature_id`` (``units``, ``period_end``), if any."""
    return conn.execute(
        select(seat_replaceables.c.units, seat_replaceables.c.period_end).where(
            seat_replaceables.c.customer_plan_pk == instance_pk,
            seat_replaceables.c.feature_id == feature_id,
        )
    ).first()


def delete_replaceable_seats(conn: Connection, instance_pk: int, feature_id: str) -> None:
    conn.execute(
        delete(seat_replaceables).where(
            seat_replaceables.c.customer_plan_pk == instance_pk,
            seat_replaceables.c.feature_id == feature_id,
        )
    )


def save_replaceable_seats(
    conn: Connection, instance_pk: int, feature_id: str, units: str, period_end: int, now: int
) -> None:
    """Set the instance's released seats of ``feature_id`` (update, else insert)."""
    key = (
        seat_replaceables.c.customer_plan_pk == instance_pk,
        seat_replaceables.c.feature_id == feature_id,
    )
    values = {"units": units, "period_end": period_end, "updated_at": now}
    if conn.execute(update(seat_replaceables).where(*key).values(**values)).rowcount == 0:
        conn.execute(
            insert(seat_replaceables).values(customer_plan_pk=instance_pk, feature_id=feature_id, **values)
        )


def insert_billing_state(
    conn: Connection,
    instance_pk: int,
    anchor: int | None,
    prepaid_quantities: dict[str, str],
    custom_plan: CustomPlanRecord | None,
    now: int,
) -> None:
    """The instance's billing row (not past due)."""
    conn.execute(
        insert(subscription_billing).values(
            customer_plan_pk=instance_pk,
            anchor_at=anchor,
            prepaid_quantities=prepaid_quantities,
            custom_plan=custom_plan,
            past_due=False,
            updated_at=now,
        )
    )


def past_due_flag(conn: Connection, instance_pk: int) -> bool | None:
    """The instance's stored ``past_due`` (None: no billing row)."""
    flag: bool | None = conn.execute(
        select(subscription_billing.c.past_due).where(subscription_billing.c.customer_plan_pk == instance_pk)
    ).scalar()
    return flag


def past_due_instance_pks(conn: Connection, customer_pks: Sequence[int]) -> set[int]:
    """The customers' plan instances with an unpaid renewal (one statement for a whole list page)."""
    if not customer_pks:
        return set()
    rows = conn.execute(
        select(subscription_billing.c.customer_plan_pk)
        .join(customer_plans, customer_plans.c.pk == subscription_billing.c.customer_plan_pk)
        .where(customer_plans.c.customer_pk.in_(customer_pks), subscription_billing.c.past_due.is_(True))
    )
    return {int(r.customer_plan_pk) for r in rows}


def billed_instance_pks(conn: Connection, instance_pks: list[int]) -> set[int]:
    """Those of the instances that have a billing row."""
    rows = conn.execute(
        select(subscription_billing.c.customer_plan_pk).where(
            subscription_billing.c.customer_plan_pk.in_(instance_pks)
        )
    ).scalars()
    return {int(pk) for pk in rows}


def set_anchor_and_past_due(conn: Connection, instance_pk: int, anchor: int, past_due: bool) -> None:
    conn.execute(
        update(subscription_billing)
        .where(subscription_billing.c.customer_plan_pk == instance_pk)
        .values(anchor_at=anchor, past_due=past_due)
    )


def set_past_due(conn: Connection, instance_pk: int, past_due: bool, now: int) -> None:
    conn.execute(
        update(subscription_billing)
        .where(subscription_billing.c.customer_plan_pk == instance_pk)
        .values(past_due=past_due, updated_at=now)
    )


def mark_past_due(conn: Connection, instance_pk: int) -> None:
    """``past_due`` on, ``updated_at`` left as it is."""
    conn.execute(
        update(subscription_billing)
        .where(subscription_billing.c.customer_plan_pk == instance_pk)
        .values(past_due=True)
    )


def clear_past_due(conn: Connection, instance_pks: list[int], now: int) -> None:
    conn.execute(
        update(subscription_billing)
        .where(subscription_billing.c.customer_plan_pk.in_(instance_pks))
        .values(past_due=False, updated_at=now)
    )


def set_billing_group(conn: Connection, instance_pks: Sequence[int], group: str) -> None:
    """The instances renew together from now on (one invoice at each boundary they share)."""
    conn.execute(
        update(subscription_billing)
        .where(subscription_billing.c.customer_plan_pk.in_(list(instance_pks)))
        .values(billing_group=group)
    )


def billing_groups(conn: Connection, instance_pks: Sequence[int]) -> dict[int, str]:
    """The billing group of each of the instances that has one."""
    if not instance_pks:
        return {}
    rows = conn.execute(
        select(subscription_billing.c.customer_plan_pk, subscription_billing.c.billing_group).where(
            subscription_billing.c.customer_plan_pk.in_(list(instance_pks)),
            subscription_billing.c.billing_group.is_not(None),
        )
    )
    return {int(r.customer_plan_pk): str(r.billing_group) for r in rows}
