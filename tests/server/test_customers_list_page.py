"""customers.list reads its page in a fixed number of statements, each customer as customers.get shows it.

The page's sources, plan instances, license pools and usage-limit windows are read for all its
customers at once (``service.customers.list_customers``); these tests hold the listed objects to the
ones read one customer at a time, and the statements of a page to a number that does not grow with its
customers, with or without usage limits.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .helpers import Api, SqliteStatements, traced_api

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
    api.plan(
        "capped",
        [{"feature_id": "messages", "included": 100, "reset": MONTH}],
        add_on=True,
        billing_controls={"usage_limits": [{"feature_id": "messages", "limit": 20, "interval": "day"}]},
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


def _limited(api: Api, cid: str, used: float) -> None:
    """A customer whose usage limits show usage: its own (on credits, for itself and its entity),
    its plan's (``capped`` on messages) and its entity's own, all with usage in their windows."""
    api.customer(cid)
    api(
        "customers.update",
        customer_id=cid,
        billing_controls={"usage_limits": [{"feature_id": "credits", "limit": 80, "interval": "week"}]},
    )
    api("billing.attach", customer_id=cid, plan_id="capped")
    api(
        "entities.create",
        customer_id=cid,
        entity_id=f"{cid}_seat",
        feature_id="seats",
        billing_controls={"usage_limits": [{"feature_id": "credits", "limit": 9, "interval": "day"}]},
    )
    api.track(cid, "credits", used)
    api.track(cid, "credits", 2, entity_id=f"{cid}_seat")
    api.track(cid, "messages", used / 2)


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
    for cid in ("lim_a", "lim_b"):
        _limited(api, cid, 10 if cid == "lim_a" else 16)
    listed = api("customers.list", limit=100)["list"]
    for customer in listed:
        assert customer == api("customers.get", customer_id=customer["id"]), customer["id"]
    shown = {
        c["id"]: [(u["feature_id"], u["source"], u["usage"]) for u in c["billing_controls"]["usage_limits"]]
        for c in listed
        if c["id"] in ("lim_a", "lim_b")
    }
    assert shown == {
        "lim_a": [("credits", "customer", 12), ("messages", "plan", 5)],
        "lim_b": [("credits", "customer", 18), ("messages", "plan", 8)],
    }
    # a short page is the same customers
    first = api("customers.list", limit=3)
    assert first["list"] == listed[:3]


@pytest.fixture
def counted() -> Iterator[tuple[Api, SqliteStatements]]:
    with traced_api() as traced:
        yield traced


def _page_statements(statements: SqliteStatements, api: Api) -> list[str]:
    seen = statements.sql_during(api, "customers.list", limit=100)
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
    counted: tuple[Api, SqliteStatements],
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
    # customers with usage limits (their own, their plans', their entities') read no more
    for i in range(4):
        _limited(api, f"lim{i}", 3 + i)
    twenty_one = _page_statements(statements, api)
    assert len(twenty_one) == len(seven), "\n".join(twenty_one)
    assert len(_windows(twenty_one)) == 1, "\n".join(twenty_one)


def _windows(seen: list[str]) -> list[str]:
    return [s for s in seen if "usage_limit_windows" in s]


def test_a_page_without_usage_limits_reads_no_windows(counted: tuple[Api, SqliteStatements]) -> None:
    api, statements = counted
    _catalog(api)
    for i in range(3):
        api.customer(f"plain{i}")
    api.track("plain0", "credits", 5)
    seen = _page_statements(statements, api)
    assert _windows(seen) == [], "\n".join(seen)
    api.customer("limited")
    api(
        "customers.update",
        customer_id="limited",
        billing_controls={"usage_limits": [{"feature_id": "credits", "limit": 50, "interval": "day"}]},
    )
    seen = _page_statements(statements, api)
    assert len(_windows(seen)) == 1, "\n".join(seen)


def test_an_entities_page_reads_its_usage_limit_windows_once(counted: tuple[Api, SqliteStatements]) -> None:
    api, statements = counted
    _catalog(api)
    for i in range(3):
        _limited(api, f"lim{i}", 3 + i)
        api("entities.create", customer_id=f"lim{i}", entity_id=f"lim{i}_free", feature_id="seats")
    seen = statements.sql_during(api, "entities.list", limit=100)
    assert len(_windows(seen)) == 1, "\n".join(seen)
    listed = api("entities.list", limit=100)["list"]
    assert len(listed) == 6
    for entity in listed:
        got = api("entities.get", customer_id=entity["customer_id"], entity_id=entity["id"])
        assert entity == got, entity["id"]
    shown = {
        e["id"]: [(u["feature_id"], u["source"], u["usage"]) for u in e["billing_controls"]["usage_limits"]]
        for e in listed
    }
    assert shown["lim0_seat"] == [("credits", "customer", 2), ("messages", "plan", 1.5)]
    assert shown["lim2_seat"] == [("credits", "customer", 2), ("messages", "plan", 2.5)]
    assert shown["lim1_free"] == [("messages", "plan", 2)]


def _paid_entities(api: Api, cid: str, count: int) -> None:
    """A customer with ``count`` entities, the first on plan ``team`` (paid, started by invoice with no
    card, so its renewal a month later is past due) and the customer on ``team`` too."""
    api.customer(cid)
    by_invoice = {"enabled": True, "enable_plan_immediately": True}
    api("billing.attach", customer_id=cid, plan_id="team", invoice_mode=by_invoice)
    for i in range(count):
        api("entities.create", customer_id=cid, entity_id=f"{cid}_e{i}", feature_id="seats")
    api("billing.attach", customer_id=cid, plan_id="team", entity_id=f"{cid}_e0", invoice_mode=by_invoice)
    api.track(cid, "messages", 3, entity_id=f"{cid}_e0")


def _entities_world(api: Api, first: bool) -> None:
    """Entities of several customers: paid ones (past due after a renewal), ones with usage limits
    (their own, their customer's, their plan's) and plain ones; 3 of them at first, 12 once more come."""
    if first:
        _catalog(api)
        api.plan("team", [{"feature_id": "messages", "included": 1000, "reset": MONTH}], name="Team")
        api("plans.update", plan_id="team", price={"amount": 20, "interval": "month"})
        _paid_entities(api, "payer0", 1)
        _limited(api, "lim0", 4)  # its entity lim0_seat
        api.customer("plain0")
        api("entities.create", customer_id="plain0", entity_id="plain0_e0", feature_id="seats")
    else:
        _paid_entities(api, "payer1", 3)
        _limited(api, "lim1", 6)
        api("entities.create", customer_id="lim1", entity_id="lim1_free", feature_id="seats")
        api("entities.create", customer_id="lim0", entity_id="lim0_free", feature_id="seats")
        api.customer("plain1")
        for i in range(2):
            api("entities.create", customer_id="plain1", entity_id=f"plain1_e{i}", feature_id="seats")
        api("entities.create", customer_id="plain0", entity_id="plain0_e1", feature_id="seats")
    api.advance(days=32)  # the paid plans renew; with no card, the renewals are past due
    for cid in {e["customer_id"] for e in api("entities.list", limit=100)["list"]}:
        api("customers.get", customer_id=cid)  # the renewals (maintenance) run before the page is read
    for cid in ("lim0",) if first else ("lim0", "lim1"):  # usage in the windows of the new month
        api.track(cid, "credits", 2, entity_id=f"{cid}_seat")
        api.track(cid, "messages", 3, entity_id=f"{cid}_seat")
        api.track(cid, "messages", 1)


def _entity_page_statements(statements: SqliteStatements, api: Api) -> list[str]:
    seen = statements.sql_during(api, "entities.list", limit=100)
    return [
        s
        for s in seen
        if "api_keys" not in s
        and "api_request_log" not in s
        and not s.startswith("PRAGMA")
        and s.split(None, 1)[0].upper() not in _TRANSACTION_CONTROL
    ]


def _assert_listed_entities_are_got(api: Api, count: int) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = api("entities.list", limit=100)["list"]
    assert len(listed) == count
    for entity in listed:
        got = api("entities.get", customer_id=entity["customer_id"], entity_id=entity["id"])
        assert entity == got, entity["id"]
    return listed


def test_an_entities_page_reads_in_statements_that_do_not_grow_with_its_entities(
    counted: tuple[Api, SqliteStatements],
) -> None:
    api, statements = counted
    _entities_world(api, first=True)
    three = _entity_page_statements(statements, api)
    _assert_listed_entities_are_got(api, 3)
    _entities_world(api, first=False)
    twelve = _entity_page_statements(statements, api)
    assert len(twelve) == len(three), "\n".join(twelve)
    # the page, its customers, their sources, their plan instances, the past-due set, the windows
    assert len(three) <= 6, "\n".join(three)
    assert len(_windows(twelve)) == 1, "\n".join(twelve)
    _assert_listed_entities_are_got(api, 12)


def test_each_listed_entity_is_the_entity_get_answers(api: Api) -> None:
    _entities_world(api, first=True)
    _entities_world(api, first=False)
    listed = _assert_listed_entities_are_got(api, 12)
    past_due = {
        e["id"]: [(s["plan_id"], s["past_due"]) for s in e["subscriptions"]]
        for e in listed
        if e["subscriptions"]
    }
    assert past_due == {"payer0_e0": [("team", True)], "payer1_e0": [("team", True)]}
    shown = {
        e["id"]: [(u["feature_id"], u["source"], u["usage"]) for u in e["billing_controls"]["usage_limits"]]
        for e in listed
        if e["id"].startswith("lim")
    }
    assert shown == {  # the plan's limit counts all of the customer's messages (3 + 1)
        "lim0_seat": [("credits", "customer", 2), ("messages", "plan", 4)],
        "lim0_free": [("messages", "plan", 4)],
        "lim1_seat": [("credits", "customer", 2), ("messages", "plan", 4)],
        "lim1_free": [("messages", "plan", 4)],
    }
