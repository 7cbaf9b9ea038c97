"""The charges recorded against an invoice: which card paid it."""

from __future__ import annotations

from sqlalchemy import Connection, select

from reference_server.store.tables.billing import charges


def paying_payment_method_pk(conn: Connection, invoice_pk: int) -> int | None:
    """The payment method of the invoice's latest succeeded charge; None when unpaid or paid otherwise."""
    pk = conn.execute(
        select(charges.c.payment_method_pk)
        .where(charges.c.invoice_pk == invoice_pk, charges.c.status == "succeeded")
        .order_by(charges.c.pk.desc())
        .limit(1)
    ).scalar()
    return None if pk is None else int(pk)
