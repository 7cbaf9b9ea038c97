"""Tables of imported billing state (revision ``0015_billing_import``) and the SQL that reads them.

``imported_invoices``: what ``invoices.insert`` records beyond the ``invoices`` row it upserts: the
processor that owns the invoice, the amount paid as given (``None`` when the caller did not know it)
and the refunded amount.  An invoice without such a row was made by this server: its processor type
is ``stripe`` (every processor here stands in for Stripe), its refunds are its refund charges.
``imported_plans``: plan instances ``billing.import`` created: the processor that bills them (they
get no ``subscription_billing`` row, so this server never renews or charges them), the processor
objects they were adopted from and the billing anchor.
``customer_processor_ids``: a customer's identity at a processor other than Stripe (RevenueCat's
``app_user_id``); Stripe's stays in ``customers.stripe_id``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from reference_server.store.tables.billing import charges, invoices
from reference_server.store.tables.core import (
    PK,
    balance_sources,
    customer_plans,
    customers,
    entities,
    metadata,
)

imported_invoices = Table(
    "imported_invoices",
    metadata,
    Column("invoice_pk", PK, ForeignKey("invoices.pk", ondelete="CASCADE"), primary_key=True),
    Column("processor_type", String(16), nullable=False),  # stripe | revenuecat
    Column("amount_paid", BigInteger),  # minor units; NULL: not known
    Column("refunded_amount", BigInteger, nullable=False),  # minor units
    Column("imported_at", BigInteger, nullable=False),
)

imported_plans = Table(
    "imported_plans",
    metadata,
    Column("customer_plan_pk", PK, ForeignKey("customer_plans.pk", ondelete="CASCADE"), primary_key=True),
    Column("processor", String(16)),  # stripe | revenuecat | NULL (no processor: a free plan)
    Column("status", String(16), nullable=False),  # the imported status: active | trialing | past_due ...
    Column("processor_subscription_id", String(255)),
    Column("processor_schedule_id", String(255)),
    Column("billing_cycle_anchor", BigInteger),
    Column("imported_at", BigInteger, nullable=False),
)

customer_processor_ids = Table(
    "customer_processor_ids",
    metadata,
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("processor", String(16), nullable=False),
    Column("external_id", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("customer_pk", "processor"),
    Index("ix_customer_processor_ids_processor", "processor", "external_id"),
)

IMPORT_TABLES: tuple[Table, ...] = (imported_invoices, imported_plans, customer_processor_ids)
"""Tables created by migration ``0015_billing_import``."""

DEFAULT_PROCESSOR = "stripe"
PENDING_REASON = "pending"  # drafts holding next-cycle prorations (billing.records): not invoices yet
INVOICE_MODE_REASON = "invoice"  # an invoice-mode draft is an invoice (payments.invoice_mode)
IMPORT_REASON = "import"


# -- invoices ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceRow:
    """One invoice as ``invoices.list`` and ``invoices.insert`` report it (amounts in minor units)."""

    pk: int
    id: str
    customer_id: str | None
    entity_id: str | None
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


def _refunded_subquery() -> Any:
    return (
        select(func.coalesce(func.sum(-charges.c.amount), 0))
        .where(charges.c.invoice_pk == invoices.c.pk, charges.c.amount < 0)
        .scalar_subquery()
    )


def _invoice_select() -> tuple[Any, Any]:
    processor_type = func.coalesce(imported_invoices.c.processor_type, literal(DEFAULT_PROCESSOR))
    return (
        select(
            invoices.c.pk,
            invoices.c.id,
            customers.c.id.label("customer_id"),
            invoices.c.entity_id,
            invoices.c.plan_ids,
            func.coalesce(invoices.c.processor_id, invoices.c.id).label("stripe_id"),
            processor_type.label("processor_type"),
            invoices.c.status,
            invoices.c.total,
            invoices.c.amount_paid,
            imported_invoices.c.invoice_pk.label("imported_pk"),
            imported_invoices.c.amount_paid.label("imported_amount_paid"),
            imported_invoices.c.refunded_amount.label("imported_refunded"),
            _refunded_subquery().label("refunded"),
            invoices.c.currency,
            invoices.c.created_at,
            invoices.c.hosted_url,
        ).select_from(
            invoices.join(customers, customers.c.pk == invoices.c.customer_pk).outerjoin(
                imported_invoices, imported_invoices.c.invoice_pk == invoices.c.pk
            )
        )
    ), processor_type


def _invoice_row(r: Any) -> InvoiceRow:
    imported = r.imported_pk is not None
    return InvoiceRow(
        pk=int(r.pk),
        id=str(r.id),
        customer_id=r.customer_id,
        entity_id=r.entity_id,
        plan_ids=list(r.plan_ids or []),
        stripe_id=str(r.stripe_id),
        processor_type=str(r.processor_type),
        status=str(r.status),
        total=int(r.total),
        amount_paid=(
            (int(r.imported_amount_paid) if r.imported_amount_paid is not None else None)
            if imported
            else int(r.amount_paid)
        ),
        refunded_amount=int(r.imported_refunded) if imported else int(r.refunded or 0),
        currency=str(r.currency),
        created_at=int(r.created_at),
        hosted_invoice_url=r.hosted_url,
    )


def encode_invoice_cursor(created_at: int, pk: int) -> str:
    return base64.urlsafe_b64encode(f"inv:{created_at}:{pk}".encode()).decode().rstrip("=")


def decode_invoice_cursor(cursor: str) -> tuple[int, int] | None:
    """(created_at, pk) of the last invoice of the previous page; None when it is not our cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, created_at, pk = raw.split(":")
        if kind != "inv":
            return None
        return int(created_at), int(pk)
    except (ValueError, UnicodeDecodeError):
        return None


def list_invoice_page(
    conn: Connection,
    org_pk: int,
    env: str,
    *,
    limit: int,
    after: tuple[int, int] | None,
    customer_pk: int | None,
    entity_id: str | None,
    statuses: Sequence[str] | None,
    processor_types: Sequence[str] | None,
) -> tuple[list[InvoiceRow], bool]:
    """A page of the org env's invoices, newest first; True when more follow."""
    query, processor_type = _invoice_select()
    conds: list[Any] = [
        customers.c.org_pk == org_pk,
        customers.c.env == env,
        # Drafts holding pending lines for the next renewal are not invoices yet; an invoice-mode
        # draft (``invoice_mode.finalize: false``) is one.
        or_(
            invoices.c.status != "draft",
            invoices.c.reason.notin_([PENDING_REASON]),
        ),
    ]
    if customer_pk is not None:
        conds.append(invoices.c.customer_pk == customer_pk)
    if entity_id is not None:
        conds.append(invoices.c.entity_id == entity_id)
    if statuses:
        conds.append(invoices.c.status.in_(list(statuses)))
    if processor_types:
        conds.append(processor_type.in_(list(processor_types)))
    if after is not None:
        created_at, pk = after
        conds.append(
            or_(
                invoices.c.created_at < created_at,
                and_(invoices.c.created_at == created_at, invoices.c.pk < pk),
            )
        )
    rows = conn.execute(
        query.where(*conds).order_by(invoices.c.created_at.desc(), invoices.c.pk.desc()).limit(limit + 1)
    ).all()
    return [_invoice_row(r) for r in rows[:limit]], len(rows) > limit


def invoice_rows_by_pk(conn: Connection, pks: Sequence[int]) -> dict[int, InvoiceRow]:
    if not pks:
        return {}
    query, _ = _invoice_select()
    return {int(r.pk): _invoice_row(r) for r in conn.execute(query.where(invoices.c.pk.in_(list(pks))))}


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
    billing_controls: dict[str, Any],
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
