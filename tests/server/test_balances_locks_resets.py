"""balances.create/update/delete, locks and finalize, lazy resets and rollovers (§4)."""

from __future__ import annotations

from .helpers import Api

MONTH = {"interval": "month"}
DAY = 86_400_000


def test_bc1_loose_lifetime_balance(api: Api) -> None:
    api.feature("credits")
    api.customer("u1")
    assert api("balances.create", customer_id="u1", feature_id="credits", included_grant=500) == {
        "success": True
    }
    b = api.balance("u1", "credits")
    assert b is not None and (b["granted"], b["remaining"]) == (500, 500)
    row = b["breakdown"][0]
    assert row["plan_id"] is None and row["reset"] == {"interval": "one_off", "resets_at": None}


def test_balances_create_validation(api: Api) -> None:
    api.feature("credits")
    api.feature("flag", "boolean")
    api.customer("u1")
    assert api.error("balances.create", customer_id="u1", feature_id="credits").status == 400
    assert (
        api.error(
            "balances.create", customer_id="u1", feature_id="credits", included_grant=1, unlimited=True
        ).status
        == 400
    )
    assert (
        api.error(
            "balances.create", customer_id="u1", feature_id="credits", unlimited=True, reset=MONTH
        ).status
        == 400
    )
    assert (
        api.error(
            "balances.create",
            customer_id="u1",
            feature_id="credits",
            included_grant=5,
            rollover={"max": 5, "length": 1},
        ).status
        == 400
    )
    api("balances.create", customer_id="u1", feature_id="flag")
    assert api.error("balances.create", customer_id="u1", feature_id="flag").status == 409
    assert api.check("u1", "flag")["allowed"] is True
    api("balances.create", customer_id="u1", feature_id="credits", included_grant=5, balance_id="b1")
    assert (
        api.error(
            "balances.create", customer_id="u1", feature_id="credits", included_grant=5, balance_id="b1"
        ).status
        == 409
    )
    assert (
        api.error("balances.create", customer_id="u1", feature_id="nope", included_grant=5).code
        == "feature_not_found"
    )


def test_bu1_bu2_update_remaining_and_grant(api: Api) -> None:
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": 100, "reset": MONTH}], auto_enable=True)
    api.customer("u1")
    api("balances.update", customer_id="u1", feature_id="messages", remaining=80)
    b = api.balance("u1", "messages")
    assert b is not None and (b["granted"], b["remaining"], b["usage"]) == (100, 80, 20)
    api("balances.update", customer_id="u1", feature_id="messages", remaining=120)
    b = api.balance("u1", "messages")
    assert b is not None and (b["granted"], b["remaining"], b["usage"]) == (100, 120, -20)
    api.customer("u2")
    api("balances.update", customer_id="u2", feature_id="messages", included_grant=150)
    b = api.balance("u2", "messages")
    assert b is not None and (b["granted"], b["remaining"], b["usage"]) == (150, 100, 50)
    err = api.error("balances.update", customer_id="u2", feature_id="messages", remaining=1, add_to_balance=1)
    assert err.status == 400


def test_bu3_update_restricted_by_interval(api: Api) -> None:
    api.feature("messages")
    api.plan(
        "free",
        [
            {"feature_id": "messages", "included": 100, "reset": MONTH},
            {"feature_id": "messages", "included": 50},
        ],
        auto_enable=True,
    )
    api.customer("u1")
    api(
        "balances.update",
        customer_id="u1",
        feature_id="messages",
        interval="month",
        remaining=50,
        included_grant=75,
    )
    b = api.balance("u1", "messages")
    assert b is not None and (b["granted"], b["remaining"], b["usage"]) == (125, 100, 25)
    rows = {r["reset"]["interval"]: r for r in b["breakdown"]}
    assert (rows["month"]["included_grant"], rows["month"]["remaining"], rows["month"]["usage"]) == (
        75,
        50,
        25,
    )
    assert (rows["one_off"]["included_grant"], rows["one_off"]["remaining"]) == (50, 50)


def test_add_to_balance_and_usage(api: Api) -> None:
    api.feature("messages")
    api.customer("u1")
    api("balances.create", customer_id="u1", feature_id="messages", included_grant=100)
    api("balances.update", customer_id="u1", feature_id="messages", add_to_balance=-30)
    assert api.balance("u1", "messages")["remaining"] == 70  # type: ignore[index]
    api("balances.update", customer_id="u1", feature_id="messages", usage=10)
    b = api.balance("u1", "messages")
    assert b is not None and (b["remaining"], b["usage"]) == (90, 10)


def test_balances_delete_with_recalculation(api: Api) -> None:
    api.feature("messages")
    api.customer("u1")
    api("balances.create", customer_id="u1", feature_id="messages", included_grant=100, balance_id="a")
    api("balances.create", customer_id="u1", feature_id="messages", included_grant=100, balance_id="b")
    api.track("u1", "messages", 30)
    api("balances.delete", customer_id="u1", feature_id="messages", balance_id="a", recalculate_balances=True)
    b = api.balance("u1", "messages")
    assert b is not None and [r["id"] for r in b["breakdown"]] == ["b"] and b["remaining"] == 70
    assert (
        api.error("balances.delete", customer_id="u1", feature_id="messages", balance_id="zzz").status == 404
    )


def _hourly_monthly(api: Api) -> None:
    api.feature("messages")
    api.plan(
        "free",
        [
            {"feature_id": "messages", "included": 5, "reset": {"interval": "hour"}},
            {"feature_id": "messages", "included": 10, "reset": MONTH},
        ],
        auto_enable=True,
    )
    api.customer("u1")


def _event_values(api: Api) -> list[float]:
    return [e["value"] for e in api("events.list", customer_id="u1")["list"]]


def test_l1_lock_then_release(api: Api) -> None:
    _hourly_monthly(api)
    res = api.check("u1", "messages", required_balance=8, lock={"enabled": True, "lock_id": "l1"})
    assert res["allowed"] is True and res["balance"]["remaining"] == 7
    assert api("balances.finalize", lock_id="l1", action="release") == {"success": True}
    assert api.balance("u1", "messages")["remaining"] == 15  # type: ignore[index]
    assert _event_values(api) == [-8, 8]
    err = api.error("balances.finalize", lock_id="l1", action="release")
    assert (err.status, err.code) == (400, "invalid_request") and "Lock not found for ID: l1" in err.body[
        "message"
    ]


def test_l2_l3_release_after_track_and_confirm_override(api: Api) -> None:
    _hourly_monthly(api)
    api.track("u1", "messages", 5)
    api.check("u1", "messages", required_balance=8, lock={"enabled": True, "lock_id": "l2"})
    api("balances.finalize", lock_id="l2", action="release")
    assert api.balance("u1", "messages")["remaining"] == 10  # type: ignore[index]
    api.customer("u3")
    api.check("u3", "messages", required_balance=8, lock={"enabled": True, "lock_id": "l3"})
    api("balances.finalize", lock_id="l3", action="confirm", override_value=11)
    assert api.balance("u3", "messages")["remaining"] == 4  # type: ignore[index]
    assert [e["value"] for e in api("events.list", customer_id="u3")["list"]] == [3, 8]


def test_lock_id_reuse_and_expiry_releases(api: Api) -> None:
    _hourly_monthly(api)
    now = api.clock.now_ms()
    api.check(
        "u1",
        "messages",
        required_balance=4,
        lock={"enabled": True, "lock_id": "held", "expires_at": now + 60_000},
    )
    err = api.error(
        "check", customer_id="u1", feature_id="messages", lock={"enabled": True, "lock_id": "held"}
    )
    assert (err.status, err.code) == (409, "lock_already_exists")
    assert api.balance("u1", "messages")["remaining"] == 11  # type: ignore[index]
    api.advance(ms=120_000)
    assert api.balance("u1", "messages")["remaining"] == 15  # type: ignore[index]
    assert api.error("balances.finalize", lock_id="held", action="confirm").status == 400


def test_reset_happens_without_calls_at_boundary(api: Api) -> None:
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": 100, "reset": MONTH}], auto_enable=True)
    first = api.customer("u1")["balances"]["messages"]["next_reset_at"]
    api.track("u1", "messages", 60)
    api.advance(days=95)  # three boundaries pass with nobody calling
    b = api.balance("u1", "messages")
    assert b is not None and (b["remaining"], b["usage"]) == (100, 0)
    assert b["next_reset_at"] > api.clock.now_ms() + 95 * DAY - 31 * DAY
    assert b["next_reset_at"] != first


def test_r1_rollover_on_reset(api: Api) -> None:
    api.feature("messages")
    api.plan(
        "free",
        [
            {
                "feature_id": "messages",
                "included": 400,
                "reset": MONTH,
                "rollover": {"max": 500, "expiry_duration_type": "month", "expiry_duration_length": 1},
            }
        ],
        auto_enable=True,
    )
    reset_at = api.customer("u1")["balances"]["messages"]["next_reset_at"]
    api.track("u1", "messages", 250)
    api.advance(days=31)
    b = api.balance("u1", "messages")
    assert b is not None and b["remaining"] == 550
    assert b["rollovers"] == [{"granted": 150, "balance": 150, "expires_at": b["rollovers"][0]["expires_at"]}]
    assert b["rollovers"][0]["expires_at"] > reset_at
    assert b["granted"] - b["usage"] == b["remaining"]
    # rollovers drain first
    api.track("u1", "messages", 100)
    b = api.balance("u1", "messages")
    assert b is not None and b["rollovers"][0]["balance"] == 50
    assert b["rollovers"][0]["granted"] == 150  # as rolled over, before the 100 used
    assert {r["plan_id"]: r["remaining"] for r in b["breakdown"]} == {"free": 400}


def test_rollover_cap_trims_oldest(api: Api) -> None:
    api.feature("messages")
    api.plan(
        "free",
        [
            {
                "feature_id": "messages",
                "included": 400,
                "reset": MONTH,
                "rollover": {"max": 500, "expiry_duration_type": "forever"},
            }
        ],
        auto_enable=True,
    )
    api.customer("u1")
    api.track("u1", "messages", 300)  # 100 left
    api.advance(days=31)  # rollover 100
    api.advance(days=31)  # rollover 400 more, total 500 (cap)
    api.advance(days=31)  # +400 -> trimmed to 500, oldest first
    b = api.balance("u1", "messages")
    assert b is not None
    assert sum(r["balance"] for r in b["rollovers"]) == 500
    assert all(r["expires_at"] == 0 for r in b["rollovers"])
    assert b["remaining"] == 900


def test_loose_balance_with_reset_and_expiry(api: Api) -> None:
    api.feature("credits")
    api.customer("u1")
    now = api.clock.now_ms()
    api(
        "balances.create",
        customer_id="u1",
        feature_id="credits",
        included_grant=10,
        reset={"interval": "day"},
        balance_id="daily",
    )
    api(
        "balances.create",
        customer_id="u1",
        feature_id="credits",
        included_grant=5,
        expires_at=now + 2 * DAY,
        balance_id="short",
    )
    api.track("u1", "credits", 12)
    api.advance(days=1, hours=1)
    b = api.balance("u1", "credits")
    assert b is not None and b["remaining"] == 13  # daily reset to 10, short still has 3
    api.advance(days=2)
    b = api.balance("u1", "credits")
    assert b is not None and [r["id"] for r in b["breakdown"]] == ["daily"] and b["remaining"] == 10


def test_customer_test_clock_only_moves_that_customer(api: Api) -> None:
    api.feature("messages")
    api.plan(
        "free", [{"feature_id": "messages", "included": 10, "reset": {"interval": "day"}}], auto_enable=True
    )
    api.customer("a")
    api.customer("b")
    api.track("a", "messages", 10)
    api.track("b", "messages", 10)
    api("customers.advance_test_clock", customer_id="a", advance_by_ms=2 * DAY)
    assert api.balance("a", "messages")["remaining"] == 10  # type: ignore[index]
    assert api.balance("b", "messages")["remaining"] == 0  # type: ignore[index]


def test_plain_check_sees_an_expired_lock_released(api: Api) -> None:
    _hourly_monthly(api)
    now = api.clock.now_ms()
    api.check(
        "u1",
        "messages",
        required_balance=15,
        lock={"enabled": True, "lock_id": "gone", "expires_at": now + 1000},
    )
    assert api.check("u1", "messages")["allowed"] is False
    api.advance(ms=5000)
    res = api.check("u1", "messages", required_balance=15)
    assert res["allowed"] is True and res["balance"]["remaining"] == 15


def test_track_with_lock_and_l4_negative_lock(api: Api) -> None:
    _hourly_monthly(api)
    api.track("u1", "messages", 4, lock={"enabled": True, "lock_id": "t-lock"})
    assert api.balance("u1", "messages")["remaining"] == 11  # type: ignore[index]
    api("balances.finalize", lock_id="t-lock", action="confirm", override_value=1)
    assert api.balance("u1", "messages")["remaining"] == 14  # type: ignore[index]
    assert [e["value"] for e in api("events.list", customer_id="u1")["list"]] == [-3, 4]
    api.track("u1", "messages", 10)
    api.check("u1", "messages", required_balance=-5, lock={"enabled": True, "lock_id": "neg"})
    assert api.balance("u1", "messages")["remaining"] == 9  # type: ignore[index]
    api("balances.finalize", lock_id="neg", action="confirm", override_value=-8)
    assert api.balance("u1", "messages")["remaining"] == 12  # type: ignore[index]
