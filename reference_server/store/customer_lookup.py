"""A customer looked up by its row key, as the hosted pages and the dashboard hold it (a session or an
invoice names the customer's pk): the organization and environment owning it, its id and clock offset
(the customer row itself: :func:`reference_server.store.customers.customer_at`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from reference_server.store.tables.core import customers


@dataclass(frozen=True)
class CustomerRef:
    """The customer a processor acts for, or a hosted page shows (from its ``customers`` row)."""

    pk: int
    id: str
    email: str | None = None
    name: str | None = None
    processor_id: str | None = None


@dataclass(frozen=True)
class CustomerOwner:
    """The organization and environment (``sandbox`` or ``live``) a customer belongs to."""

    org_pk: int
    env: str


def customer_owner(conn: Connection, customer_pk: int) -> CustomerOwner:
    row = conn.execute(select(customers.c.org_pk, customers.c.env).where(customers.c.pk == customer_pk)).one()
    return CustomerOwner(int(row.org_pk), str(row.env))


def customer_id_at(conn: Connection, customer_pk: int) -> str:
    """The customer's public id (the customer must exist)."""
    customer_id: str = conn.execute(select(customers.c.id).where(customers.c.pk == customer_pk)).scalar_one()
    return customer_id


def customer_clock_offset(conn: Connection, customer_pk: int) -> int | None:
    """The customer's own test-clock offset in ms (None: none set, or no such customer)."""
    offset: int | None = conn.execute(
        select(customers.c.clock_offset_ms).where(customers.c.pk == customer_pk)
    ).scalar()
    return offset
