"""The current API's new fields on existing operations: track's ``timestamp``, ``overage_behavior``
and ``async``, ``balances.create``'s ``next_reset_at``, ``balances.update``'s ``expires_at``,
``events.aggregate``'s ``aggregate_on``, and the rollovers' ``granted``."""

from __future__ import annotations

import itertools

from .helpers import Api

MONTH = {"interval": "month"}
DAY_MS = 86_400_000


def _messages(api: Api, included: float = 10) -> None:
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": included, "reset": MONTH}], auto_enable=True)
    api.customer("u1")


def test_track_timestamp_is_the_events(api: Api) -> None:
    _messages(api)
    stamp = api.clock.now_ms() - 3_600_000
    api.track("u1", "messages", 2, timestamp=stamp)
    api.track("u1", "messages", 1)
    events = api("events.list", customer_id="u1")["list"]
    assert sorted(e["timestamp"] for e in events) == [stamp, api.clock.now_ms()]
    assert api.error("track", customer_id="u1", feature_id="messages", timestamp=0).status == 400
    assert api.error("track", customer_id="u1", feature_id="messages", timestamp="soon").status == 400


def test_overage_behavior_cap_and_overflow(api: Api) -> None:
    _messages(api)
    capped = api.track("u1", "messages", 8)
    capped = api.track("u1", "messages", 8, overage_behavior="cap")
    assert capped["balance"]["usage"] == 10 and capped["balance"]["remaining"] == 0
    assert capped["deductions"][0]["value"] == 2
    api.customer("u2")
    api.track("u2", "messages", 8)
    over = api.track("u2", "messages", 8, overage_behavior="overflow")
    assert [d["value"] for d in over["deductions"]] == [8]  # one entry per balance
    assert over["balance"]["usage"] == 16 and over["balance"]["remaining"] == 0
    assert api.check("u2", "messages")["allowed"] is False
    # the balance went to -6: giving 7 back leaves 1
    assert api.track("u2", "messages", -7)["balance"]["remaining"] == 1
    bad = api.error("track", customer_id="u1", feature_id="messages", overage_behavior="explode")
    assert (bad.status, bad.code) == (400, "invalid_inputs")


def test_async_track_is_applied_and_answered_without_balance(api: Api) -> None:
    _messages(api)
    res = api.track("u1", "messages", 3, **{"async": True})
    assert res == {"customer_id": "u1", "value": 3, "balance": None}
    assert api.balance("u1", "messages")["usage"] == 3  # type: ignore[index]
    sync = api.track("u1", "messages", 1, **{"async": False})
    assert sync["balance"]["usage"] == 4
    assert len(api("events.list", customer_id="u1")["list"]) == 2


def test_balances_create_next_reset_at(api: Api) -> None:
    api.feature("credits")
    api.customer("u1")
    first = api.clock.now_ms() + 3 * DAY_MS
    api(
        "balances.create",
        customer_id="u1",
        feature_id="credits",
        included_grant=10,
        reset=MONTH,
        next_reset_at=first,
    )
    balance = api.balance("u1", "credits")
    assert balance is not None and balance["next_reset_at"] == first
    api.track("u1", "credits", 4)
    api.advance(days=4)
    balance = api.balance("u1", "credits")
    assert balance is not None and balance["usage"] == 0 and balance["next_reset_at"] > first
    without_reset = api.error(
        "balances.create",
        customer_id="u1",
        feature_id="credits",
        included_grant=1,
        next_reset_at=first + 10 * DAY_MS,
    )
    assert without_reset.status == 400
    past = api.error(
        "balances.create",
        customer_id="u1",
        feature_id="credits",
        included_grant=1,
        reset=MONTH,
        next_reset_at=1,
    )
    assert past.status == 400


def test_balances_update_expires_at(api: Api) -> None:
    api.feature("credits")
    api.customer("u1")
    api("balances.create", customer_id="u1", feature_id="credits", included_grant=10, balance_id="b1")
    api("balances.create", customer_id="u1", feature_id="credits", included_grant=5, balance_id="b2")
    when = api.clock.now_ms() + 2 * DAY_MS
    api("balances.update", customer_id="u1", feature_id="credits", balance_id="b1", expires_at=when)
    balance = api.balance("u1", "credits")
    assert balance is not None
    assert {r["id"]: r["expires_at"] for r in balance["breakdown"]} == {"b1": when, "b2": None}
    api.advance(days=3)
    balance = api.balance("u1", "credits")
    assert balance is not None and balance["granted"] == 5
    past = api.error("balances.update", customer_id="u1", feature_id="credits", balance_id="b2", expires_at=1)
    assert past.status == 400


def test_aggregate_on_deducted(api: Api) -> None:
    api.feature("action")
    api.feature(
        "credits", "credit_system", credit_schema=[{"metered_feature_id": "action", "credit_cost": 2}]
    )
    api.plan(
        "free",
        [
            {"feature_id": "action", "included": 3, "reset": MONTH},
            {"feature_id": "credits", "included": 100, "reset": MONTH},
        ],
        auto_enable=True,
    )
    api.customer("u1")
    api.track("u1", "action", 5, properties={"model": "a"})
    api.track("u1", "action", 1, properties={"model": "b"})
    plain = api("events.aggregate", customer_id="u1", feature_id="action", range="7d")
    agg = api("events.aggregate", customer_id="u1", feature_id="action", range="7d", aggregate_on="deducted")
    assert "deductions" not in plain
    assert agg["list"] == plain["list"] and agg["total"] == plain["total"]
    assert [d["period"] for d in agg["deductions"]] == [p["period"] for p in agg["list"]]
    today = next(d for d in agg["deductions"] if d["values"])
    action, credits = today["values"]["action"], today["values"]["credits"]
    assert (action["feature_type"], action["deducted"], action["events"]) == ("metered", 3, 1)
    assert (credits["feature_type"], credits["deducted"], credits["events"]) == ("credit_system", 6, 2)
    [row] = credits["balances"]
    assert row["plan_id"] == "free" and row["entity_id"] is None and row["credit_cost"] == 2
    assert row["deducted"] == 6 and row["events"] == 2
    assert action["balances"][0]["credit_cost"] is None
    grouped = api(
        "events.aggregate",
        customer_id="u1",
        feature_id="action",
        range="7d",
        aggregate_on="deducted",
        group_by="properties.model",
    )
    today = next(d for d in grouped["deductions"] if d["values"])
    assert today["grouped_values"][row["balance_id"]] == {
        "a": {"deducted": 4, "credit_cost": 2},
        "b": {"deducted": 2, "credit_cost": 2},
    }
    weekly = api("events.aggregate", customer_id="u1", feature_id="action", range="30d", bin_size="week")
    periods = [p["period"] for p in weekly["list"]]
    assert all(b - a == 7 * DAY_MS for a, b in itertools.pairwise(periods)) and len(periods) in (5, 6)
    assert all((p // DAY_MS + 3) % 7 == 0 for p in periods)  # Mondays
    assert sum(p["values"]["action"] for p in weekly["list"]) == 6
    needs_customer = api.error("events.aggregate", feature_id="action", range="7d", aggregate_on="deducted")
    assert needs_customer.status == 400


def test_rollover_granted_is_what_rolled_over(api: Api) -> None:
    api.feature("messages")
    rollover = {"max": 500, "expiry_duration_type": "month", "expiry_duration_length": 1}
    api.plan(
        "free",
        [{"feature_id": "messages", "included": 100, "reset": MONTH, "rollover": rollover}],
        auto_enable=True,
    )
    api.customer("u1")
    api.track("u1", "messages", 40)
    api.advance(days=31)
    api.track("u1", "messages", 25)
    balance = api.balance("u1", "messages")
    assert balance is not None
    assert [(r["granted"], r["balance"]) for r in balance["rollovers"]] == [(60, 35)]
    checked = api.check("u1", "messages")["balance"]
    assert checked["rollovers"][0]["granted"] == 60
