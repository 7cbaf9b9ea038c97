"""Lines kept for a plan's next renewal invoice (Stripe's pending invoice items, ``*_next_cycle``
prorations).

They wait as a ``draft`` invoice (reason :data:`PENDING_REASON`) of the plan until
:func:`take_pending_lines` moves them onto the renewal or final invoice of that plan, or
:func:`carry_pending_lines` hands them to the plan that replaced it without billing (``no_billing_changes``).
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, select, update

from reference_server.engine.billing.invoice import InvoiceDraft, LineItem
from reference_server.store.invoice_lines import line_items_of
from reference_server.store.invoices import (
    PENDING_REASON,
    InvoiceRecord,
    create_invoice,
    invoice_record,
    set_invoice_status,
)
from reference_server.store.tables.billing import invoice_lines, invoices


def add_pending_lines(
    conn: Connection,
    customer_pk: int,
    draft: InvoiceDraft,
    processor: str,
    now: int,
    base_url: str,
    entity_id: str | None = None,
) -> InvoiceRecord | None:
    """Keep the draft's lines for the next renewal of their plan (None: the draft has none)."""
    if not draft.lines:
        return None
    invoice = create_invoice(conn, customer_pk, draft, PENDING_REASON, processor, now, base_url, entity_id)
    set_invoice_status(conn, invoice.pk, "draft")
    return invoice_record(conn, invoice.pk)


def pending_lines(
    conn: Connection, customer_pk: int, plan_id: str, entity_id: str | None = None
) -> tuple[LineItem, ...]:
    """The pending lines of ``plan_id`` (in this scope), left where they are (previews, quotes)."""
    return _pending(conn, customer_pk, plan_id, entity_id, take=False)


def take_pending_lines(
    conn: Connection, customer_pk: int, plan_id: str, entity_id: str | None = None
) -> tuple[LineItem, ...]:
    """The pending lines of ``plan_id`` (in this scope), removed from the drafts that held them."""
    return _pending(conn, customer_pk, plan_id, entity_id, take=True)


def carry_pending_lines(
    conn: Connection, customer_pk: int, from_plan_id: str, to_plan_id: str, entity_id: str | None = None
) -> int:
    """Hand the pending lines of ``from_plan_id`` (in this scope) to ``to_plan_id``: the next renewal of
    ``to_plan_id`` takes them (the lines still name the plan they are for).  The number of drafts moved."""
    pks = _drafts(conn, customer_pk, from_plan_id, entity_id)
    if pks:
        conn.execute(update(invoices).where(invoices.c.pk.in_(pks)).values(plan_ids=[to_plan_id]))
    return len(pks)


def _drafts(conn: Connection, customer_pk: int, plan_id: str, entity_id: str | None) -> list[int]:
    """The pending-lines drafts of ``plan_id`` in this scope, oldest first."""
    scope = invoices.c.entity_id.is_(None) if entity_id is None else invoices.c.entity_id == entity_id
    rows = conn.execute(
        select(invoices.c.pk, invoices.c.plan_ids)
        .where(
            invoices.c.customer_pk == customer_pk,
            invoices.c.status == "draft",
            invoices.c.reason == PENDING_REASON,
            scope,
        )
        .order_by(invoices.c.pk)
    ).all()
    return [r.pk for r in rows if list(r.plan_ids or []) == [plan_id]]


def _pending(
    conn: Connection, customer_pk: int, plan_id: str, entity_id: str | None, take: bool
) -> tuple[LineItem, ...]:
    pks = _drafts(conn, customer_pk, plan_id, entity_id)
    if not pks:
        return ()
    lines = tuple(line for pk in pks for line in line_items_of(conn, pk))
    if not take:
        return lines
    conn.execute(delete(invoice_lines).where(invoice_lines.c.invoice_pk.in_(pks)))
    conn.execute(delete(invoices).where(invoices.c.pk.in_(pks)))
    return lines
