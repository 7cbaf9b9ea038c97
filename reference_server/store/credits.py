"""Customer credit (``credit_ledger``): prorated credits added, and spent on later invoices."""

from __future__ import annotations

from sqlalchemy import Connection, func, insert, select

from reference_server.store.tables.billing import credit_ledger


def credit_balance(conn: Connection, customer_pk: int, currency: str) -> int:
    """Customer credit available (minor units) from earlier prorated credits."""
    total = conn.execute(
        select(func.coalesce(func.sum(credit_ledger.c.amount), 0)).where(
            credit_ledger.c.customer_pk == customer_pk, credit_ledger.c.currency == currency
        )
    ).scalar_one()
    return int(total)


def add_credit(
    conn: Connection,
    customer_pk: int,
    currency: str,
    amount: int,
    description: str,
    now: int,
    invoice_pk: int | None,
) -> None:
    """A ledger entry: ``amount`` > 0 adds credit, < 0 spends it (on ``invoice_pk``)."""
    conn.execute(
        insert(credit_ledger).values(
            customer_pk=customer_pk,
            currency=currency,
            amount=amount,
            invoice_pk=invoice_pk,
            description=description,
            created_at=now,
        )
    )
