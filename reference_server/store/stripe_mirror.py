"""The Stripe subscription mirror's records: each plan instance's Stripe Subscription
(``stripe_subscriptions``), what the mirror reads to compute them, and its follow-ups still to do
(``stripe_followups`` of kind ``sync`` and ``cleanup``).  The tables are in
:mod:`reference_server.store.stripe_objects`.

:mod:`reference_server.processors.stripe.subscription_sync` decides what to write to Stripe and when; every
function here runs in the caller's connection and transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from reference_server.store.plan_records import CustomPlanRecord
from reference_server.store.stripe_objects import stripe_followups, stripe_subscriptions
from reference_server.store.tables.billing import subscription_billing
from reference_server.store.tables.core import customer_plans, customers, entities

# what the mirror reads --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MirroredInstance:
    """An active plan instance as the mirror reads it (:func:`active_instances`): its
    ``customer_plans`` columns the mirror uses and its ``subscription_billing`` state."""

    pk: int
    plan_pk: int
    plan_id: str
    subscription_id: str | None
    entity_pk: int | None
    quantity: float
    canceled_at: int | None
    expires_at: int | None
    trial_ends_at: int | None
    current_period_end: int | None
    prepaid_quantities: dict[str, str]
    """Feature id -> the prepaid quantity bought, a decimal string."""
    custom_plan: CustomPlanRecord | None
    """The customized plan's parts, None when the instance is billed by its plan version."""
    processor_metadata: dict[str, str] | None
    """The caller's keys for the processor's subscription (the attaches' ``metadata``)."""


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def active_instances(conn: Connection, customer_pk: int) -> list[MirroredInstance]:
    """The customer's active plan instances with their billing state, oldest first."""
    rows = conn.execute(
        select(
            customer_plans,
            subscription_billing.c.prepaid_quantities,
            subscription_billing.c.custom_plan,
            subscription_billing.c.processor_metadata,
        )
        .join(subscription_billing, subscription_billing.c.customer_plan_pk == customer_plans.c.pk)
        .where(customer_plans.c.customer_pk == customer_pk, customer_plans.c.status == "active")
        .order_by(customer_plans.c.pk)
    ).all()
    return [
        MirroredInstance(
            pk=int(r.pk),
            plan_pk=int(r.plan_pk),
            plan_id=str(r.plan_id),
            subscription_id=r.subscription_id,
            entity_pk=_optional_int(r.entity_pk),
            quantity=float(r.quantity),
            canceled_at=_optional_int(r.canceled_at),
            expires_at=_optional_int(r.expires_at),
            trial_ends_at=_optional_int(r.trial_ends_at),
            current_period_end=_optional_int(r.current_period_end),
            prepaid_quantities=dict(r.prepaid_quantities or {}),
            custom_plan=r.custom_plan,
            processor_metadata=r.processor_metadata,
        )
        for r in rows
    ]


def entity_id(conn: Connection, entity_pk: int) -> Any:
    """The entity's id (None when it is gone)."""
    return conn.execute(select(entities.c.id).where(entities.c.pk == entity_pk)).scalar()


def customer_row(conn: Connection, customer_pk: int) -> Row[Any] | None:
    return conn.execute(select(customers).where(customers.c.pk == customer_pk)).first()


def customer_exists(conn: Connection, customer_pk: int) -> bool:
    return conn.execute(select(customers.c.pk).where(customers.c.pk == customer_pk)).first() is not None


# stripe_subscriptions ----------------------------------------------------------------------------------


def active_subscriptions(conn: Connection, customer_pk: int, account_key: str) -> list[Row[Any]]:
    """The customer's subscriptions in one Stripe account the server last left active."""
    return list(
        conn.execute(
            select(stripe_subscriptions).where(
                stripe_subscriptions.c.customer_pk == customer_pk,
                stripe_subscriptions.c.account_key == account_key,
                stripe_subscriptions.c.status == "active",
            )
        )
    )


def active_subscription_ids(conn: Connection, customer_pk: int, account_key: str) -> list[str]:
    return [
        str(r)
        for r in conn.execute(
            select(stripe_subscriptions.c.stripe_id).where(
                stripe_subscriptions.c.customer_pk == customer_pk,
                stripe_subscriptions.c.account_key == account_key,
                stripe_subscriptions.c.status == "active",
            )
        ).scalars()
    ]


def mark_subscription_canceled(conn: Connection, row_pk: int, stamp: int) -> None:
    conn.execute(
        update(stripe_subscriptions)
        .where(stripe_subscriptions.c.pk == row_pk)
        .values(status="canceled", updated_at=stamp)
    )


def update_subscription(conn: Connection, row_pk: int, values: dict[str, Any], stamp: int) -> None:
    conn.execute(
        update(stripe_subscriptions)
        .where(stripe_subscriptions.c.pk == row_pk)
        .values(**values, updated_at=stamp)
    )


def insert_subscription(
    conn: Connection, values: dict[str, Any], customer_pk: int, account_key: str, stamp: int
) -> None:
    """A new row; raises ``IntegrityError`` when the account's instance has one already."""
    conn.execute(
        insert(stripe_subscriptions).values(
            **values,
            customer_pk=customer_pk,
            account_key=account_key,
            created_at=stamp,
            updated_at=stamp,
        )
    )


def update_subscription_of_instance(
    conn: Connection, account_key: str, instance_pk: int, values: dict[str, Any], stamp: int
) -> None:
    conn.execute(
        update(stripe_subscriptions)
        .where(
            stripe_subscriptions.c.account_key == account_key,
            stripe_subscriptions.c.customer_plan_pk == instance_pk,
        )
        .values(**values, updated_at=stamp)
    )


# stripe_followups (sync, cleanup) ------------------------------------------------------------------------


def insert_followup(conn: Connection, values: dict[str, Any]) -> int:
    """A new follow-up row (``values``: its columns); its pk."""
    inserted = conn.execute(insert(stripe_followups).values(values)).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def followup_of_customer(conn: Connection, customer_pk: int, kind: str) -> int | None:
    """The pk of the customer's follow-up of ``kind``, if one is there."""
    due = conn.execute(
        select(stripe_followups.c.pk).where(
            stripe_followups.c.customer_pk == customer_pk, stripe_followups.c.kind == kind
        )
    ).first()
    return None if due is None else int(due.pk)


def followup_versions(conn: Connection, customer_pk: int, kind: str) -> list[Row[Any]]:
    """The customer's follow-ups of ``kind``: (``pk``, ``version``)."""
    return list(
        conn.execute(
            select(stripe_followups.c.pk, stripe_followups.c.version).where(
                stripe_followups.c.customer_pk == customer_pk, stripe_followups.c.kind == kind
            )
        )
    )


def bump_followup_version(conn: Connection, row_pk: int) -> None:
    conn.execute(
        update(stripe_followups)
        .where(stripe_followups.c.pk == row_pk)
        .values(version=stripe_followups.c.version + 1)
    )


def delete_customer_followups(conn: Connection, customer_pk: int, kind: str) -> None:
    conn.execute(
        delete(stripe_followups).where(
            stripe_followups.c.customer_pk == customer_pk, stripe_followups.c.kind == kind
        )
    )


def followup_row(conn: Connection, row_pk: int) -> Row[Any] | None:
    return conn.execute(select(stripe_followups).where(stripe_followups.c.pk == row_pk)).first()


def delete_followup(conn: Connection, row_pk: int, version: int | None = None) -> None:
    """Remove a follow-up (with ``version``: only while it still has that version)."""
    query = delete(stripe_followups).where(stripe_followups.c.pk == row_pk)
    if version is not None:
        query = query.where(stripe_followups.c.version == version)
    conn.execute(query)


def followup_attempts(conn: Connection, row_pk: int) -> int | None:
    attempts = conn.execute(
        select(stripe_followups.c.attempts).where(stripe_followups.c.pk == row_pk)
    ).scalar()
    return None if attempts is None else int(attempts)


def update_followup(conn: Connection, row_pk: int, values: dict[str, Any]) -> None:
    conn.execute(update(stripe_followups).where(stripe_followups.c.pk == row_pk).values(**values))


def followups_of_kind(conn: Connection, kind: str) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(stripe_followups).where(stripe_followups.c.kind == kind).order_by(stripe_followups.c.pk)
        )
    )


def claim_followup(conn: Connection, row_pk: int, seen_at: int, until: int) -> bool:
    """Move a follow-up's next attempt to ``until`` if it is still ``seen_at`` (False: taken meanwhile)."""
    taken = conn.execute(
        update(stripe_followups)
        .where(stripe_followups.c.pk == row_pk, stripe_followups.c.next_attempt_at == seen_at)
        .values(next_attempt_at=until)
    )
    return bool(taken.rowcount == 1)


def due_followups(conn: Connection, kinds: Sequence[str], now: int, limit: int) -> list[Row[Any]]:
    """Follow-ups of ``kinds`` due by ``now`` (``pk``, ``kind``, ``customer_pk``, ``next_attempt_at``),
    soonest first."""
    return list(
        conn.execute(
            select(
                stripe_followups.c.pk,
                stripe_followups.c.kind,
                stripe_followups.c.customer_pk,
                stripe_followups.c.next_attempt_at,
            )
            .where(stripe_followups.c.kind.in_(kinds), stripe_followups.c.next_attempt_at <= now)
            .order_by(stripe_followups.c.next_attempt_at)
            .limit(limit)
        )
    )
