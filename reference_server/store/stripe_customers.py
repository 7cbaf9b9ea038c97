"""The Stripe customer saved for a server customer (``customers.stripe_id``), by the customer's pk or by
its public id in an organization's environment.

Each runs in the caller's connection and transaction."""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from reference_server.store.tables.core import customers


def customer_stripe_id(conn: Connection, customer_pk: int) -> str | None:
    """The Stripe customer saved for the customer (None while there is none)."""
    saved = conn.execute(select(customers.c.stripe_id).where(customers.c.pk == customer_pk)).scalar()
    return str(saved) if saved else None


def set_customer_stripe_id(conn: Connection, customer_pk: int, stripe_id: str) -> None:
    conn.execute(update(customers).where(customers.c.pk == customer_pk).values(stripe_id=stripe_id))


def stripe_customer_of(conn: Connection, org_pk: int, env: str, customer_id: str) -> str | None:
    """The Stripe customer id saved for the organization's environment's customer (None if none)."""
    saved = conn.execute(
        select(customers.c.stripe_id).where(
            customers.c.org_pk == org_pk, customers.c.env == env, customers.c.id == customer_id
        )
    ).scalar()
    return None if saved is None else str(saved)
