"""Invoice-mode invoices as stored: a draft opened (finalized) or an unpaid one voided, with its sessions.

Billing (``invoices.finalize``, voids) and the Stripe events (a draft finalized or voided on Stripe's
dashboard) apply the same row changes, so they live here, below both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from reference_server.store.tables.billing import INVOICE_REASON, billing_sessions, invoices
from reference_server.store.tables.core import customers, organizations

HOSTED_URL_KEY = "hosted_url"
"""Key of a draft's checkout session ``action`` holding the page URL the invoice gets once finalized."""


def is_invoice_mode_draft(row: Any) -> bool:
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


def _locked_invoice(conn: Connection, invoice_pk: int) -> Any:
    query = select(invoices).where(invoices.c.pk == invoice_pk)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).one()


def _sessions_of(conn: Connection, invoice_pk: int) -> list[Any]:
    return list(
        conn.execute(
            select(billing_sessions).where(
                billing_sessions.c.invoice_pk == invoice_pk, billing_sessions.c.kind == "checkout"
            )
        ).all()
    )


def finalize_draft(conn: Connection, invoice_pk: int) -> bool:
    """Open an invoice-mode draft: status ``open`` and its hosted page URL set, the page payable from now
    until the invoice is paid or voided.  False when it is not a draft (any more)."""
    row = _locked_invoice(conn, invoice_pk)
    if not is_invoice_mode_draft(row):
        return False
    hosted_url: str | None = None
    for session in _sessions_of(conn, invoice_pk):
        if session.status == "open":
            hosted_url = hosted_url or (dict(session.action or {}).get(HOSTED_URL_KEY))
    conn.execute(
        update(invoices).where(invoices.c.pk == invoice_pk).values(status="open", hosted_url=hosted_url)
    )
    return True


def void_unpaid(conn: Connection, invoice_pk: int, now: int) -> bool:
    """An invoice-mode invoice voided (or its draft deleted) on the processor: void here too, and its
    hosted page can no longer pay it (a plan waiting for the payment never starts).  False when it is
    not a draft or open invoice-mode invoice."""
    row = _locked_invoice(conn, invoice_pk)
    if row.reason != INVOICE_REASON or row.status not in ("draft", "open"):
        return False
    conn.execute(update(invoices).where(invoices.c.pk == invoice_pk).values(status="void", hosted_url=None))
    customer_now = _customer_now(conn, int(row.customer_pk), now)
    for session in _sessions_of(conn, invoice_pk):
        if session.status in ("open", "requires_action", "expired"):
            conn.execute(
                update(billing_sessions)
                .where(billing_sessions.c.pk == session.pk)
                .values(
                    status="expired",
                    pending_payment_method_pk=None,
                    expires_at=min(int(session.expires_at), customer_now),
                )
            )
    return True


__all__ = ["HOSTED_URL_KEY", "finalize_draft", "is_invoice_mode_draft", "void_unpaid"]
