"""customers.list reads its page in a fixed number of statements, each customer as customers.get shows it.

The page's sources, plan instances and license pools are read for all its customers at once
(``service.customers.list_customers``); these tests hold the listed objects to the ones read one
customer at a time, and the statements of a page to a number that does not grow with its customers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from reference_server.clock import ManualClock
from reference_server.testing import run_server

from .helpers import Api, new_org_key

MONTH = {"interval": "month"}


def _catalog(api: Api) -> None:
    api.feature("messages")
    api.feature("credits")
    api.feature("seats", consumable=False)
    api.feature("sso", "boolean")
    api.plan(
        "free",
        [
            {
                "feature_id": "messages",
                "included": 400,
                "reset": MONTH,
                "rollover": {"max": 500, "expiry_duration_type": "month", "expiry_duration_length": 1},
            },
            {"feature_id": "credits", "included": 300, "reset": MONTH},
            {"feature_id": "sso"},
        ],
        auto_enable=True,
    )
    api.plan("seat_plan", [{"feature_id": "credits", "included": 100, "reset": MONTH}], name="Seat")
    api(
        "plans.create",
        plan_id="pro",
        name="Pro",
        items=[],
        licenses=[{"license_plan_id": "seat_plan", "included": 2}],
    )


def _customers(api: Api) -> list[str]:
    """Customers in different states: a seat pool with a seat taken, stored rollovers, a usage
    limit with usage in its window, a loose balance, and plain ones."""
    _catalog(api)
    api.customer("pooled")
    api("billing.attach", customer_id="pooled", plan_id="pro")
    api(
        "licenses.attach",
        customer_id="pooled",
        plan_id="seat_plan",
        entities=[{"entity_id": "u1", "name": "Ada", "feature_id": "seats"}],
    )
    api.track("pooled", "credits", 5, entity_id="u1")
    api.customer("rolled")
    api.track("rolled", "messages", 250)
    api.advance(days=31)
    api.track("rolled", "messages", 100)  # stores the rollover the reset made
    api.customer("limited")
    api(
        "customers.update",
        customer_id="limited",
        billing_controls={"usage_limits": [{"feature_id": "credits", "limit": 50, "interval": "day"}]},
    )
    api.track("limited", "credits", 30)
    api.customer("loose")
    api("balances.create", customer_id="loose", feature_id="messages", included_grant=7)
    for i in range(3):
        api.customer(f"plain{i}")
    return ["pooled", "rolled", "limited", "loose", "plain0", "plain1", "plain2"]


def test_each_listed_customer_is_the_customer_get_answers(api: Api) -> None:
    ids = _customers(api)
    listed = api("customers.list", limit=100)["list"]
    assert sorted(c["id"] for c in listed) == sorted(ids)
    for customer in listed:
        assert customer == api("customers.get", customer_id=customer["id"]), customer["id"]
    pooled = next(c for c in listed if c["id"] == "pooled")
    assert [(p["license_plan_id"], p["usage"]) for p in pooled["licenses"]] == [("seat_plan", 1)]
    rolled = next(c for c in listed if c["id"] == "rolled")
    assert rolled["balances"]["messages"]["rollovers"][0]["balance"] == 50
    limited = next(c for c in listed if c["id"] == "limited")
    assert limited["billing_controls"]["usage_limits"][0]["usage"] == 30
    # a short page is the same customers
    first = api("customers.list", limit=3)
    assert first["list"] == listed[:3]


class _Statements:
    """The statements SQLite runs on the connections opened while it is installed."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.on = False

    def connect(self, dbapi_conn: Any, _record: Any) -> None:
        if isinstance(dbapi_conn, sqlite3.Connection):
            dbapi_conn.set_trace_callback(self._trace)

    def _trace(self, sql: str) -> None:
        if self.on:
            self.seen.append(sql)

    def during(self, api: Api, op: str, **body: Any) -> list[str]:
        self.seen, self.on = [], True
        try:
            api(op, **body)
        finally:
            self.on = False
        return self.seen


@pytest.fixture
def counted() -> Iterator[tuple[Api, _Statements]]:
    statements = _Statements()
    event.listen(Engine, "connect", statements.connect)
    try:
        clock = ManualClock(1_767_225_600_000)
        with run_server(clock=clock, background_jobs=False) as srv:
            client = Api(srv, new_org_key(srv), clock)
            yield client, statements
            client.http.close()
    finally:
        event.remove(Engine, "connect", statements.connect)


def _page_statements(statements: _Statements, api: Api) -> list[str]:
    seen = statements.during(api, "customers.list", limit=100)
    return [
        s
        for s in seen
        # The key lookup and the request log depend on caches and timing, not on the page; a new
        # connection's PRAGMAs on whether the worker thread serving the page (a long read) is new;
        # transaction control also comes from the request log's own writer thread (its BEGIN and
        # COMMIT around the insert), whenever that thread flushes.
        if "api_keys" not in s
        and "api_request_log" not in s
        and not s.startswith("PRAGMA")
        and s.split(None, 1)[0].upper() not in _TRANSACTION_CONTROL
    ]


_TRANSACTION_CONTROL = frozenset({"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "END"})


def test_a_page_reads_in_statements_that_do_not_grow_with_its_customers(
    counted: tuple[Api, _Statements],
) -> None:
    api, statements = counted
    _customers(api)
    seven = _page_statements(statements, api)
    for i in range(3, 13):
        api.customer(f"plain{i}")
    api("billing.attach", customer_id="plain3", plan_id="pro")
    seventeen = _page_statements(statements, api)
    assert len(seventeen) == len(seven), "\n".join(seventeen)
    assert len(seven) <= 13, "\n".join(seven)
