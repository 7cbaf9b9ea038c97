"""Refunds due: processor payments (or opened invoices) to give back because their billing transaction
did not commit, and refunds the server recorded (``refund_last_payment``) that the processor has not made
yet, kept as ``stripe_followups`` rows of kind :data:`REFUND_KIND` until done.

:mod:`reference_server.processors.compensation` decides when to reverse; this module reads and writes the
rows, and the server invoice whose existence proves a payment was recorded.  Every function runs in the
caller's connection and transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, delete, insert, select, text, update

from reference_server.store.stripe_objects import stripe_followups
from reference_server.store.tables.billing import invoices

REFUND_KIND = "refund"
"""``stripe_followups.kind`` of a reversal still to do (``key``: the processor and server invoice ids; a
refund the server recorded adds the id of its charge)."""


@dataclass(frozen=True)
class RefundDueRow:
    """One refund due as its row stores it."""

    pk: int
    org_pk: int
    env: str
    key: str
    attempts: int
    next_attempt_at: int
    last_error: str | None


def invoice_exists_after_commits(conn: Connection, server_invoice_id: str) -> bool:
    """Whether the server invoice exists, waiting (PostgreSQL: a share lock on ``invoices``) for every
    transaction that may still write an invoice to end first."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE invoices IN SHARE MODE"))
    exists = conn.execute(select(invoices.c.pk).where(invoices.c.id == server_invoice_id)).first()
    return exists is not None


def _due_where(org_pk: int, env: str, key: str) -> tuple[ColumnElement[bool], ...]:
    return (
        stripe_followups.c.org_pk == org_pk,
        stripe_followups.c.env == env,
        stripe_followups.c.kind == REFUND_KIND,
        stripe_followups.c.key == key,
    )


def refund_still_due(conn: Connection, org_pk: int, env: str, key: str) -> bool:
    """Whether the refund-due row is there, holding it (PostgreSQL) until the transaction ends."""
    query = select(stripe_followups.c.pk).where(*_due_where(org_pk, env, key))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first() is not None


def insert_refund_due(conn: Connection, org_pk: int, env: str, key: str, due: int, error: str | None) -> None:
    """A new refund-due row, first due at ``due``; raises ``IntegrityError`` when the key is there."""
    conn.execute(
        insert(stripe_followups).values(
            org_pk=org_pk,
            env=env,
            kind=REFUND_KIND,
            key=key,
            version=1,
            attempts=0,
            next_attempt_at=due,  # the first retry: a policy's base delay after this
            last_error=error,
            created_at=due,
        )
    )


def delete_refund_due(conn: Connection, org_pk: int, env: str, key: str) -> None:
    conn.execute(delete(stripe_followups).where(*_due_where(org_pk, env, key)))


def refund_keys(conn: Connection, org_pk: int, env: str) -> list[str]:
    """The keys of the organization's environment's refunds due."""
    rows = conn.execute(
        select(stripe_followups.c.key).where(
            stripe_followups.c.org_pk == org_pk,
            stripe_followups.c.env == env,
            stripe_followups.c.kind == REFUND_KIND,
        )
    ).scalars()
    return [str(key) for key in rows]


def all_refunds_due(conn: Connection) -> list[RefundDueRow]:
    """Every organization's refunds due, oldest first."""
    rows = conn.execute(
        select(
            stripe_followups.c.pk,
            stripe_followups.c.org_pk,
            stripe_followups.c.env,
            stripe_followups.c.key,
            stripe_followups.c.attempts,
            stripe_followups.c.next_attempt_at,
            stripe_followups.c.last_error,
        )
        .where(stripe_followups.c.kind == REFUND_KIND)
        .order_by(stripe_followups.c.pk)
    )
    return [
        RefundDueRow(
            int(r.pk),
            int(r.org_pk),
            str(r.env),
            str(r.key),
            int(r.attempts),
            int(r.next_attempt_at),
            None if r.last_error is None else str(r.last_error),
        )
        for r in rows
    ]


def record_refund_retry(
    conn: Connection,
    org_pk: int,
    env: str,
    key: str,
    attempts: int,
    next_attempt_at: int,
    last_error: str | None,
) -> None:
    conn.execute(
        update(stripe_followups)
        .where(*_due_where(org_pk, env, key))
        .values(attempts=attempts, next_attempt_at=next_attempt_at, last_error=last_error)
    )
