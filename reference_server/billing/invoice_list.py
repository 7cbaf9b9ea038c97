"""``customer.invoices`` for ``expand: ["invoices"]``: the invoices billing made or imported."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, or_, select

from reference_server.store.subjects import CustomerRow
from reference_server.store.tables.billing import INVOICE_REASON, invoices


def list_invoices(conn: Connection, customer: CustomerRow) -> list[dict[str, Any]]:
    """``customer.invoices`` for ``expand: ["invoices"]``."""
    from reference_server.engine.billing.money import minor_to_json
    from reference_server.store.tables.imports import imported_invoices

    rows = conn.execute(
        select(invoices, imported_invoices.c.processor_type)
        .outerjoin(imported_invoices, imported_invoices.c.invoice_pk == invoices.c.pk)
        # Drafts holding pending lines for the next renewal are not invoices yet; an invoice-mode draft
        # (``invoice_mode.finalize: false``) is, listed as ``draft`` with no page to pay it.
        .where(
            invoices.c.customer_pk == customer.pk,
            or_(invoices.c.status != "draft", invoices.c.reason == INVOICE_REASON),
        )
        .order_by(invoices.c.created_at.desc(), invoices.c.pk.desc())
    ).all()
    return [
        {
            "plan_ids": list(r.plan_ids or []),
            "stripe_id": r.processor_id or r.id,
            "processor_type": r.processor_type or "stripe",  # invoices.insert may record RevenueCat's
            "status": r.status,
            "total": minor_to_json(int(r.total), r.currency),
            "currency": r.currency,
            "created_at": r.created_at,
            "hosted_invoice_url": r.hosted_url,
        }
        for r in rows
    ]
