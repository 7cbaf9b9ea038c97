"""Invoices as ``invoices.list`` and ``invoices.insert`` report them: one page at a time (a cursor on
``created_at`` and ``pk``), with the processor and the amounts paid and refunded (imported or made here);
and a customer's as ``customer.invoices`` lists them.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    func,
    literal,
    or_,
    select,
)

from reference_server.store.invoices import PENDING_REASON
from reference_server.store.tables.billing import INVOICE_REASON, charges, invoices
from reference_server.store.tables.core import (
    customers,
)
from reference_server.store.tables.imports import imported_invoices

DEFAULT_PROCESSOR = "stripe"
"""The processor of an invoice with no import record: every processor here stands in for Stripe."""


@dataclass(frozen=True)
class InvoiceRow:
    """One invoice as ``invoices.list``, ``invoices.insert`` and ``customer.invoices`` report it (amounts
    in minor units)."""

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
    net_terms_days: int | None = None
    due_at: int | None = None


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
            invoices.c.net_terms_days,
            invoices.c.due_at,
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
        net_terms_days=r.net_terms_days,
        due_at=r.due_at,
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
    invoice_id: str | None = None,
    stripe_id: str | None = None,
) -> tuple[list[InvoiceRow], bool]:
    """A page of the org env's invoices, newest first; True when more follow. ``invoice_id`` keeps the
    invoice of that id, ``stripe_id`` the one of that processor id (an invoice of the local processor
    is its own)."""
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
    if invoice_id is not None:
        conds.append(invoices.c.id == invoice_id)
    if stripe_id is not None:
        conds.append(func.coalesce(invoices.c.processor_id, invoices.c.id) == stripe_id)
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


def customer_invoice_rows(conn: Connection, customer_pk: int) -> list[InvoiceRow]:
    """The customer's invoices as ``customer.invoices`` lists them, newest first."""
    query, _ = _invoice_select()
    rows = conn.execute(
        query.where(
            invoices.c.customer_pk == customer_pk,
            # Drafts holding pending lines for the next renewal are not invoices yet; an invoice-mode
            # draft (``invoice_mode.finalize: false``) is, listed as ``draft`` with no page to pay it.
            or_(invoices.c.status != "draft", invoices.c.reason == INVOICE_REASON),
        ).order_by(invoices.c.created_at.desc(), invoices.c.pk.desc())
    ).all()
    return [_invoice_row(r) for r in rows]
