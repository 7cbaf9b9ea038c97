"""``customer.invoices`` for ``expand: ["invoices"]``: the invoices billing made or imported."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from reference_server.store.invoices import listed_invoices, net_terms_json
from reference_server.store.subjects import CustomerRow


def list_invoices(conn: Connection, customer: CustomerRow) -> list[dict[str, Any]]:
    """``customer.invoices`` for ``expand: ["invoices"]``."""
    from reference_server.engine.billing.money import minor_to_json

    return [
        {
            "plan_ids": list(r.plan_ids),
            "stripe_id": r.processor_id or r.id,
            "processor_type": processor_type or "stripe",  # invoices.insert may record RevenueCat's
            "status": r.status,
            "total": minor_to_json(r.total, r.currency),
            "currency": r.currency,
            "created_at": r.created_at,
            "hosted_invoice_url": r.hosted_url,
            **net_terms_json(r.net_terms_days, r.due_at),
        }
        for r, processor_type in listed_invoices(conn, customer.pk)
    ]
