"""The server's records as a payment processor reads and writes them: a customer's Stripe customer id,
a saved card by its processor id, a server session's hosted checkout, an invoice's charge attempts and
reason.

Each runs in the caller's connection and transaction (the billing call's)."""

from __future__ import annotations

from sqlalchemy import Connection, func, select, update

from reference_server.store.tables.billing import billing_sessions, charges, invoices, payment_methods
from reference_server.store.tables.core import customers


def customer_stripe_id(conn: Connection, customer_pk: int) -> str | None:
    """The Stripe customer saved for the customer (None while there is none)."""
    saved = conn.execute(select(customers.c.stripe_id).where(customers.c.pk == customer_pk)).scalar()
    return str(saved) if saved else None


def set_customer_stripe_id(conn: Connection, customer_pk: int, stripe_id: str) -> None:
    conn.execute(update(customers).where(customers.c.pk == customer_pk).values(stripe_id=stripe_id))


def payment_method_pk_by_processor_id(conn: Connection, customer_pk: int, processor_id: str) -> int | None:
    """The customer's saved card with the processor's payment method id, if saved."""
    existing = conn.execute(
        select(payment_methods.c.pk).where(
            payment_methods.c.customer_pk == customer_pk,
            payment_methods.c.processor_id == processor_id,
        )
    ).scalar()
    return None if existing is None else int(existing)


def charge_attempts(conn: Connection, invoice_pk: int) -> int:
    """How many charges the server recorded on the invoice."""
    return int(
        conn.execute(
            select(func.count()).select_from(charges).where(charges.c.invoice_pk == invoice_pk)
        ).scalar_one()
    )


def invoice_reason(conn: Connection, invoice_pk: int) -> str | None:
    reason = conn.execute(select(invoices.c.reason).where(invoices.c.pk == invoice_pk)).scalar()
    return None if reason is None else str(reason)


def session_processor_id(conn: Connection, session_pk: int) -> str | None:
    """The processor's checkout session of a server session (None while it has none)."""
    value = conn.execute(
        select(billing_sessions.c.processor_id).where(billing_sessions.c.pk == session_pk)
    ).scalar()
    return str(value) if value else None
