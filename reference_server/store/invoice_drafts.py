"""Invoice-mode invoices as stored: a draft opened (finalized) or an unpaid one voided, with its sessions.

Billing (``invoices.finalize``, voids) and the Stripe events (a draft finalized or voided on Stripe's
dashboard) apply the same row changes, so they live here, below both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from reference_server.store.billing_sessions import checkout_sessions_of, update_session
from reference_server.store.invoices import DAY_MS, InvoiceRecord, locked_invoice
from reference_server.store.tables.billing import INVOICE_REASON, invoices
from reference_server.store.tables.core import customers, organizations

HOSTED_URL_KEY = "hosted_url"
"""Key of a draft's checkout session ``action`` holding the page URL the invoice gets once finalized."""


def is_invoice_mode_draft(row: InvoiceRecord | None) -> bool:
    """An invoice-mode invoice still a draft (not finalized yet)."""
    return bool(row is not None and row.status == "draft" and row.reason == INVOICE_REASON)


def _customer_now(conn: Connection, customer_pk: int, now: int) -> int:
    """``now`` (the server's clock) as the customer's test clock sees it (the sessions' time)."""
    row = conn.execute(
        select(
            customers.c.env,
            customers.c.clock_offset_ms,
            organizations.c.sandbox_clock_offset_ms,
            organizations.c.live_clock_offset_ms,
        )
        .join(organizations, organizations.c.pk == customers.c.org_pk)
        .where(customers.c.pk == customer_pk)
    ).one()
    org_offset = row.sandbox_clock_offset_ms if row.env == "sandbox" else row.live_clock_offset_ms
    return now + int(org_offset or 0) + int(row.clock_offset_ms or 0)


def finalize_draft(conn: Connection, invoice_pk: int, now: int) -> bool:
    """Open an invoice-mode draft: status ``open`` and its hosted page URL set, the page payable from now
    (``now``: the server's clock) until the invoice is paid or voided, due its net terms from now (as
    Stripe dates a ``send_invoice`` invoice's ``due_date`` from its finalization).  False when it is not
    a draft (any more)."""
    row = locked_invoice(conn, invoice_pk)
    if not is_invoice_mode_draft(row):
        return False
    hosted_url: str | None = None
    for session in checkout_sessions_of(conn, invoice_pk):
        if session.status == "open":
            hosted_url = hosted_url or session.action.get(HOSTED_URL_KEY)
    values: dict[str, Any] = {"status": "open", "hosted_url": hosted_url}
    if row.net_terms_days is not None:
        values["due_at"] = _customer_now(conn, row.customer_pk, now) + row.net_terms_days * DAY_MS
    conn.execute(update(invoices).where(invoices.c.pk == invoice_pk).values(**values))
    return True


def void_unpaid(conn: Connection, invoice_pk: int, now: int) -> bool:
    """An invoice-mode invoice voided (or its draft deleted) on the processor: void here too, and its
    hosted page can no longer pay it (a plan waiting for the payment never starts).  False when it is
    not a draft or open invoice-mode invoice."""
    row = locked_invoice(conn, invoice_pk)
    if row.reason != INVOICE_REASON or row.status not in ("draft", "open"):
        return False
    conn.execute(update(invoices).where(invoices.c.pk == invoice_pk).values(status="void", hosted_url=None))
    customer_now = _customer_now(conn, row.customer_pk, now)
    for session in checkout_sessions_of(conn, invoice_pk):
        if session.status in ("open", "requires_action", "expired"):
            update_session(
                conn,
                session.pk,
                status="expired",
                pending_payment_method_pk=None,
                expires_at=min(session.expires_at, customer_now),
            )
    return True


__all__ = ["HOSTED_URL_KEY", "finalize_draft", "is_invoice_mode_draft", "void_unpaid"]
