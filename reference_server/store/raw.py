"""Hot-path statements executed on the DB-API cursor of the current SQLAlchemy transaction.

check and track run a handful of fixed statements per request; building them through SQLAlchemy
Core (coercion, cache keys, result processing) cost more than the database work itself.  These are
the same statements written once as SQL, with ``:name`` parameters rewritten to psycopg's
``%(name)s`` for PostgreSQL.  They run inside the caller's transaction, so atomicity is unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Connection

_PARAM = re.compile(r":([a-zA-Z_][a-zA-Z0-9_]*)")


class Statement:
    """One SQL statement in both parameter styles."""

    def __init__(self, sql: str) -> None:
        self.sqlite = sql
        self.postgres = _PARAM.sub(r"%(\1)s", sql)
        self.names: list[str] | None = None
        """Result column names, remembered after the first fetch (psycopg builds a description
        object per column on every call to ``cursor.description``)."""

    def text(self, conn: Connection) -> str:
        return self.postgres if conn.dialect.name == "postgresql" else self.sqlite


def cursor(conn: Connection) -> Any:
    """The DB-API cursor of the connection's current transaction."""
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def fetch(conn: Connection, stmt: Statement | str, params: dict[str, Any]) -> list[SimpleNamespace]:
    sql = stmt.text(conn) if isinstance(stmt, Statement) else stmt
    cur = cursor(conn)
    try:
        cur.execute(sql, params)
        names = stmt.names if isinstance(stmt, Statement) else None
        if names is None:
            names = [d[0] for d in cur.description]
            if isinstance(stmt, Statement):
                stmt.names = names
        return [SimpleNamespace(**dict(zip(names, row, strict=True))) for row in cur.fetchall()]
    finally:
        cur.close()


def execute(conn: Connection, stmt: Statement, params: dict[str, Any] | Sequence[dict[str, Any]]) -> None:
    cur = cursor(conn)
    try:
        if isinstance(params, dict):
            cur.execute(stmt.text(conn), params)
        else:
            cur.executemany(stmt.text(conn), list(params))
    finally:
        cur.close()


_EMPTY_JSON: dict[str, Any] = {"{}": dict, "[]": list, "null": lambda: None}


def json_value(value: Any) -> Any:
    """A JSON column as read through the raw cursor (SQLite gives text, psycopg gives objects).

    Most of the hot path's JSON columns hold ``{}``, ``[]`` or ``null``: those skip the parser
    (and still give a fresh object each time, since callers may mutate it).
    """
    if isinstance(value, str):
        empty = _EMPTY_JSON.get(value)
        return empty() if empty is not None else json.loads(value)
    if isinstance(value, bytes):
        return json.loads(value)
    return value


def json_param(value: Any) -> str | None:
    """A JSON column's parameter (pydantic-core's encoder: the same compact JSON, a third of the cost)."""
    return None if value is None else to_json(value).decode()


def in_list(prefix: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """``(:p0, :p1, ...)`` and its parameters, for an IN clause."""
    params = {f"{prefix}{i}": v for i, v in enumerate(values)}
    return "(" + ", ".join(f":{k}" for k in params) + ")", params
