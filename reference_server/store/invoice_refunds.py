"""Refunds of paid invoices the server decides on (``refund_last_payment`` of ``billing.update``): the
invoice a plan was last billed on, what is left to refund of it, and the refund itself, recorded as a
negative ``charges`` row on that invoice (``status`` ``refunded``), which is what ``invoices.list``
sums into ``refunded_amount``.  Every function runs in the caller's connection and transaction.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from reference_server.store.invoices import (
    PENDING_REASON,
    InvoiceRecord,
    invoice_record,
    paying_payment_method_pk,
    record_charge,
)
from reference_server.store.tables.billing import charges, invoices
from reference_server.store.tables.imports import imported_invoices

REFUNDED = "refunded"
"""``charges.status`` of a refund (its ``amount`` is negative)."""


def latest_plan_invoice(
    conn: Connection, customer_pk: int, plan_id: str, entity_id: str | None
) -> InvoiceRecord | None:
    """The newest invoice that billed ``plan_id`` for the customer (or its entity ``entity_id``), as a
    processor's subscription names its latest invoice: made by this server (an imported one records
    another system's payment), neither a draft holding pending lines nor a voided attempt."""
    imported = select(imported_invoices.c.invoice_pk).where(imported_invoices.c.invoice_pk == invoices.c.pk)
    scope = invoices.c.entity_id.is_(None) if entity_id is None else invoices.c.entity_id == entity_id
    rows = conn.execute(
        select(invoices.c.pk, invoices.c.plan_ids)
        .where(
            invoices.c.customer_pk == customer_pk,
            scope,
            invoices.c.reason != PENDING_REASON,
            invoices.c.status.notin_(("draft", "void")),
            ~imported.exists(),
        )
        .order_by(invoices.c.created_at.desc(), invoices.c.pk.desc())
    )
    for row in rows:
        if plan_id in (row.plan_ids or ()):
            return invoice_record(conn, int(row.pk))
    return None


def refunded_total(conn: Connection, invoice_pk: int) -> int:
    """Minor units already refunded of the invoice."""
    total = conn.execute(
        select(func.coalesce(func.sum(-charges.c.amount), 0)).where(
            charges.c.invoice_pk == invoice_pk, charges.c.amount < 0
        )
    ).scalar_one()
    return int(total)


def refundable(conn: Connection, invoice: InvoiceRecord) -> int:
    """What can still be refunded of the invoice: what the card paid of a paid invoice (customer credit
    spent on it is not money to give back) less what was refunded already; 0 for an unpaid one."""
    if invoice.status != "paid":
        return 0
    return max(0, invoice.amount_paid - refunded_total(conn, invoice.pk))


def record_refund(conn: Connection, invoice: InvoiceRecord, amount: int, now: int) -> str:
    """Record a refund of ``amount`` minor units of the invoice (to the payment method that paid it);
    returns the refund's charge id."""
    return record_charge(conn, invoice.pk, paying_payment_method_pk(conn, invoice.pk), -amount, REFUNDED, now)


def refund_amount(conn: Connection, refund_id: str, *, lock: bool = False) -> int | None:
    """The amount (minor units) of the refund recorded as charge ``refund_id``; None when there is no such
    refund (its transaction rolled back).  ``lock`` holds the row (PostgreSQL) until the transaction ends."""
    query = select(charges.c.amount).where(
        charges.c.id == refund_id, charges.c.amount < 0, charges.c.status == REFUNDED
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    amount = conn.execute(query).scalar()
    return None if amount is None else -int(amount)
