"""Entities (§6), events (§7), referrals and rewards (§8)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from reference_server.service.events import _floor, _next_bin

from .helpers import Api

MONTH = {"interval": "month"}


def test_e1_entities_use_seats(api: Api) -> None:
    api.feature("users", consumable=False)
    api.plan("free", [{"feature_id": "users", "included": 5}], auto_enable=True)
    api.customer("u1")
    e = api("entities.create", customer_id="u1", entity_id="e1", feature_id="users", name="Ann")
    assert e["id"] == "e1" and e["customer_id"] == "u1" and e["env"] == "sandbox"
    api("entities.create", customer_id="u1", entity_id="e2", feature_id="users")
    b = api.balance("u1", "users")
    assert b is not None and (b["granted"], b["remaining"], b["usage"]) == (5, 3, 2)
    dup = api.error("entities.create", customer_id="u1", entity_id="e2", feature_id="users")
    assert (dup.status, dup.code) == (409, "entity_already_exists")
    assert api("entities.delete", customer_id="u1", entity_id="e2") == {"success": True}
    b = api.balance("u1", "users")
    assert b is not None and (b["remaining"], b["usage"]) == (4, 1)
    missing = api.error("entities.get", customer_id="u1", entity_id="e2")
    assert (missing.status, missing.code) == (404, "entity_not_found")
    listed = api("entities.list", customer_id="u1")
    assert [x["id"] for x in listed["list"]] == ["e1"] and listed["next_cursor"] is None


def test_seats_exhausted_denies_check(api: Api) -> None:
    api.feature("users", consumable=False)
    api.plan("free", [{"feature_id": "users", "included": 1}], auto_enable=True)
    api.customer("u1")
    assert api.check("u1", "users")["allowed"] is True
    api("entities.create", customer_id="u1", entity_id="e1", feature_id="users")
    assert api.check("u1", "users")["allowed"] is False
    api("entities.create", customer_id="u1", entity_id="e2", feature_id="users")  # free seats go negative
    b = api.balance("u1", "users")
    assert b is not None and (b["remaining"], b["usage"]) == (0, 2)


def test_entity_requires_continuous_feature_and_creates_customer(api: Api) -> None:
    api.feature("messages")
    api.feature("users", consumable=False)
    err = api.error("entities.create", customer_id="u1", entity_id="e1", feature_id="messages")
    assert err.status == 400
    api(
        "entities.create",
        customer_id="new-cus",
        entity_id="e1",
        feature_id="users",
        customer_data={"name": "Made by entity"},
    )
    assert api("customers.get", customer_id="new-cus")["name"] == "Made by entity"


def test_e3_e4_entity_scoping(api: Api) -> None:
    api.feature("users", consumable=False)
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": 100, "reset": MONTH}], auto_enable=True)
    api.customer("u1")
    for eid in ("e1", "e2"):
        api("entities.create", customer_id="u1", entity_id=eid, feature_id="users")
    api("balances.create", customer_id="u1", entity_id="e1", feature_id="messages", included_grant=500)
    api("balances.create", customer_id="u1", entity_id="e2", feature_id="messages", included_grant=300)
    e1 = api.balance("u1", "messages", entity_id="e1")
    assert e1 is not None and e1["granted"] == 600 and len(e1["breakdown"]) == 2
    assert api.balance("u1", "messages")["granted"] == 900  # type: ignore[index]
    denied = api.check("u1", "messages", entity_id="e2", required_balance=401)
    assert (
        denied["allowed"] is False and denied["balance"]["remaining"] == 400 and denied["entity_id"] == "e2"
    )
    # Entity tracks drain the entity's own source first, then the shared one.
    api.track("u1", "messages", 550, entity_id="e1")
    rows = {r["plan_id"]: r for r in api.balance("u1", "messages", entity_id="e1")["breakdown"]}  # type: ignore[index]
    assert rows[None]["remaining"] == 0 and rows["free"]["remaining"] == 50
    assert api.balance("u1", "messages", entity_id="e2")["remaining"] == 350  # type: ignore[index]
    # Without an entity, customer-level sources come first.
    api.track("u1", "messages", 60)
    rows = {r["plan_id"]: r["remaining"] for r in api.balance("u1", "messages", entity_id="e2")["breakdown"]}  # type: ignore[index]
    assert rows == {"free": 0, None: 290}


def test_entity_billing_controls_override(api: Api) -> None:
    api.feature("users", consumable=False)
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": 10, "reset": MONTH}], auto_enable=True)
    api.customer("u1")
    api("entities.create", customer_id="u1", entity_id="e1", feature_id="users")
    upd = api(
        "entities.update",
        customer_id="u1",
        entity_id="e1",
        billing_controls={"overage_allowed": [{"feature_id": "messages", "enabled": True}]},
    )
    assert upd["billing_controls"]["overage_allowed"][0]["enabled"] is True
    api.track("u1", "messages", 15, entity_id="e1")
    assert api.balance("u1", "messages")["usage"] == 15  # type: ignore[index]
    api.customer("u2")
    api.track("u2", "messages", 15)
    assert api.balance("u2", "messages")["usage"] == 10  # type: ignore[index]


def test_ev1_events_list_and_aggregate(api: Api) -> None:
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": 100, "reset": MONTH}], auto_enable=True)
    api.customer("u1")
    for v in (1, 2, 3, 4, 5):
        api.track("u1", "messages", v, properties={"kind": "a" if v % 2 else "b"})
    listed = api("events.list", customer_id="u1")
    assert [e["value"] for e in listed["list"]] == [5, 4, 3, 2, 1] and listed["next_cursor"] is None
    assert all(e["id"].startswith("evt_") and e["feature_id"] == "messages" for e in listed["list"])
    pages: list[float] = []
    cursor = ""
    while True:
        page = api("events.list", customer_id="u1", limit=2, start_cursor=cursor)
        pages += [e["value"] for e in page["list"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert pages == [5, 4, 3, 2, 1]
    agg = api("events.aggregate", customer_id="u1", feature_id="messages", range="7d")
    assert agg["total"]["messages"] == {"count": 5, "sum": 15}
    assert agg["list"][-1]["values"]["messages"] == 15
    assert all(b["values"]["messages"] == 0 for b in agg["list"][:-1])
    grouped = api(
        "events.aggregate", customer_id="u1", feature_id="messages", range="24h", group_by="properties.kind"
    )
    last = next(b for b in grouped["list"] if b["values"]["messages"])
    assert last["grouped_values"]["messages"] == {"a": 9, "b": 6}
    assert (
        api.error(
            "events.aggregate", feature_id="messages", range="7d", custom_range={"start": 0, "end": 1}
        ).status
        == 400
    )
    assert api.error("events.aggregate", feature_id="messages", group_by="kind").status == 400
    assert api.error("events.list", customer_id="ghost").status == 404


def test_events_filters_and_custom_range(api: Api) -> None:
    api.feature("messages")
    api.feature("tokens")
    api.customer("u1")
    api.track("u1", "messages", 1)
    start = api.clock.now_ms()
    api.advance(hours=2)
    api.track("u1", "tokens", 2)
    assert [e["feature_id"] for e in api("events.list", customer_id="u1", feature_id="tokens")["list"]] == [
        "tokens"
    ]
    ranged = api(
        "events.list",
        customer_id="u1",
        custom_range={"start": start + 3_600_000, "end": start + 10 * 3_600_000},
    )
    assert [e["value"] for e in ranged["list"]] == [2]


def _reward_setup(api: Api) -> None:
    api.feature("messages")
    api(
        "rewards.create",
        feature_grant={
            "id": "msg10",
            "name": "10 messages",
            "grants": [{"feature_id": "messages", "included": 10, "expiry": None}],
            "promo_codes": [
                {"code": "MESSAGES10", "max_uses": None},
                {"code": "LIMITEDMSG", "max_uses": 5},
                {"code": "NODUPE", "max_uses": None},
            ],
        },
    )


def test_rw1_promo_rewards(api: Api) -> None:
    _reward_setup(api)
    api.customer("u1")
    res = api("rewards.redeem", code="MESSAGES10", customer_id="u1")
    assert res == {"reward_id": "msg10", "entitlements_granted": [{"feature_id": "messages", "balance": 10}]}
    assert api.check("u1", "messages")["balance"]["remaining"] == 10
    for i in range(5):
        api.customer(f"l{i}")
        api("rewards.redeem", code="LIMITEDMSG", customer_id=f"l{i}")
    api.customer("l5")
    err = api.error("rewards.redeem", code="LIMITEDMSG", customer_id="l5")
    assert (err.status, err.code) == (400, "referral_code_max_redemptions_reached")
    api("rewards.redeem", code="NODUPE", customer_id="l5")
    err = api.error("rewards.redeem", code="NODUPE", customer_id="l5")
    assert (err.status, err.code) == (400, "customer_already_redeemed_referral_code")
    err = api.error("rewards.redeem", code="NOPE", customer_id="l5")
    assert (err.status, err.code) == (404, "reward_not_found")


def test_referral_codes(api: Api) -> None:
    _reward_setup(api)
    api(
        "referrals.create_program",
        id="prog",
        reward_id="msg10",
        redeem_on="customer_creation",
        received_by="all",
        max_redemptions=2,
    )
    api.customer("ref", name="Referrer", email="r@example.com")
    code = api("referrals.create_code", customer_id="ref", program_id="prog")
    assert len(code["code"]) == 6 and code["code"].isalnum() and code["code"].upper() == code["code"]
    assert api("referrals.create_code", customer_id="ref", program_id="prog")["code"] == code["code"]
    assert (
        api.error("referrals.create_code", customer_id="ref", program_id="nope").code
        == "reward_program_not_found"
    )
    assert (
        api.error("referrals.create_code", customer_id="ghost", program_id="prog").code
        == "customer_not_found"
    )
    assert (
        api.error("referrals.redeem_code", code=code["code"], customer_id="ref").code
        == "customer_cannot_redeem_own_code"
    )
    api.customer("new1")
    res = api("referrals.redeem_code", code=code["code"], customer_id="new1")
    assert res["id"].startswith("rr_") and res["referrer"]["id"] == "ref" and res["redeemer"]["id"] == "new1"
    assert api.balance("ref", "messages")["remaining"] == 10  # type: ignore[index]
    assert api.balance("new1", "messages")["remaining"] == 10  # type: ignore[index]
    assert (
        api.error("referrals.redeem_code", code=code["code"], customer_id="new1").code
        == "customer_already_redeemed_referral_code"
    )
    api.customer("new2")
    api("referrals.redeem_code", code=code["code"], customer_id="new2")
    api.customer("new3")
    assert (
        api.error("referrals.redeem_code", code=code["code"], customer_id="new3").code
        == "referral_code_max_redemptions_reached"
    )
    assert (
        api.error("referrals.redeem_code", code="ZZZZZZ", customer_id="new3").code
        == "referral_code_not_found"
    )
    referrals = api("customers.get", customer_id="ref", expand=["referrals"])["referrals"]
    assert [r["customer"]["id"] for r in referrals] == ["new1", "new2"]


def test_aggregate_billing_cycle_and_month_bins(api: Api) -> None:
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": 1000, "reset": MONTH}], auto_enable=True)
    api.customer("u1")
    api.track("u1", "messages", 4)
    api.advance(days=40)  # next cycle
    api.track("u1", "messages", 6)
    current = api("events.aggregate", customer_id="u1", feature_id="messages")  # range defaults to 1bc
    assert current["total"]["messages"] == {"count": 1, "sum": 6}
    last = api("events.aggregate", customer_id="u1", feature_id="messages", range="last_cycle")
    assert last["total"]["messages"] == {"count": 1, "sum": 4}
    monthly = api(
        "events.aggregate", customer_id="u1", feature_id=["messages"], range="90d", bin_size="month"
    )
    assert sum(b["values"]["messages"] for b in monthly["list"]) == 10
    assert len(monthly["list"]) in (3, 4)
    assert monthly["total"]["messages"]["count"] == 2


def _expected_aggregate(
    events: list[dict[str, Any]],
    fids: list[str],
    start: int,
    end: int,
    bin_size: str,
    group: Callable[[dict[str, Any]], str] | None = None,
    filter_by: dict[str, str] | None = None,
    max_groups: int = 9,
) -> dict[str, Any]:
    """events.aggregate over a custom range ending by now, event by event (the SQL's reference)."""
    rows = [
        e
        for e in events
        if e["feature_id"] in fids
        and start <= e["timestamp"] <= end
        and all(e["properties"].get(k.removeprefix("properties.")) == v for k, v in (filter_by or {}).items())
    ]
    bins = []
    b = _floor(start, bin_size)
    while b <= _floor(end, bin_size):
        bins.append(b)
        b = _next_bin(b, bin_size)
    magnitude: dict[str, float] = {}
    for e in rows:
        if group is not None:
            magnitude[group(e)] = magnitude.get(group(e), 0.0) + abs(e["value"])
    top = set(sorted(magnitude, key=lambda k: -magnitude[k])[:max_groups])
    data = {p: {"period": p, "values": {f: 0.0 for f in fids}} for p in bins}
    grouped: dict[int, dict[str, dict[str, float]]] = {p: {f: {} for f in fids} for p in bins}
    totals = {f: {"count": 0, "sum": 0.0} for f in fids}
    for e in rows:
        fid, p, v = e["feature_id"], _floor(e["timestamp"], bin_size), e["value"]
        totals[fid] = {"count": totals[fid]["count"] + 1, "sum": round(totals[fid]["sum"] + v, 10)}
        data[p]["values"][fid] = round(data[p]["values"][fid] + v, 10)
        if group is not None:
            k = group(e) if group(e) in top else "Other"
            grouped[p][fid][k] = round(grouped[p][fid].get(k, 0.0) + v, 10)
    listed = [{**data[p], **({"grouped_values": grouped[p]} if group is not None else {})} for p in bins]
    return {"list": listed, "total": totals}


def test_aggregate_groups_filters_and_bins_in_sql(api: Api) -> None:
    """Binning, grouping, filtering and the Other fold match an event-by-event reference."""
    api.feature("messages")
    api.feature("calls")
    api.feature("users", consumable=False)
    api.plan(
        "free",
        [
            {"feature_id": "messages", "included": 10_000, "reset": MONTH},
            {"feature_id": "calls", "included": 10_000, "reset": MONTH},
            {"feature_id": "users", "included": 10},
        ],
        auto_enable=True,
    )
    for cid in ("u1", "u2", "u3"):
        api.customer(cid)
    api("entities.create", customer_id="u1", entity_id="e1", feature_id="users")
    api("entities.create", customer_id="u1", entity_id="e2", feature_id="users")
    props: list[dict[str, Any]] = [
        {"kind": "a", "n": 1, "region": "eu"},
        {"kind": "b", "n": "1", "region": "us"},
        {"kind": "c", "n": 1.0, "flag": True, "a.b": "dotted"},
        {"kind": "d", "n": None, "flag": False, 'q"k': "quoted"},
        {"kind": "a", "n": [1, 2], "region": "eu"},
        {"kind": "e", "n": {"x": 1}, "region": "eu", 'q"k': "quoted"},
        {},
    ]
    entity_of: dict[int, str | None] = {}
    tracked = 0
    for step in range(30):
        # steps of 7 h cross hour, day, week and (the clock starts 2026-01-01) no month yet
        cid = ("u1", "u2", "u3")[step % 3]
        fid = "calls" if step % 4 == 0 else "messages"
        entity = ("e1", "e2", None)[step % 3] if cid == "u1" else None
        value = [1, 2.5, 0.1, 7, 3][step % 5] + step
        extra = {"entity_id": entity} if entity else {}
        api.track(cid, fid, value, properties=props[step % len(props)], **extra)
        entity_of[tracked] = entity
        tracked += 1
        api.advance(hours=7 + step % 3)
    events = list(reversed(api("events.list", limit=1000)["list"]))
    assert len(events) == tracked
    for i, e in enumerate(events):
        e["entity_id"] = entity_of[i]
    first, last = events[0]["timestamp"], events[-1]["timestamp"]
    start, end = first - 5 * 3_600_000 + 123, last
    both = ["messages", "calls"]

    def agg(**kw: Any) -> dict[str, Any]:
        result = api("events.aggregate", custom_range={"start": start, "end": end}, **kw)
        return {"list": result["list"], "total": result["total"]}

    def prop(key: str) -> Callable[[dict[str, Any]], str]:
        return lambda e: str(e["properties"].get(key))

    for bin_size in ("hour", "day", "week", "month"):
        assert agg(feature_id=both, bin_size=bin_size) == _expected_aggregate(
            events, both, start, end, bin_size
        )
    for key in ("kind", "n", "flag", "a.b", 'q"k', "missing"):
        assert agg(feature_id=both, bin_size="day", group_by=f"properties.{key}") == _expected_aggregate(
            events, both, start, end, "day", prop(key)
        ), key
    assert agg(feature_id="messages", bin_size="week", group_by="properties.kind", max_groups=2) == (
        _expected_aggregate(events, ["messages"], start, end, "week", prop("kind"), max_groups=2)
    )
    assert agg(feature_id=both, bin_size="day", group_by="$customer_id", max_groups=1) == _expected_aggregate(
        events, both, start, end, "day", lambda e: e["customer_id"], max_groups=1
    )
    u1 = [e for e in events if e["customer_id"] == "u1"]
    assert agg(
        customer_id="u1", feature_id=both, bin_size="day", group_by="$entity_id"
    ) == _expected_aggregate(u1, both, start, end, "day", lambda e: str(e["entity_id"]))
    e1 = [e for e in u1 if e["entity_id"] == "e1"]
    assert agg(customer_id="u1", entity_id="e1", feature_id=both, bin_size="hour") == _expected_aggregate(
        e1, both, start, end, "hour"
    )
    assert agg(feature_id=both, bin_size="day", group_by="$plan_id") == _expected_aggregate(
        events, both, start, end, "day", lambda e: "free"
    )
    for filter_by in (
        {"properties.region": "eu"},
        {"region": "eu", "kind": "a"},
        {"properties.n": "1"},  # only the string "1", not the numbers 1 and 1.0
        {"properties.flag": "True"},  # booleans are not strings
        {'properties.q"k': "quoted"},
        {"properties.missing": "None"},
    ):
        assert agg(feature_id=both, bin_size="day", group_by="properties.kind", filter_by=filter_by) == (
            _expected_aggregate(events, both, start, end, "day", prop("kind"), filter_by)
        ), filter_by
    # too many hour bins to read one by one: the ungrouped sums come from one pass over the events
    long = end - 90 * 86_400_000
    assert api(
        "events.aggregate", feature_id=both, bin_size="hour", custom_range={"start": long, "end": end}
    ) == (_expected_aggregate(events, both, long, end, "hour"))
    # a range starting mid-bin: the first bin is the one holding the start, events before it are out
    mid = events[10]["timestamp"] - 1
    assert (
        api("events.aggregate", feature_id=both, bin_size="day", custom_range={"start": mid, "end": end})[
            "total"
        ]
        == _expected_aggregate(events, both, mid, end, "day")["total"]
    )
    deducted = api(
        "events.aggregate",
        customer_id="u1",
        feature_id="messages",
        range="30d",
        group_by="properties.kind",
        filter_by={"region": "eu"},
        max_groups=1,
        aggregate_on="deducted",
    )
    eu = [e for e in u1 if e["feature_id"] == "messages" and e["properties"].get("region") == "eu"]
    drawn = [v for b in deducted["deductions"] for v in b["values"].values()]
    assert sum(v["deducted"] for v in drawn) == pytest.approx(sum(e["value"] for e in eu))
    assert {k for b in deducted["deductions"] for g in b.get("grouped_values", {}).values() for k in g} <= {
        "a",
        "e",
        "Other",
    }
