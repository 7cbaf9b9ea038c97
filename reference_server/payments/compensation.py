"""Undoing a processor payment whose billing transaction did not commit.

A charge through Stripe happens inside the billing call's database transaction: the Stripe invoice
is paid first, then the server records the payment and makes the change it paid for.  When that
transaction does not commit (an error later in the same call, a failed ``COMMIT``, a lost database
connection), Stripe holds money the server never recorded.  Money and balances change together or
not at all, so the payment is given back:

1. the processor registers every payment it took with :func:`settle_after_transaction`, which runs
   :func:`settle` once the transaction has ended (:func:`reference_server.store.db.after_transaction`);
2. :func:`settle` proves from the database which way it went: the server invoice is ``paid`` with
   that Stripe invoice as its ``processor_id`` only if the transaction committed.  Otherwise the
   processor reverses the payment (:meth:`Reverser.reverse_payment`: the Stripe invoice is marked,
   its PaymentIntent refunded in full; an unpaid one is voided);
3. a reversal that fails (Stripe unreachable, say) is recorded durably (a row of
   ``idempotency_keys`` in the scope :data:`REFUND_SCOPE`, keyed by the Stripe and server invoice ids,
   the pattern :mod:`reference_server.store.billing_lock` uses) and tried again, with the same
   proof first, after the next payment of the same organization; :func:`refunds_due` lists them.

The refund carries an idempotency key derived from the PaymentIntent, so a retried reversal never
refunds twice.  The local processor collects nothing outside the database and registers nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from reference_server.store.billing_tables import invoices
from reference_server.store.db import after_transaction
from reference_server.store.tables import customers, idempotency_keys

log = logging.getLogger(__name__)

REFUND_SCOPE = "refund_due"
"""``idempotency_keys.scope`` of a reversal still to do (``key``: the processor and server invoice ids)."""


class Reverser(Protocol):
    def reverse_payment(self, processor_invoice_id: str, server_invoice_id: str) -> None:
        """Give back what ``processor_invoice_id`` collected (idempotent); raises when it could not."""


@dataclass(frozen=True)
class TakenPayment:
    """A payment taken on the processor during a billing transaction."""

    org_pk: int
    env: str
    server_invoice_id: str
    processor_invoice_id: str


def recorded(conn: Connection, payment: TakenPayment) -> bool:
    """Whether the server recorded ``payment``: its invoice is paid with that processor invoice."""
    row = conn.execute(
        select(invoices.c.status, invoices.c.processor_id).where(invoices.c.id == payment.server_invoice_id)
    ).first()
    return row is not None and row.status == "paid" and row.processor_id == payment.processor_invoice_id


def _locked(conn: Connection, payment: TakenPayment) -> bool:
    """:func:`recorded`, holding the invoice row (PostgreSQL) so no billing call records it meanwhile;
    SQLite's write transaction holds the whole database already."""
    query = select(invoices.c.status, invoices.c.processor_id).where(
        invoices.c.id == payment.server_invoice_id
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return row is not None and row.status == "paid" and row.processor_id == payment.processor_invoice_id


def _key(payment: TakenPayment) -> str:
    return f"{payment.processor_invoice_id} {payment.server_invoice_id}"


def _remember(conn: Connection, payment: TakenPayment) -> None:
    try:
        with conn.begin_nested():
            conn.execute(
                insert(idempotency_keys).values(
                    org_pk=payment.org_pk,
                    env=payment.env,
                    scope=REFUND_SCOPE,
                    key=_key(payment),
                    created_at=int(time.time() * 1000),
                )
            )
    except IntegrityError:
        pass  # already due


def _forget(conn: Connection, payment: TakenPayment) -> None:
    conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.org_pk == payment.org_pk,
            idempotency_keys.c.env == payment.env,
            idempotency_keys.c.scope == REFUND_SCOPE,
            idempotency_keys.c.key == _key(payment),
        )
    )


def settle(engine: Engine, reverser: Reverser, payment: TakenPayment, kept: bool = False) -> str:
    """After the transaction: ``recorded``, ``refunded``, or ``refund_due`` (the reversal failed and
    is kept for a retry); ``kept``: the payment is one of :func:`refunds_due`."""
    if not kept:  # the usual case, a committed payment: a plain read proves it
        reader = engine.connect().execution_options(sqlite_begin="DEFERRED")
        with reader, reader.begin():
            if recorded(reader, payment):
                return "recorded"
    with engine.begin() as conn:
        if _locked(conn, payment):
            _forget(conn, payment)
            return "recorded"
        try:
            reverser.reverse_payment(payment.processor_invoice_id, payment.server_invoice_id)
        except Exception:
            log.exception("reversing %s failed; kept for a retry", payment.processor_invoice_id)
            _remember(conn, payment)
            return "refund_due"
        _forget(conn, payment)
        return "refunded"


def refunds_due(conn: Connection, org_pk: int, env: str) -> list[TakenPayment]:
    rows = conn.execute(
        select(idempotency_keys.c.key).where(
            idempotency_keys.c.org_pk == org_pk,
            idempotency_keys.c.env == env,
            idempotency_keys.c.scope == REFUND_SCOPE,
        )
    ).scalars()
    out: list[TakenPayment] = []
    for key in rows:
        processor_id, _, server_id = str(key).partition(" ")
        out.append(TakenPayment(org_pk, env, server_id, processor_id))
    return out


def retry_refunds(engine: Engine, reverser: Reverser, org_pk: int, env: str) -> list[str]:
    """Try the reversals still due for the organization again (each proven first, as in :func:`settle`)."""
    with engine.connect() as conn, conn.begin():
        due = refunds_due(conn, org_pk, env)
    return [settle(engine, reverser, payment, kept=True) for payment in due]


def settle_after_transaction(
    conn: Connection, reverser: Reverser, customer_pk: int, server_invoice_id: str, processor_invoice_id: str
) -> None:
    """Register a payment just taken: once ``conn``'s transaction has ended it is proven recorded or
    reversed, and reversals still due for the organization are retried."""
    owner = conn.execute(
        select(customers.c.org_pk, customers.c.env).where(customers.c.pk == customer_pk)
    ).one()
    payment = TakenPayment(int(owner.org_pk), str(owner.env), server_invoice_id, processor_invoice_id)
    engine = conn.engine

    def run() -> None:
        settle(engine, reverser, payment)
        retry_refunds(engine, reverser, payment.org_pk, payment.env)

    if not after_transaction(conn, run):
        log.warning("payment %s taken outside Database.write: not reconciled", processor_invoice_id)


__all__ = [
    "REFUND_SCOPE",
    "Reverser",
    "TakenPayment",
    "recorded",
    "refunds_due",
    "retry_refunds",
    "settle",
    "settle_after_transaction",
]
