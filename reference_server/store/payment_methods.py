"""A customer's saved payment methods (cards): the default one, one by pk or processor id, a new one
saved, and how a saved card behaves (the local processor's test outcome)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from reference_server.store.ids import new_id
from reference_server.store.tables.billing import payment_methods


@dataclass(frozen=True)
class PaymentMethodInfo:
    pk: int
    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    behavior: str
    processor_id: str | None

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "card",
            "card": {
                "brand": self.brand,
                "last4": self.last4,
                "exp_month": self.exp_month,
                "exp_year": self.exp_year,
            },
        }


def _pm_from_row(row: Row[Any]) -> PaymentMethodInfo:
    return PaymentMethodInfo(
        row.pk, row.id, row.brand, row.last4, row.exp_month, row.exp_year, row.behavior, row.processor_id
    )


def default_payment_method(conn: Connection, customer_pk: int) -> PaymentMethodInfo | None:
    row = conn.execute(
        select(payment_methods)
        .where(payment_methods.c.customer_pk == customer_pk, payment_methods.c.is_default.is_(True))
        .order_by(payment_methods.c.pk.desc())
        .limit(1)
    ).first()
    return _pm_from_row(row) if row is not None else None


def payment_method_by_pk(conn: Connection, pk: int) -> PaymentMethodInfo | None:
    row = conn.execute(select(payment_methods).where(payment_methods.c.pk == pk)).first()
    return _pm_from_row(row) if row is not None else None


def payment_method_pk_by_processor_id(conn: Connection, customer_pk: int, processor_id: str) -> int | None:
    """The customer's saved card with the processor's payment method id, if saved."""
    existing = conn.execute(
        select(payment_methods.c.pk).where(
            payment_methods.c.customer_pk == customer_pk,
            payment_methods.c.processor_id == processor_id,
        )
    ).scalar()
    return None if existing is None else int(existing)


def store_payment_method(
    conn: Connection,
    customer_pk: int,
    processor: str,
    brand: str,
    last4: str,
    exp_month: int,
    exp_year: int,
    behavior: str,
    now: int,
    processor_id: str | None = None,
    make_default: bool = True,
) -> PaymentMethodInfo:
    if make_default:
        conn.execute(
            update(payment_methods)
            .where(payment_methods.c.customer_pk == customer_pk)
            .values(is_default=False)
        )
    pm_id = new_id("pm")
    pk = conn.execute(
        insert(payment_methods)
        .values(
            id=pm_id,
            customer_pk=customer_pk,
            processor=processor,
            processor_id=processor_id,
            brand=brand,
            last4=last4,
            exp_month=exp_month,
            exp_year=exp_year,
            behavior=behavior,
            is_default=make_default,
            created_at=now,
        )
        .returning(payment_methods.c.pk)
    ).scalar_one()
    return PaymentMethodInfo(pk, pm_id, brand, last4, exp_month, exp_year, behavior, processor_id)


def set_payment_method_behavior(conn: Connection, pm_pk: int, behavior: str, make_default: bool) -> None:
    values: dict[str, Any] = {"behavior": behavior}
    if make_default:
        row = conn.execute(select(payment_methods.c.customer_pk).where(payment_methods.c.pk == pm_pk)).one()
        conn.execute(
            update(payment_methods)
            .where(payment_methods.c.customer_pk == row.customer_pk)
            .values(is_default=False)
        )
        values["is_default"] = True
    conn.execute(update(payment_methods).where(payment_methods.c.pk == pm_pk).values(**values))
