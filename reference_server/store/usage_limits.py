"""Usage-limit windows as stored (one counter per customer, scope and limit): the SQL behind
``service.usage_limits``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from reference_server.store.tables.usage_limits import usage_limit_windows


def insert_window(
    conn: Connection, customer_pk: int, scope_pk: int, limit_key: str, window_start: int, usage: float
) -> None:
    conn.execute(
        insert(usage_limit_windows).values(
            customer_pk=customer_pk,
            scope_pk=scope_pk,
            limit_key=limit_key,
            window_start=window_start,
            usage=usage,
        )
    )


def update_window(conn: Connection, pk: int, window_start: int, usage: float) -> None:
    conn.execute(
        update(usage_limit_windows)
        .where(usage_limit_windows.c.pk == pk)
        .values(window_start=window_start, usage=usage)
    )


def windows_of(
    conn: Connection, customer_pk: int, scope_pks: list[int]
) -> list[Row[Any, Any, Any, Any, Any]]:
    """The customer's windows (pk, scope_pk, limit_key, window_start, usage) in ``scope_pks``."""
    return list(
        conn.execute(
            select(
                usage_limit_windows.c.pk,
                usage_limit_windows.c.scope_pk,
                usage_limit_windows.c.limit_key,
                usage_limit_windows.c.window_start,
                usage_limit_windows.c.usage,
            ).where(
                usage_limit_windows.c.customer_pk == customer_pk,
                usage_limit_windows.c.scope_pk.in_(scope_pks),
            )
        ).all()
    )


def all_windows_of(conn: Connection, customer_pk: int) -> list[Row[Any, Any, Any, Any]]:
    """Every window of the customer (scope_pk, limit_key, window_start, usage)."""
    return list(
        conn.execute(
            select(
                usage_limit_windows.c.scope_pk,
                usage_limit_windows.c.limit_key,
                usage_limit_windows.c.window_start,
                usage_limit_windows.c.usage,
            ).where(usage_limit_windows.c.customer_pk == customer_pk)
        ).all()
    )


def windows_of_customers(
    conn: Connection, customer_pks: Sequence[int]
) -> dict[int, list[Row[Any, Any, Any, Any, Any]]]:
    """Every window of each of the customers (customer_pk, scope_pk, limit_key, window_start, usage),
    in one statement, by customer pk (a customer without windows is absent); none for no customers."""
    if not customer_pks:
        return {}
    out: dict[int, list[Row[Any, Any, Any, Any, Any]]] = {}
    for r in conn.execute(
        select(
            usage_limit_windows.c.customer_pk,
            usage_limit_windows.c.scope_pk,
            usage_limit_windows.c.limit_key,
            usage_limit_windows.c.window_start,
            usage_limit_windows.c.usage,
        ).where(usage_limit_windows.c.customer_pk.in_(sorted(set(customer_pks))))
    ):
        out.setdefault(int(r.customer_pk), []).append(r)
    return out
