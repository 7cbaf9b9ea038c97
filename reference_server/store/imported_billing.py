"""The statements of ``billing.import`` and ``invoices.insert``: customers and plan instances adopted from
another processor, their invoices upserted, their processor identities (tables in
:mod:`reference_server.store.tables.imports`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from reference_server.engine.plan_controls import ControlsRecord
from reference_server.store.tables.billing import invoices
from reference_server.store.tables.core import (
    balance_sources,
    customer_plans,
    customers,
    entities,
)
from reference_server.store.tables.imports import customer_processor_ids, imported_invoices, imported_plans

IMPORT_REASON = "import"
"""The ``reason`` of an invoice ``invoices.insert`` recorded."""


@dataclass(frozen=True)
class ExistingInvoice:
    pk: int
    stripe_id: str
    org_pk: int
    env: str


def invoices_by_stripe_id(conn: Connection, stripe_ids: Sequence[str]) -> list[ExistingInvoice]:
    """Invoices of any organization whose processor id (or own id, without one) is in ``stripe_ids``."""
    if not stripe_ids:
        return []
    ids = list(stripe_ids)
    rows = conn.execute(
        select(
            invoices.c.pk,
            func.coalesce(invoices.c.processor_id, invoices.c.id).label("stripe_id"),
            customers.c.org_pk,
            customers.c.env,
        )
        .select_from(invoices.join(customers, customers.c.pk == invoices.c.customer_pk))
        .where(
            or_(
                invoices.c.processor_id.in_(ids),
                and_(invoices.c.processor_id.is_(None), invoices.c.id.in_(ids)),
            )
        )
        .order_by(invoices.c.pk)
    ).all()
    return [ExistingInvoice(int(r.pk), str(r.stripe_id), int(r.org_pk), str(r.env)) for r in rows]


def customer_pks_by_id(
    conn: Connection, org_pk: int, env: str, customer_ids: Sequence[str]
) -> dict[str, int]:
    """The customers' pks, their rows locked (PostgreSQL) so concurrent inserts of one customer's
    invoices take turns: the second sees the first's stripe ids and updates them."""
    if not customer_ids:
        return {}
    rows = conn.execute(
        select(customers.c.id, customers.c.pk)
        .where(customers.c.org_pk == org_pk, customers.c.env == env, customers.c.id.in_(sorted(customer_ids)))
        .order_by(customers.c.pk)
        .with_for_update()
    ).all()
    return {str(r.id): int(r.pk) for r in rows}


def entity_exists(conn: Connection, customer_pk: int, entity_id: str) -> bool:
    return (
        conn.execute(
            select(entities.c.pk).where(entities.c.customer_pk == customer_pk, entities.c.id == entity_id)
        ).first()
        is not None
    )


@dataclass(frozen=True)
class InvoiceValues:
    """An invoice ``invoices.insert`` records (amounts in minor units)."""

    id: str
    customer_pk: int
    plan_ids: list[str]
    stripe_id: str
    processor_type: str
    status: str
    total: int
    amount_paid: int | None
    refunded_amount: int
    currency: str
    created_at: int
    hosted_invoice_url: str | None


def upsert_imported_invoice(
    conn: Connection, existing_pk: int | None, values: InvoiceValues, now: int
) -> int:
    """Insert the invoice, or overwrite the one with its stripe id; its pk."""
    row = {
        "customer_pk": values.customer_pk,
        "status": values.status,
        "currency": values.currency,
        "subtotal": values.total,
        "total": values.total,
        "amount_paid": values.amount_paid or 0,
        "plan_ids": list(values.plan_ids),
        "hosted_url": values.hosted_invoice_url,
        "created_at": values.created_at,
    }
    extra = {
        "processor_type": values.processor_type,
        "amount_paid": values.amount_paid,
        "refunded_amount": values.refunded_amount,
        "imported_at": now,
    }
    if existing_pk is None:
        pk = int(
            conn.execute(
                insert(invoices)
                .values(
                    id=values.id,
                    entity_id=None,
                    reason=IMPORT_REASON,
                    credit_applied=0,
                    processor=values.processor_type,
                    processor_id=values.stripe_id,
                    paid_at=values.created_at if values.status == "paid" else None,
                    **row,
                )
                .returning(invoices.c.pk)
            ).scalar_one()
        )
        conn.execute(insert(imported_invoices).values(invoice_pk=pk, **extra))
        return pk
    conn.execute(update(invoices).where(invoices.c.pk == existing_pk).values(**row))
    conn.execute(delete(imported_invoices).where(imported_invoices.c.invoice_pk == existing_pk))
    conn.execute(insert(imported_invoices).values(invoice_pk=existing_pk, **extra))
    return existing_pk


# -- imported plans ----------------------------------------------------------------------------------------


def processor_of_instances(conn: Connection, instance_pks: Sequence[int]) -> dict[int, str | None]:
    """The processor of each imported instance (instances made here are absent: they are Stripe's)."""
    if not instance_pks:
        return {}
    rows = conn.execute(
        select(imported_plans.c.customer_plan_pk, imported_plans.c.processor).where(
            imported_plans.c.customer_plan_pk.in_(list(instance_pks))
        )
    ).all()
    return {int(r.customer_plan_pk): r.processor for r in rows}


def record_imported_plan(
    conn: Connection,
    instance_pk: int,
    processor: str | None,
    status: str,
    subscription_id: str | None,
    schedule_id: str | None,
    anchor: int | None,
    now: int,
) -> None:
    conn.execute(
        insert(imported_plans).values(
            customer_plan_pk=instance_pk,
            processor=processor,
            status=status,
            processor_subscription_id=subscription_id,
            processor_schedule_id=schedule_id,
            billing_cycle_anchor=anchor,
            imported_at=now,
        )
    )


def end_instance(conn: Connection, instance_pk: int, now: int) -> None:
    """Mark a plan instance expired now (its balances are removed by the caller)."""
    conn.execute(
        update(customer_plans)
        .where(customer_plans.c.pk == instance_pk)
        .values(status="expired", canceled_at=now, expires_at=now)
    )


def instance_sources(conn: Connection, instance_pk: int) -> list[Any]:
    return list(
        conn.execute(
            select(balance_sources)
            .where(balance_sources.c.customer_plan_pk == instance_pk, balance_sources.c.is_flag.is_(False))
            .order_by(balance_sources.c.pk)
        ).all()
    )


def set_source_balance(conn: Connection, source_pk: int, balance: float, next_reset_at: int | None) -> None:
    values: dict[str, Any] = {"balance": balance}
    if next_reset_at is not None:
        values["next_reset_at"] = next_reset_at
    conn.execute(update(balance_sources).where(balance_sources.c.pk == source_pk).values(**values))


def processor_identity(conn: Connection, customer_pk: int, processor: str) -> str | None:
    value = conn.execute(
        select(customer_processor_ids.c.external_id).where(
            customer_processor_ids.c.customer_pk == customer_pk,
            customer_processor_ids.c.processor == processor,
        )
    ).scalar()
    return str(value) if value is not None else None


def seed_processor_identity(
    conn: Connection, customer_pk: int, processor: str, external_id: str, now: int
) -> None:
    """Record the customer's id at ``processor`` unless it has one (an existing one is never replaced)."""
    if processor_identity(conn, customer_pk, processor) is None:
        conn.execute(
            insert(customer_processor_ids).values(
                customer_pk=customer_pk, processor=processor, external_id=external_id, created_at=now
            )
        )


def insert_bare_customer(
    conn: Connection,
    org_pk: int,
    env: str,
    customer_id: str,
    values: dict[str, Any],
    billing_controls: ControlsRecord,
    now: int,
) -> int:
    """A customer row with no plan attached (an import brings its own plans, never the defaults)."""
    return int(
        conn.execute(
            insert(customers)
            .values(
                org_pk=org_pk,
                env=env,
                id=customer_id,
                name=values.get("name"),
                email=values.get("email"),
                fingerprint=values.get("fingerprint"),
                stripe_id=values.get("stripe_id"),
                metadata={},
                send_email_receipts=False,
                billing_controls=billing_controls,
                config={},
                clock_offset_ms=0,
                created_at=now,
            )
            .returning(customers.c.pk)
        ).scalar_one()
    )


def update_customer_fields(conn: Connection, customer_pk: int, values: dict[str, Any]) -> None:
    if values:
        conn.execute(update(customers).where(customers.c.pk == customer_pk).values(**values))


def insert_ended_instance(
    conn: Connection, customer_pk: int, plan_pk: int, plan_id: str, quantity: float, started_at: int, now: int
) -> int:
    """A plan instance that ended already (imported as canceled or expired): no balances, no access."""
    return int(
        conn.execute(
            insert(customer_plans)
            .values(
                customer_pk=customer_pk,
                entity_pk=None,
                plan_pk=plan_pk,
                plan_id=plan_id,
                status="expired",
                quantity=quantity,
                started_at=started_at,
                canceled_at=now,
                expires_at=now,
                created_at=now,
            )
            .returning(customer_plans.c.pk)
        ).scalar_one()
    )


def set_started_at(conn: Connection, instance_pk: int, started_at: int) -> None:
    conn.execute(
        update(customer_plans).where(customer_plans.c.pk == instance_pk).values(started_at=started_at)
    )


def mark_canceled(conn: Connection, instance_pk: int, now: int) -> None:
    conn.execute(update(customer_plans).where(customer_plans.c.pk == instance_pk).values(canceled_at=now))


def end_later(conn: Connection, instance_pk: int, canceled_at: int, expires_at: int) -> None:
    """A plan canceled at its processor that runs until ``expires_at`` (maintenance ends it then)."""
    conn.execute(
        update(customer_plans)
        .where(customer_plans.c.pk == instance_pk)
        .values(canceled_at=canceled_at, expires_at=expires_at)
    )
