"""Usage events as stored: the insert on the track path, the list's pages and the aggregate's rows
(the SQL behind ``service.usage`` and ``service.events``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    FromClause,
    Row,
    String,
    Text,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.sql.selectable import TableValuedAlias

from reference_server.store import raw
from reference_server.store.tables.core import customer_plans, events
from reference_server.store.tenancy import Tenant

_INSERT_EVENT = raw.Statement(
    "INSERT INTO events (id, org_pk, env, customer_pk, customer_id, entity_id, feature_id, value, "
    "properties, deductions, timestamp) VALUES (:id, :org, :env, :customer_pk, :customer_id, :entity_id, "
    ":feature_id, "
    ":value, :properties, :deductions, :timestamp)"
)


def insert_event(conn: Connection, values: dict[str, Any]) -> None:
    """Insert one event; ``values`` are the statement's parameters (``properties`` and
    ``deductions`` not yet encoded)."""
    values["properties"] = raw.json_param(values["properties"])
    values["deductions"] = raw.json_param(values["deductions"])
    raw.execute(conn, _INSERT_EVENT, values)


@dataclass(frozen=True)
class EventFilter:
    """Which of the env's events a list or an aggregate reads."""

    customer_pk: int | None = None
    entity_id: str | None = None
    feature_ids: list[str] | None = None


def _conditions(tenant: Tenant, f: EventFilter) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [events.c.org_pk == tenant.org_pk, events.c.env == tenant.env]
    if f.customer_pk is not None:
        conds.append(events.c.customer_pk == f.customer_pk)
    if f.entity_id:
        conds.append(events.c.entity_id == f.entity_id)
    if f.feature_ids is not None:
        conds.append(events.c.feature_id.in_(f.feature_ids))
    return conds


def event_page(
    conn: Connection,
    tenant: Tenant,
    f: EventFilter,
    *,
    start: int | None,
    end: int | None,
    after: tuple[int, int] | None,
    limit: int,
) -> list[Row[Any]]:
    """Up to ``limit + 1`` events, newest first, in [start, end] and after the (timestamp, pk) ``after``."""
    conds = _conditions(tenant, f)
    if start is not None:
        conds.append(events.c.timestamp >= start)
    if end is not None:
        conds.append(events.c.timestamp <= end)
    if after is not None:
        ts, pk = after
        conds.append(or_(events.c.timestamp < ts, and_(events.c.timestamp == ts, events.c.pk < pk)))
    return list(
        conn.execute(
            select(events)
            .where(*conds)
            .order_by(events.c.timestamp.desc(), events.c.pk.desc())
            .limit(limit + 1)
        ).all()
    )


def events_between(conn: Connection, tenant: Tenant, f: EventFilter, start: int, end: int) -> list[Row[Any]]:
    """The events in [start, end], oldest first."""
    conds = _conditions(tenant, f)
    conds += [events.c.timestamp >= start, events.c.timestamp <= end]
    return list(conn.execute(select(events).where(*conds).order_by(events.c.timestamp)).all())


@dataclass(frozen=True)
class AggregateQuery:
    """What an aggregate reads and how its rows fold (``service.events.aggregate``).

    ``bin_ms`` is the width of the fixed bins rows are summed in (an hour or a day: weeks and
    months are folded from days by the caller); ``group`` is ``None``, ``"$customer_id"``,
    ``"$entity_id"``, ``"$customer_pk"`` (the caller maps customers to their plan) or a property
    key; ``filters`` are property keys and the JSON strings they must hold."""

    start: int
    end: int
    bin_ms: int
    group: str | None = None
    filters: tuple[tuple[str, str], ...] = ()


def _json_each() -> TableValuedAlias:
    """SQLite's ``json_each`` over an event's properties (for keys no JSON path can name)."""
    props = type_coerce(events.c.properties, Text)
    return func.json_each(props).table_valued("key", "value", "type").alias("prop")


def _property(conn: Connection, key: str) -> ColumnElement[Any]:
    """The event's property ``key`` as a JSON text (NULL when absent)."""
    props = type_coerce(events.c.properties, Text)
    if conn.dialect.name == "postgresql":
        return cast(props.op("->", return_type=Text)(cast(literal(key, String), Text)), Text)
    if '"' not in key:
        return props.op("->", return_type=Text)(literal('$."' + key + '"', String))
    # a key holding a double quote has no SQLite JSON path: find it by name
    prop = _json_each()
    as_json = case(
        (prop.c.type == "text", func.json_quote(prop.c.value)),
        (prop.c.type.in_(("true", "false", "null")), prop.c.type),
        else_=cast(prop.c.value, Text),
    )
    return select(as_json).where(prop.c.key == key).scalar_subquery()


def _is_string(conn: Connection, key: str, expected: str) -> ColumnElement[bool]:
    """The event's property ``key`` is the JSON string ``expected``."""
    props = type_coerce(events.c.properties, Text)
    if conn.dialect.name == "postgresql":
        name = cast(literal(key, String), Text)
        return and_(
            func.json_typeof(props.op("->", return_type=Text)(name)) == "string",
            props.op("->>", return_type=Text)(name) == expected,
        )
    if '"' not in key:
        path = literal('$."' + key + '"', String)
        return and_(func.json_type(props, path) == "text", func.json_extract(props, path) == expected)
    prop = _json_each()
    return exists(
        select(literal_column("1")).where(prop.c.key == key, prop.c.type == "text", prop.c.value == expected)
    )


# the most (bin, feature) pairs an ungrouped aggregate reads with one index range each: beyond,
# one pass sorting every event into its bin costs less
MAX_BIN_SCANS = 2000


def aggregate_rows(conn: Connection, tenant: Tenant, f: EventFilter, q: AggregateQuery) -> list[Row[Any]]:
    """The events in [start, end] matching ``f`` and ``q.filters``, summed per (bin, feature, group).

    Each row is ``(bin, feature_id, grp, n, total, magnitude, first)``: the bin's start (a
    multiple of ``bin_ms``), the feature, the group's raw value (a property's JSON text, NULL when
    the property is absent or there is no ``group``), the events' count and summed value, then, for
    a ``group``, their summed absolute value and earliest timestamp (without one: NULL and the bin's
    start).  Only pairs holding events have a row."""
    ts = events.c.timestamp
    # a customer's pk is its env's (the caller looked it up in the tenant): its index serves alone
    conds: list[ColumnElement[bool]] = (
        [events.c.customer_pk == f.customer_pk]
        if f.customer_pk is not None
        else [events.c.org_pk == tenant.org_pk, events.c.env == tenant.env]
    )
    if f.entity_id:
        conds.append(events.c.entity_id == f.entity_id)
    conds += [_is_string(conn, key, expected) for key, expected in q.filters]
    bins = (q.end - (q.start - q.start % q.bin_ms)) // q.bin_ms + 1
    if q.group is None and f.feature_ids is not None and bins * len(f.feature_ids) <= MAX_BIN_SCANS:
        return [row for fid in f.feature_ids for row in _per_bin(conn, conds, fid, q)]
    conds += [ts >= q.start, ts <= q.end]
    if f.feature_ids is not None:
        conds.append(events.c.feature_id.in_(f.feature_ids))
    group: ColumnElement[Any]
    if q.group is None:
        group = literal_column("NULL")
    elif q.group == "$customer_id":
        group = events.c.customer_id
    elif q.group == "$entity_id":
        group = events.c.entity_id
    elif q.group == "$customer_pk":
        group = events.c.customer_pk
    else:
        group = _property(conn, q.group)
    width = literal(q.bin_ms, BigInteger)
    sub = (
        select(
            (ts - ts % width).label("bin"),
            events.c.feature_id,
            group.label("grp"),
            events.c.value,
            ts.label("ts"),
        )
        .where(*conds)
        .subquery("e")
    )
    cols = (sub.c.bin, sub.c.feature_id, sub.c.grp)
    return list(
        conn.execute(
            select(
                *cols,
                func.count().label("n"),
                func.sum(sub.c.value).label("total"),
                func.sum(func.abs(sub.c.value)).label("magnitude"),
                func.min(sub.c.ts).label("first"),
            ).group_by(*cols)
        ).all()
    )


def _per_bin(
    conn: Connection, conds: list[ColumnElement[bool]], fid: str, q: AggregateQuery
) -> list[Row[Any]]:
    """One feature's count and sum per bin, each bin read as its own range of the feature's
    (customer or env, feature, timestamp, value) index: no sort of the events into bins."""
    ts = events.c.timestamp
    width = literal(q.bin_ms, BigInteger)
    start, end = literal(q.start, BigInteger), literal(q.end, BigInteger)
    first = cast(literal(q.start - q.start % q.bin_ms, BigInteger), BigInteger)
    # each bin with the part of [start, end] it holds: [lo, hi] is the one range its events are read by
    seed = select(first.label("b")).cte("bins", recursive=True)
    starts = seed.union_all(select(seed.c.b + width).where(seed.c.b + width <= end))
    bins = select(
        starts.c.b,
        case((starts.c.b < start, start), else_=starts.c.b).label("lo"),
        case((starts.c.b + width - 1 > end, end), else_=starts.c.b + width - 1).label("hi"),
    ).subquery("bin")

    in_bin = [*conds, events.c.feature_id == fid, ts >= bins.c.lo, ts <= bins.c.hi]
    n: ColumnElement[Any]
    total: ColumnElement[Any]
    if conn.dialect.name == "postgresql":  # both sums from one read of the range
        sums = select(func.count().label("n"), func.sum(events.c.value).label("total")).where(*in_bin)
        per_bin = sums.lateral("sums")
        source: FromClause = bins.join(per_bin, true())
        n, total = per_bin.c.n, per_bin.c.total
    else:  # no LATERAL: a read per sum, of the index alone
        source = bins
        n = select(func.count()).where(*in_bin).scalar_subquery()
        total = select(func.sum(events.c.value)).where(*in_bin).scalar_subquery()
    stmt = select(
        bins.c.b.label("bin"),
        literal(fid, String).label("feature_id"),
        literal_column("NULL").label("grp"),
        n.label("n"),
        total.label("total"),
        literal_column("NULL").label("magnitude"),
        bins.c.b.label("first"),
    ).select_from(source)
    return [row for row in conn.execute(stmt).all() if row.n]


def active_plan_rows(conn: Connection) -> list[Row[Any, Any]]:
    """(customer_pk, plan_id) of every active plan instance."""
    return list(
        conn.execute(
            select(customer_plans.c.customer_pk, customer_plans.c.plan_id).where(
                customer_plans.c.status == "active"
            )
        )
    )
