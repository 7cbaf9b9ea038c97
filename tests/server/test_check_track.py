"""check and track scenarios (billing-semantics core rules 1, 3, 4, 5, 6 and §2-3)."""

from __future__ import annotations

import pytest

from .helpers import Api

MONTH = {"interval": "month"}


def _messages_plan(api: Api, included: float = 100, **item: object) -> None:
    api.feature("messages")
    api.plan(
        "free", [{"feature_id": "messages", "included": included, "reset": MONTH, **item}], auto_enable=True
    )


def test_b1_balance_shape_after_track(api: Api) -> None:
    _messages_plan(api)
    api.customer("u1")
    api.track("u1", "messages", 28)
    bal = api.balance("u1", "messages")
    assert bal is not None
    assert (bal["granted"], bal["remaining"], bal["usage"]) == (100, 72, 28)
    assert bal["unlimited"] is False and bal["overage_allowed"] is False and bal["max_purchase"] is None
    row = bal["breakdown"][0]
    assert row["plan_id"] == "free" and row["included_grant"] == 100 and row["prepaid_grant"] == 0
    assert row["reset"]["interval"] == "month" and row["reset"]["resets_at"] == bal["next_reset_at"]
    assert bal["next_reset_at"] > api.clock.now_ms()


def test_c1_no_plans_denies_with_null_balance(api: Api) -> None:
    api.feature("messages")
    api.customer("u1")
    res = api.check("u1", "messages")
    assert res == {
        "allowed": False,
        "customer_id": "u1",
        "entity_id": None,
        "required_balance": 1,
        "balance": None,
        "flag": None,
    }


def test_c2_required_balance(api: Api) -> None:
    _messages_plan(api, 5)
    api.customer("u1")
    assert api.track("u1", "messages", 3)["balance"]["remaining"] == 2
    denied = api.check("u1", "messages", required_balance=3)
    assert denied["allowed"] is False and denied["balance"]["remaining"] == 2
    assert api.check("u1", "messages")["allowed"] is True


def test_c4_credit_system_conversion(api: Api) -> None:
    api.feature("action1")
    api.feature(
        "credits", "credit_system", credit_schema=[{"metered_feature_id": "action1", "credit_cost": 0.2}]
    )
    api.plan("free", [{"feature_id": "credits", "included": 100, "reset": MONTH}], auto_enable=True)
    api.customer("u1")
    res = api.check("u1", "action1", required_balance=6)
    assert res["allowed"] is True and res["required_balance"] == 1.2
    assert res["balance"]["feature_id"] == "credits"


def test_c5_boolean_flag(api: Api) -> None:
    api.feature("dashboard", "boolean")
    api.plan("free", [{"feature_id": "dashboard"}], auto_enable=True)
    api.customer("u1")
    res = api.check("u1", "dashboard")
    assert res["allowed"] is True and res["balance"] is None
    assert res["flag"]["plan_id"] == "free" and res["flag"]["feature_id"] == "dashboard"
    assert res["flag"]["expires_at"] is None
    cust = api("customers.get", customer_id="u1")
    assert "dashboard" in cust["flags"] and "dashboard" not in cust["balances"]
    err = api.error("check", customer_id="u1", feature_id="dashboard", send_event=True)
    assert err.status == 400 and err.code == "invalid_request"


def test_t1_default_value_and_fractions(api: Api) -> None:
    _messages_plan(api)
    api.customer("u1")
    api.customer("u2")
    res = api.track("u1", "messages")
    assert res["value"] == 1 and res["balance"]["remaining"] == 99 and res["balance"]["usage"] == 1
    res = api.track("u2", "messages", 23.47)
    assert res["balance"]["remaining"] == 76.53 and res["balance"]["usage"] == 23.47


def test_t2_refunds_capped_at_grant(api: Api) -> None:
    _messages_plan(api)
    api.customer("u1")
    api.track("u1", "messages", 30)
    b = api.track("u1", "messages", -10)["balance"]
    assert (b["remaining"], b["usage"]) == (80, 20)
    b = api.track("u1", "messages", -50)["balance"]
    assert (b["remaining"], b["usage"]) == (100, 0)
    api.track("u1", "messages", 10)
    assert api.track("u1", "messages", -4)["deductions"][0]["value"] == -4


def test_t3_free_allocated_goes_negative(api: Api) -> None:
    api.feature("users", consumable=False)
    api.plan("free", [{"feature_id": "users", "included": 5}], auto_enable=True)
    api.customer("u1")
    b = api.track("u1", "users", 8)["balance"]
    assert (b["granted"], b["remaining"], b["usage"]) == (5, 0, 8)
    assert api.check("u1", "users")["allowed"] is False
    b = api.track("u1", "users", -2)["balance"]
    assert (b["remaining"], b["usage"]) == (0, 6)
    b = api.track("u1", "users", -2)["balance"]
    assert (b["remaining"], b["usage"]) == (1, 4)
    b = api.track("u1", "users", -20)["balance"]
    assert (b["granted"], b["remaining"], b["usage"]) == (5, 5, 0)


def test_t4_credit_fallback(api: Api) -> None:
    api.feature("action1")
    api.feature(
        "credits", "credit_system", credit_schema=[{"metered_feature_id": "action1", "credit_cost": 0.2}]
    )
    api.plan(
        "free",
        [
            {"feature_id": "action1", "included": 100, "reset": MONTH},
            {"feature_id": "credits", "included": 200, "reset": MONTH},
        ],
        auto_enable=True,
    )
    api.customer("u1")
    res = api.track("u1", "action1", 40.5)
    assert res["balance"]["feature_id"] == "action1" and res["balance"]["remaining"] == 59.5
    assert set(res["balances"]) == {"action1", "credits"} and res["balances"]["credits"]["remaining"] == 200
    res = api.track("u1", "action1", 80)
    assert res["balances"]["action1"]["remaining"] == 0 and res["balances"]["action1"]["usage"] == 100
    assert res["balances"]["credits"]["remaining"] == 195.9
    credit_rows = [d for d in res["deductions"] if d["feature_id"] == "credits"]
    assert credit_rows[0]["value"] == 4.1


def test_t5_interval_order_and_rule4_example(api: Api) -> None:
    api.feature("messages")
    api.plan(
        "a",
        [
            {"feature_id": "messages", "included": 500, "reset": MONTH},
            {"feature_id": "messages", "included": 200},
        ],
        auto_enable=True,
    )
    api.customer("u1")
    api.track("u1", "messages", 400)
    rows = {r["reset"]["interval"]: r for r in api.balance("u1", "messages")["breakdown"]}  # type: ignore[index]
    assert rows["month"]["remaining"] == 100 and rows["one_off"]["remaining"] == 200
    api.track("u1", "messages", 200)
    rows = {r["reset"]["interval"]: r for r in api.balance("u1", "messages")["breakdown"]}  # type: ignore[index]
    assert rows["month"]["remaining"] == 0 and rows["one_off"]["remaining"] == 100
    api.advance(days=32)
    b = api.balance("u1", "messages")
    assert b is not None and b["remaining"] == 600
    rows = {r["reset"]["interval"]: r for r in b["breakdown"]}
    assert rows["month"]["remaining"] == 500 and rows["one_off"]["remaining"] == 100


def test_t6_sooner_expiry_first(api: Api) -> None:
    api.feature("credits")
    api.customer("u1")
    now = api.clock.now_ms()
    api(
        "balances.create",
        customer_id="u1",
        feature_id="credits",
        included_grant=100,
        expires_at=now + 365 * 86_400_000,
        balance_id="later-expiry",
    )
    api(
        "balances.create",
        customer_id="u1",
        feature_id="credits",
        included_grant=100,
        expires_at=now + 30 * 86_400_000,
        balance_id="sooner-expiry",
    )
    api.track("u1", "credits", 60)
    rows = {r["id"]: r for r in api.balance("u1", "credits")["breakdown"]}  # type: ignore[index]
    assert rows["sooner-expiry"]["remaining"] == 40 and rows["later-expiry"]["remaining"] == 100


def test_t7_cap_and_reject(api: Api) -> None:
    _messages_plan(api)
    api.customer("u1")
    b = api.track("u1", "messages", 150)["balance"]
    assert (b["remaining"], b["usage"]) == (0, 100)
    err = api.error("track", customer_id="u1", feature_id="messages", value=1, overage_behavior="reject")
    assert err.status == 400 and err.code == "insufficient_balance"
    assert "Insufficient balance to deduct 1 from feature messages" in err.body["message"]


def test_s3_overage_allowed_control(api: Api) -> None:
    _messages_plan(api)
    api.customer("u1", billing_controls={"overage_allowed": [{"feature_id": "messages", "enabled": True}]})
    b = api.track("u1", "messages", 150)["balance"]
    assert (b["usage"], b["remaining"]) == (150, 0)
    assert api.check("u1", "messages")["allowed"] is True
    assert b["overage_allowed"] is False


def test_overage_control_with_spend_limit(api: Api) -> None:
    _messages_plan(api)
    api.customer(
        "u1",
        billing_controls={
            "overage_allowed": [{"feature_id": "messages", "enabled": True}],
            "spend_limits": [{"feature_id": "messages", "enabled": True, "overage_limit": 25}],
        },
    )
    api.track("u1", "messages", 130)
    b = api.track("u1", "messages", 10)["balance"]
    assert (b["remaining"], b["usage"]) == (0, 125)
    assert api.check("u1", "messages")["allowed"] is False


def test_unlimited_absorbs_everything(api: Api) -> None:
    api.feature("messages")
    api.plan(
        "free",
        [
            {"feature_id": "messages", "unlimited": True},
            {"feature_id": "messages", "included": 10, "reset": MONTH},
        ],
        auto_enable=True,
    )
    api.customer("u1")
    b = api.track("u1", "messages", 1000)["balance"]
    assert b["unlimited"] is True and b["usage"] == 1000 and b["granted"] == 0 and b["remaining"] == 0
    assert len(b["breakdown"]) == 1
    assert api.check("u1", "messages", required_balance=10**9)["allowed"] is True


def test_event_name_fans_out(api: Api) -> None:
    api.feature("messages", event_names=["chat"])
    api.feature("tokens", event_names=["chat"])
    api.plan(
        "free",
        [
            {"feature_id": "messages", "included": 10, "reset": MONTH},
            {"feature_id": "tokens", "included": 10, "reset": MONTH},
        ],
        auto_enable=True,
    )
    api.customer("u1")
    res = api("track", customer_id="u1", event_name="chat", value=3, properties={"model": "x"})
    assert res["balance"] is None and res["event_name"] == "chat"
    assert res["balances"]["messages"]["remaining"] == 7 and res["balances"]["tokens"]["remaining"] == 7
    err = api.error("track", customer_id="u1", event_name="unknown")
    assert err.status == 404
    err = api.error("track", customer_id="u1")
    assert err.status == 400 and err.code == "invalid_inputs"


def test_track_without_balance_is_noop_but_recorded(api: Api) -> None:
    api.feature("messages")
    api.customer("u1")
    res = api.track("u1", "messages", 5)
    assert res["balance"] is None and res["deductions"] == []
    assert api("events.list", customer_id="u1")["list"][0]["value"] == 5


@pytest.mark.parametrize("via_header", [False, True])
def test_idempotency_key(api: Api, via_header: bool) -> None:
    _messages_plan(api)
    api.customer("u1")
    if via_header:
        api("track", headers={"Idempotency-Key": "k1"}, customer_id="u1", feature_id="messages", value=5)
        r = api.raw(
            "/v1/balances.track",
            {"customer_id": "u1", "feature_id": "messages", "value": 5},
            **{"Idempotency-Key": "k1"},
        )
        assert r.status_code == 200 and r.headers["idempotent-replayed"] == "true"  # stored, replayed
        other = api.raw(
            "/v1/balances.track", {"customer_id": "u1", "feature_id": "messages"}, **{"Idempotency-Key": "k1"}
        )
        assert other.status_code == 409 and other.json()["code"] == "duplicate_idempotency_key"
    else:
        api.track("u1", "messages", 5, idempotency_key="k1")
        err2 = api.error("track", customer_id="u1", feature_id="messages", value=5, idempotency_key="k1")
        assert err2.status == 409 and err2.code == "duplicate_idempotency_key"
    assert api.balance("u1", "messages")["remaining"] == 95  # type: ignore[index]


def test_failed_request_releases_idempotency_key(api: Api) -> None:
    _messages_plan(api, 1)
    api.customer("u1")
    api.track("u1", "messages", 1)
    err = api.error(
        "track",
        customer_id="u1",
        feature_id="messages",
        value=1,
        overage_behavior="reject",
        idempotency_key="retry-me",
    )
    assert err.code == "insufficient_balance"
    api("balances.update", customer_id="u1", feature_id="messages", remaining=1)
    api.track("u1", "messages", 1, idempotency_key="retry-me", overage_behavior="reject")


def test_send_event_all_or_nothing(api: Api) -> None:
    _messages_plan(api, 5)
    api.customer("u1")
    res = api.check("u1", "messages", required_balance=3, send_event=True)
    assert res["allowed"] is True and res["balance"]["remaining"] == 2
    res = api.check("u1", "messages", required_balance=3, send_event=True)
    assert res["allowed"] is False and res["balance"]["remaining"] == 2
    assert [e["value"] for e in api("events.list", customer_id="u1")["list"]] == [3]


def test_with_preview_lists_upgrades(api: Api) -> None:
    _messages_plan(api, 1)
    api.plan("more", [{"feature_id": "messages", "included": 1000, "reset": MONTH}])
    api.customer("u1")
    api.track("u1", "messages", 1)
    res = api.check("u1", "messages", with_preview=True)
    assert res["allowed"] is False
    preview = res["preview"]
    assert preview["scenario"] == "usage_limit" and preview["feature_id"] == "messages"
    assert [p["id"] for p in preview["products"]] == ["more"]
    assert preview["title"] == "Upgrade to More"
    assert "preview" not in api.check("u1", "messages", with_preview=True, required_balance=0)


def test_unknown_objects(api: Api) -> None:
    _messages_plan(api)
    api.customer("u1")
    err = api.error("check", customer_id="nobody", feature_id="messages")
    assert (err.status, err.code) == (404, "customer_not_found")
    assert err.body["message"] == "Customer nobody not found" and err.body["env"] == "sandbox"
    err = api.error("check", customer_id="u1", feature_id="nothing")
    assert (err.status, err.code) == (404, "feature_not_found")
    err = api.error("track", customer_id="u1", feature_id="messages", entity_id="e404")
    assert (err.status, err.code) == (404, "entity_not_found")
