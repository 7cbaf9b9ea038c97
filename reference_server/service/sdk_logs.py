"""``logs.search``: the organization environment's API requests, from this server's own request log.

Autumn searches a log store that keeps each request's bodies and context (customer, entity, Stripe
event).  This server keeps a bounded log of the API requests made with the environment's keys (the
dashboard's, :mod:`reference_server.request_log`): method, path, status and time, the
last :data:`~reference_server.store.tables.dashboard.REQUEST_LOG_KEEP` of them.  That is what it
answers from: ``request_body``, ``response_body``, the customer and the Stripe fields are null, and
a query that filters or sorts on them is refused (400) instead of answering "no such request".

The query is Autumn's restricted syntax, stages joined by ``|``: ``where`` (comparisons ``==``,
``!=``, ``<``, ``<=``, ``>``, ``>=``, ``contains``, ``startswith``, ``in (...)``, combined with
``and`` / ``or`` and parentheses), ``order by <field> [asc|desc]`` and ``limit <n>``.  The range
(ISO datetimes) defaults to the last 30 minutes and spans at most 7 days, as in Autumn.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from autumn_sdk._generated.json_types import SearchRequestLogsItemJson, SearchRequestLogsResponseJson
from autumn_sdk._generated.models import SearchRequestLogsParams
from reference_server.errors import invalid
from reference_server.service.context import Ctx
from reference_server.store.request_log import requests_between

DEFAULT_RANGE_MS = 30 * 60 * 1000
MAX_RANGE_MS = 7 * 24 * 60 * 60 * 1000
DEFAULT_LIMIT = 100
"""The logs returned when ``limit`` is left out (1 to 200, which the spec's model enforces)."""

ANSWERED_FIELDS = (
    "timestamp",
    "source",
    "status_code",
    "request_method",
    "request_url",
    "request_path",
    "org_id",
)
"""The fields a query may name: those the request log keeps."""
UNKEPT_FIELDS = (
    "request_body",
    "response_body",
    "customer_id",
    "entity_id",
    "stripe_event_id",
    "stripe_event_type",
    "stripe_object_id",
)
"""Autumn's other queryable fields: this server's request log does not keep them."""

Row = dict[str, Any]
Predicate = Callable[[Row], bool]

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|<=|>=|<|>|\(|\)|,)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.\[\]']*))"
)


def _bad_query(detail: str) -> Exception:
    return invalid(
        f"Invalid logs query: {detail}. Supported stages (joined by '|'): where, order by, limit. "
        f"Example: where status_code >= 400 and request_path == '/v1/balances.track' | limit 50. "
        f"String values use single quotes. This server's request log answers: {', '.join(ANSWERED_FIELDS)}",
        "invalid_inputs",
    )


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise _bad_query(f"unexpected text at {text[pos:].strip()[:20]!r}")
        pos = m.end()
        if m.group("str") is not None:
            out.append(("value", re.sub(r"\\(.)", r"\1", m.group("str")[1:-1])))
        elif m.group("num") is not None:
            number = float(m.group("num"))
            out.append(("value", int(number) if number.is_integer() else number))
        elif m.group("op") is not None:
            out.append(("op", m.group("op")))
        else:
            out.append(("word", m.group("word")))
    return out


def _field(name: str) -> str:
    if name in ANSWERED_FIELDS:
        return name
    if name in UNKEPT_FIELDS or name.split(".")[0] in ("request_body", "response_body"):
        raise invalid(
            f"Invalid logs query: this server's request log does not keep {name.split('.')[0]} "
            f"(it keeps {', '.join(ANSWERED_FIELDS)})",
            "invalid_inputs",
        )
    raise _bad_query(f"unknown field {name!r}")


class _Where:
    """A recursive-descent parser of a ``where`` expression into a predicate."""

    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.tokens = tokens
        self.at = 0

    def _peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self) -> tuple[str, Any]:
        token = self._peek()
        if token is None:
            raise _bad_query("the where expression ends early")
        self.at += 1
        return token

    def parse(self) -> Predicate:
        pred = self._or()
        extra = self._peek()
        if extra is not None:
            raise _bad_query(f"unexpected {extra[1]!r}")
        return pred

    def _or(self) -> Predicate:
        left = self._and()
        while self._peek() == ("word", "or"):
            self.at += 1
            left = _either(left, self._and())
        return left

    def _and(self) -> Predicate:
        left = self._atom()
        while self._peek() == ("word", "and"):
            self.at += 1
            left = _both(left, self._atom())
        return left

    def _atom(self) -> Predicate:
        if self._peek() == ("op", "("):
            self.at += 1
            inner = self._or()
            if self._take() != ("op", ")"):
                raise _bad_query("a parenthesis is not closed")
            return inner
        kind, name = self._take()
        if kind != "word":
            raise _bad_query(f"expected a field, got {name!r}")
        field = _field(name)
        kind, op = self._take()
        if op == "in":
            return self._in(field)
        if kind == "op" and op in ("==", "!=", "<", "<=", ">", ">="):
            kind, value = self._take()
            if kind != "value":
                raise _bad_query(f"expected a value after {op}")
            return _compare(field, op, value)
        if op in ("contains", "startswith"):
            kind, value = self._take()
            if kind != "value" or not isinstance(value, str):
                raise _bad_query(f"{op} takes a quoted string")
            needle = value.lower()
            if op == "contains":
                return lambda row: needle in str(row[field] or "").lower()
            return lambda row: str(row[field] or "").lower().startswith(needle)
        raise _bad_query(f"unknown operator {op!r}")

    def _in(self, field: str) -> Predicate:
        if self._take() != ("op", "("):
            raise _bad_query("in takes a parenthesised list")
        values: list[Any] = []
        while True:
            kind, value = self._take()
            if kind != "value":
                raise _bad_query("in takes values")
            values.append(value)
            sep = self._take()
            if sep == ("op", ")"):
                break
            if sep != ("op", ","):
                raise _bad_query("in values are separated by commas")
        return lambda row: row[field] in values


def _either(a: Predicate, b: Predicate) -> Predicate:
    return lambda row: a(row) or b(row)


def _both(a: Predicate, b: Predicate) -> Predicate:
    return lambda row: a(row) and b(row)


def _compare(field: str, op: str, value: Any) -> Predicate:
    def test(row: Row) -> bool:
        have = row[field]
        if have is None:
            return op == "!="
        if isinstance(value, str) != isinstance(have, str):
            return op == "!="
        if op == "==":
            return bool(have == value)
        if op == "!=":
            return bool(have != value)
        if op == "<":
            return bool(have < value)
        if op == "<=":
            return bool(have <= value)
        if op == ">":
            return bool(have > value)
        return bool(have >= value)

    return test


def _stages(query: str) -> list[str]:
    """The query's stages: split on ``|`` outside quoted strings."""
    stages: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in query:
        if ch == "'":
            quoted = not quoted
        if ch == "|" and not quoted:
            stages.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    stages.append("".join(current).strip())
    return [s for s in stages if s]


def _plan(query: str | None) -> tuple[list[Predicate], tuple[str, bool] | None, int | None]:
    """The query as (filters, (order field, descending), limit)."""
    filters: list[Predicate] = []
    order: tuple[str, bool] | None = None
    limit: int | None = None
    for stage in _stages(query or ""):
        head = stage.split(None, 1)
        word = head[0].lower()
        rest = head[1] if len(head) > 1 else ""
        if word == "where":
            filters.append(_Where(_tokens(rest)).parse())
        elif word == "order" and rest.lower().startswith("by"):
            parts = rest[2:].split()
            if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
                raise _bad_query("order by takes a field and asc or desc")
            order = (_field(parts[0]), len(parts) == 1 or parts[1].lower() == "desc")
        elif word == "limit":
            if not rest.strip().isdigit():
                raise _bad_query("limit takes a whole number")
            limit = int(rest)
        elif word in ("summarize", "project", "extend"):
            raise invalid(
                f"Invalid logs query: The {word} stage is only available on the logs.query endpoint "
                "(this server does not serve logs.query)",
                "invalid_inputs",
            )
        else:
            raise _bad_query(f"unknown stage {word!r}")
    return filters, order, limit


def _parse_time(name: str, value: str) -> int:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise invalid(f"range.{name}: Expected an ISO datetime string", "invalid_inputs") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return int(parsed.timestamp() * 1000)


def _iso(ms: int) -> str:
    return (
        dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def search_logs(ctx: Ctx, params: SearchRequestLogsParams) -> SearchRequestLogsResponseJson:
    """The environment's API requests in the range that match the query, newest first by default."""
    filters, order, query_limit = _plan(params.query)
    start_date = params.range.start_date if params.range is not None else None
    end_date = params.range.end_date if params.range is not None else None
    end = _parse_time("end_date", end_date) if end_date else ctx.state.clock.now_ms()
    start = _parse_time("start_date", start_date) if start_date else end - DEFAULT_RANGE_MS
    if start >= end:
        raise invalid("range.start_date must be before range.end_date", "invalid_inputs")
    if end - start > MAX_RANGE_MS:
        raise invalid(
            "Log range cannot exceed 7 days. Search consecutive 7-day windows for longer periods.",
            "invalid_inputs",
        )
    if ctx.state.request_log is not None:  # no log yet: nothing buffered
        ctx.state.request_log.flush()  # the requests still buffered, this server's included
    with ctx.db.read() as conn:
        rows = requests_between(conn, ctx.tenant, start, end)
    entries: list[Row] = [
        {
            "at": r.created_at,
            "timestamp": _iso(int(r.created_at)),
            "source": "api_request",
            "status_code": int(r.status),
            "request_method": r.method,
            "request_url": r.path,
            "request_path": r.path,
            "org_id": ctx.tenant.org_id,
        }
        for r in rows
    ]
    entries = [e for e in entries if all(f(e) for f in filters)]
    if order is not None and order[0] != "timestamp":
        field, descending = order
        entries.sort(key=lambda e: (e[field] is None, e[field]), reverse=descending)
    elif order is not None and not order[1]:
        entries.reverse()
    wanted = params.limit if params.limit is not None else DEFAULT_LIMIT
    limit = min(wanted, query_limit if query_limit is not None else 200)
    return {"list": [_entry(e) for e in entries[:limit]]}


def _entry(e: Row) -> SearchRequestLogsItemJson:
    return {
        "timestamp": e["timestamp"],
        "source": e["source"],
        "status_code": e["status_code"],
        "request": {"method": e["request_method"], "url": e["request_url"], "path": e["request_path"]},
        "context": {
            "org_id": e["org_id"],
            "customer_id": None,
            "entity_id": None,
            "auth_type": None,
            "user_id": None,
            "user_email": None,
        },
        "stripe": {"event_id": None, "event_type": None, "object_id": None},
        "request_body": None,
        "response_body": None,
    }
