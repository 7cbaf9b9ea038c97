"""Loading and saving a customer, its entities and its balance sources.

Writers lock the customer first (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
already serializes writers), read the sources of the features involved in one query, and write
back only the sources the engine marked dirty.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass, fields
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import JSON, Connection, delete, insert, select, update

from reference_server.engine.entitlements import Rollover, Source
from reference_server.engine.plan_controls import ControlsRecord
from reference_server.store import raw
from reference_server.store.plan_records import ItemPriceRecord
from reference_server.store.tables.core import balance_sources, customers, entities
from reference_server.store.tenancy import Tenant


@dataclass
class CustomerRow:
    pk: int
    id: str | None
    name: str | None
    email: str | None
    fingerprint: str | None
    stripe_id: str | None
    metadata: dict[str, Any]
    send_email_receipts: bool
    billing_controls: ControlsRecord
    config: dict[str, Any]
    clock_offset_ms: int
    maintenance_due_at: int | None
    created_at: int


@dataclass
class EntityRow:
    pk: int
    id: str | None
    name: str | None
    feature_id: str | None
    billing_controls: ControlsRecord
    created_at: int
    customer_pk: int


CUSTOMER_COLUMNS = tuple(c for c in customers.c if c.name not in ("org_pk", "env"))
"""The customers columns a :class:`CustomerRow` holds, in table order (all but the tenant's)."""
_CUSTOMER_JSON = tuple(c.name for c in CUSTOMER_COLUMNS if isinstance(c.type, JSON))
_CUSTOMER_NAMES = tuple(c.name for c in CUSTOMER_COLUMNS)
if [f.name for f in fields(CustomerRow)] != [c.name for c in CUSTOMER_COLUMNS]:
    raise RuntimeError("CustomerRow's fields must be the customers table's columns, in order")
_SOURCE_COLUMN_NAMES = [c.name for c in balance_sources.c]


def customer_from_row(r: Any) -> CustomerRow:
    return CustomerRow(
        pk=r.pk,
        id=r.id,
        name=r.name,
        email=r.email,
        fingerprint=r.fingerprint,
        stripe_id=r.stripe_id,
        metadata=r.metadata or {},
        send_email_receipts=bool(r.send_email_receipts),
        billing_controls=r.billing_controls or ControlsRecord(),
        config=r.config or {},
        clock_offset_ms=int(r.clock_offset_ms or 0),
        maintenance_due_at=r.maintenance_due_at,
        created_at=int(r.created_at),
    )


def entity_from_row(r: Any) -> EntityRow:
    return EntityRow(
        pk=r.pk,
        id=r.id,
        name=r.name,
        feature_id=r.feature_id,
        billing_controls=r.billing_controls or ControlsRecord(),
        created_at=int(r.created_at),
        customer_pk=r.customer_pk,
    )


_GET_CUSTOMER = raw.Statement(
    f"SELECT {', '.join(c.name for c in CUSTOMER_COLUMNS)} FROM customers "
    "WHERE org_pk = :org AND env = :env AND id = :id"
)
_GET_CUSTOMER_FOR_UPDATE = raw.Statement(_GET_CUSTOMER.sqlite + " FOR UPDATE")


def get_customer(
    conn: Connection, tenant: Tenant, customer_id: str, *, lock: bool = False
) -> CustomerRow | None:
    """The customer by public id; ``lock`` holds its row until the transaction ends (PostgreSQL)."""
    stmt = _GET_CUSTOMER_FOR_UPDATE if lock and conn.dialect.name == "postgresql" else _GET_CUSTOMER
    rows = raw.fetch(conn, stmt, {"org": tenant.org_pk, "env": tenant.env, "id": customer_id})
    if not rows:
        return None
    r = rows[0]
    for name in _CUSTOMER_JSON:
        setattr(r, name, raw.json_value(getattr(r, name)))
    return customer_from_row(r)


def get_entity(conn: Connection, customer_pk: int, entity_id: str) -> EntityRow | None:
    r = conn.execute(
        select(entities).where(entities.c.customer_pk == customer_pk, entities.c.id == entity_id)
    ).first()
    return entity_from_row(r) if r is not None else None


def list_entities(conn: Connection, customer_pk: int) -> list[EntityRow]:
    rows = conn.execute(select(entities).where(entities.c.customer_pk == customer_pk).order_by(entities.c.pk))
    return [entity_from_row(r) for r in rows]


_SOURCE_COLUMNS = [*balance_sources.c, entities.c.id.label("entity_public_id")]


_SOURCE_ROW = (*_SOURCE_COLUMN_NAMES, "entity_public_id")
"""The columns of a source row as :data:`_SOURCES_SQL` reads it: the table's, then the entity's id."""


_SOURCE_ROW_VALUES = operator.attrgetter(*_SOURCE_ROW)
"""A named row's :data:`_SOURCE_ROW` values as a tuple, read in C (a per-name getattr loop cost as
much as building the Source)."""


def source_from_row(r: Any) -> Source:
    """A Source from a row holding the :data:`_SOURCE_ROW` columns as attributes."""
    return _source(_SOURCE_ROW_VALUES(r))


def source_price(source: Source) -> ItemPriceRecord | None:
    """The source's ``balance_sources.price``: its plan item's price record as the instance was
    given it (``service.subscriptions`` writes the item's ``price`` as is), None for a free item."""
    return cast("ItemPriceRecord | None", source.price)


def _source(r: Sequence[Any]) -> Source:
    """A Source from the :data:`_SOURCE_ROW` values, in order (JSON columns as read or decoded)."""
    (
        pk,
        customer_pk,
        entity_pk,
        customer_plan_pk,
        balance_id,
        feature_id,
        plan_id,
        is_flag,
        allowance,
        adjustment,
        prepaid,
        balance,
        unlimited,
        usage_allowed,
        max_purchase,
        interval,
        interval_count,
        anchor_at,
        next_reset_at,
        expires_at,
        rollover_config,
        rollovers,
        price,
        is_addon,
        continuous,
        created_at,
        entity_public_id,
    ) = r
    # Most rows hold null and [] (as text on SQLite and as read on PostgreSQL): those skip json_value.
    rollovers = None if rollovers == "[]" else raw.json_value(rollovers)
    # Positional, in Source's field order (checked below): keyword arguments cost a list page more
    # than twice as much (the dataclass __init__ matches 28 names per source).
    return Source(
        pk,  # pk
        balance_id or f"cus_ent_{pk}",  # id
        feature_id,  # feature_id
        plan_id,  # plan_id
        customer_plan_pk,  # customer_plan_pk
        entity_pk,  # entity_pk
        entity_public_id,  # entity_id
        bool(is_flag),  # is_flag
        float(allowance),  # allowance
        float(adjustment),  # adjustment
        float(prepaid),  # prepaid
        float(balance),  # balance
        bool(unlimited),  # unlimited
        bool(usage_allowed),  # usage_allowed
        None if max_purchase is None else float(max_purchase),  # max_purchase
        interval,  # interval
        int(interval_count or 1),  # interval_count
        anchor_at,  # anchor_at
        next_reset_at,  # next_reset_at
        expires_at,  # expires_at
        None if rollover_config == "null" else raw.json_value(rollover_config),  # rollover_config
        None if price == "null" else raw.json_value(price),  # price
        bool(is_addon),  # is_addon
        bool(continuous),  # continuous
        int(created_at),  # created_at
        [Rollover.from_json(x) for x in rollovers] if rollovers else [],  # rollovers
        False,  # dirty
        int(customer_pk),  # customer_pk
    )


_SOURCE_FIELDS = (
    "pk",
    "id",
    "feature_id",
    "plan_id",
    "customer_plan_pk",
    "entity_pk",
    "entity_id",
    "is_flag",
    "allowance",
    "adjustment",
    "prepaid",
    "balance",
    "unlimited",
    "usage_allowed",
    "max_purchase",
    "interval",
    "interval_count",
    "anchor_at",
    "next_reset_at",
    "expires_at",
    "rollover_config",
    "price",
    "is_addon",
    "continuous",
    "created_at",
    "rollovers",
    "dirty",
    "customer_pk",
)
"""Source's fields in the order :func:`_source` passes them."""
if tuple(f.name for f in fields(Source)) != _SOURCE_FIELDS:
    raise RuntimeError("_source passes Source's fields by position: update it with Source's fields")

if tuple(_source.__code__.co_varnames[1 : 1 + len(_SOURCE_ROW)]) != _SOURCE_ROW:
    raise RuntimeError("_source must unpack the balance_sources columns in table order, then the entity id")


def _fetch_sources(conn: Connection, sql: str, params: dict[str, Any]) -> list[Source]:
    """The sources :data:`_SOURCES_SQL` (or a variant) reads: the cursor's rows straight into
    Sources, without building a named row first (list pages read thousands)."""
    cur = raw.cursor(conn)
    try:
        cur.execute(_statement(sql).text(conn), params)
        return [_source(r) for r in cur.fetchall()]
    finally:
        cur.close()


_SOURCE_SELECT = ", ".join(f"s.{name}" for name in _SOURCE_COLUMN_NAMES) + ", e.id AS entity_public_id"
"""Every balance_sources column (in table order) and the entity's public id."""
_SOURCES_SQL = (
    f"SELECT {_SOURCE_SELECT} FROM balance_sources s LEFT OUTER JOIN entities e ON s.entity_pk = e.pk "
    "WHERE s.customer_pk = :customer"
)


_SOURCE_JSON = tuple(c.name for c in balance_sources.c if isinstance(c.type, JSON))
_SOURCE_SELECT_TEXT = (
    ", ".join(
        f"CAST(s.{name} AS TEXT) AS {name}" if name in _SOURCE_JSON else f"s.{name}"
        for name in _SOURCE_COLUMN_NAMES
    )
    + ", e.id AS entity_public_id"
)
""":data:`_SOURCE_SELECT` with the JSON columns as their text: psycopg would run its JSON loader on
each (three calls a row, even for ``null``); :func:`raw.json_value` skips the parser for the
``null`` and ``[]`` most rows hold, and parses the rest as psycopg does (``json.loads``)."""


@functools.lru_cache(maxsize=64)
def _statement(sql: str) -> raw.Statement:
    stmt = raw.Statement(sql)
    stmt.postgres = stmt.postgres.replace(_SOURCE_SELECT, _SOURCE_SELECT_TEXT)
    return stmt


def load_sources(conn: Connection, customer_pk: int, feature_ids: set[str] | None = None) -> list[Source]:
    """All sources of a customer (every entity included), or only those of some features."""
    sql = _SOURCES_SQL
    params: dict[str, Any] = {"customer": customer_pk}
    if feature_ids is not None:
        clause, extra = raw.in_list("f", sorted(feature_ids))
        sql += f" AND s.feature_id IN {clause}"
        params.update(extra)
    return _fetch_sources(conn, sql + " ORDER BY s.pk", params)


_SAVE_SOURCE = raw.Statement(
    "UPDATE balance_sources SET balance = :balance, adjustment = :adjustment, "
    "next_reset_at = :next_reset_at, expires_at = :expires_at, allowance = :allowance, "
    "anchor_at = :anchor_at, rollovers = :rollovers "
    "WHERE pk = :pk"
)


def load_sources_for(conn: Connection, customer_pks: list[int]) -> list[Source]:
    """The sources of several customers in one query (list pages)."""
    if not customer_pks:
        return []
    clause, params = raw.in_list("c", customer_pks)
    sql = _SOURCES_SQL.replace("WHERE s.customer_pk = :customer", f"WHERE s.customer_pk IN {clause}")
    return _fetch_sources(conn, sql + " ORDER BY s.pk", params)


def save_sources(conn: Connection, sources: list[Source]) -> None:
    """Write back every source the engine changed (balance, adjustment, reset state, rollovers)."""
    dirty = [s for s in sources if s.dirty]
    if not dirty:
        return
    raw.execute(
        conn,
        _SAVE_SOURCE,
        [
            {
                "pk": s.pk,
                "balance": s.balance,
                "adjustment": s.adjustment,
                "next_reset_at": s.next_reset_at,
                "expires_at": s.expires_at,
                "allowance": s.allowance,
                "anchor_at": s.anchor_at,
                "rollovers": raw.json_param([r.to_json() for r in s.rollovers]),
            }
            for s in dirty
        ],
    )
    for s in dirty:
        s.dirty = False


def insert_source(conn: Connection, values: dict[str, Any]) -> int:
    values = {"rollovers": [], "adjustment": 0.0, **values}
    result = conn.execute(insert(balance_sources).values(**values).returning(balance_sources.c.pk))
    return int(result.scalar_one())


def scoped(sources: list[Source], entity: EntityRow | None) -> list[Source]:
    """The sources a subject sees: the customer's own plus one entity's, or all for the customer."""
    if entity is None:
        return sources
    return [s for s in sources if s.entity_pk is None or s.entity_pk == entity.pk]


_CUSTOMER_SELECT = ", ".join(f"c.{c.name} AS c_{c.name}" for c in CUSTOMER_COLUMNS)
"""The customer's columns in a join, each prefixed ``c_`` (the sources keep their own names)."""
_SUBJECT_SQL = (
    f"SELECT {_CUSTOMER_SELECT}, {_SOURCE_SELECT} FROM customers c "
    "LEFT OUTER JOIN balance_sources s ON s.customer_pk = c.pk AND s.feature_id IN {features} "
    "LEFT OUTER JOIN entities e ON s.entity_pk = e.pk "
    "WHERE c.org_pk = :org AND c.env = :env AND c.id = :id ORDER BY s.pk"
)


def load_subject(
    conn: Connection, tenant: Tenant, customer_id: str, feature_ids: set[str], *, lock: bool = False
) -> tuple[CustomerRow, list[Source]] | None:
    """The customer and the sources of some features in one query (the check/track hot path).

    SQLite's ``BEGIN IMMEDIATE`` already serializes writers, so one query serves reads and writes.
    On PostgreSQL a writer must lock the customer row BEFORE reading the sources: a single
    ``SELECT ... FOR UPDATE OF c`` join would wait for the lock and then return the joined source
    rows from its starting snapshot, i.e. balances another transaction has since changed.
    """
    if lock and conn.dialect.name == "postgresql":
        customer = get_customer(conn, tenant, customer_id, lock=True)
        if customer is None:
            return None
        return customer, load_sources(conn, customer.pk, feature_ids)
    stmt, params = subject_query(tenant, customer_id, feature_ids)
    return subject_from_rows(raw.fetch(conn, stmt, params))


@functools.lru_cache(maxsize=64)
def _subject_statement(n_features: int) -> raw.Statement:
    """:data:`_SUBJECT_SQL` for ``n_features`` features (``:f0``...), made once per count: formatting
    and hashing the 2 kB text on every check cost more than its parameters."""
    clause, _ = raw.in_list("f", range(n_features))
    return _statement(_SUBJECT_SQL.format(features=clause))


def subject_query(
    tenant: Tenant, customer_id: str, feature_ids: set[str]
) -> tuple[raw.Statement, dict[str, Any]]:
    """The one statement reading a customer and the sources of some features."""
    values = sorted(feature_ids) or [""]
    params: dict[str, Any] = {f"f{i}": v for i, v in enumerate(values)}
    params.update({"org": tenant.org_pk, "env": tenant.env, "id": customer_id})
    return _subject_statement(len(values)), params


_JOINED_CUSTOMER_VALUES = operator.attrgetter(*(f"c_{c.name}" for c in CUSTOMER_COLUMNS))
"""The customer's :data:`CUSTOMER_COLUMNS` of a :data:`_SUBJECT_SQL` row (``c_``-prefixed), as a tuple."""
_CUSTOMER_JSON_AT = tuple(i for i, c in enumerate(CUSTOMER_COLUMNS) if c.name in _CUSTOMER_JSON)


def subject_from_rows(rows: list[Any]) -> tuple[CustomerRow, list[Source]] | None:
    """The customer and its sources from the rows of :data:`_SUBJECT_SQL` (one per source)."""
    if not rows:
        return None
    values = list(_JOINED_CUSTOMER_VALUES(rows[0]))
    for i in _CUSTOMER_JSON_AT:
        values[i] = raw.json_value(values[i])
    customer = customer_from_row(SimpleNamespace(**dict(zip(_CUSTOMER_NAMES, values, strict=True))))
    return customer, [_source(_SOURCE_ROW_VALUES(r)) for r in rows if r.pk is not None]


def set_anchor(conn: Connection, source_pks: list[int], anchor_at: int) -> None:
    """Move the reset anchor of some sources."""
    conn.execute(
        update(balance_sources).where(balance_sources.c.pk.in_(source_pks)).values(anchor_at=anchor_at)
    )


def delete_sources(conn: Connection, source_pks: list[int]) -> None:
    conn.execute(delete(balance_sources).where(balance_sources.c.pk.in_(source_pks)))


def customer_by_pk(conn: Connection, customer_pk: int) -> CustomerRow | None:
    row = conn.execute(select(customers).where(customers.c.pk == customer_pk)).first()
    return customer_from_row(row) if row is not None else None


def entity_by_pk(conn: Connection, entity_pk: int) -> EntityRow | None:
    r = conn.execute(select(entities).where(entities.c.pk == entity_pk)).first()
    return entity_from_row(r) if r is not None else None
