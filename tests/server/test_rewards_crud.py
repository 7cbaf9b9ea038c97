"""Rewards (coupons, feature grants) and referral programs: Autumn's current CRUD, over HTTP.

Also ``customers.advance_test_clock`` in the shape the official SDK sends (``frozen_time``).
"""

from __future__ import annotations

from typing import Any

import pytest

from autumn_sdk import Autumn

from .helpers import Api

DAY = 86_400_000


def _catalogue(api: Api) -> None:
    api.feature("messages")
    api.feature("beta", "boolean")
    api.plan("pro", [{"feature_id": "messages", "included": 100}], price={"amount": 10, "interval": "month"})


def _grant(api: Api, rid: str = "beta_grant", code: str = "BETA") -> dict[str, Any]:
    return api(
        "rewards.create",
        feature_grant={
            "id": rid,
            "name": "Beta credits",
            "grants": [
                {"feature_id": "messages", "included": 10, "expiry": {"type": "month", "length": 1}},
                {"feature_id": "beta", "included": None, "expiry": None},
            ],
            "promo_codes": [{"code": code, "max_uses": 2}],
        },
    )


def _coupon(api: Api, rid: str = "summer_sale", **overrides: Any) -> dict[str, Any]:
    coupon: dict[str, Any] = {
        "id": rid,
        "name": "Summer Sale",
        "type": "percentage_discount",
        "value": 20,
        "duration": {"type": "months", "length": 3},
        "plan_ids": ["pro"],
        "promo_codes": [{"code": "SUMMER20"}],
    }
    return api("rewards.create", coupon=coupon | overrides)


def test_feature_grant_lifecycle(api: Api) -> None:
    _catalogue(api)
    now = api.clock.now_ms()
    created = _grant(api)
    assert created == {
        "feature_grant": {
            "id": "beta_grant",
            "name": "Beta credits",
            "grants": [
                {"feature_id": "messages", "included": 10, "expiry": {"type": "month", "length": 1}},
                {"feature_id": "beta", "included": None, "expiry": None},
            ],
            "promo_codes": [{"code": "BETA", "max_uses": 2}],
            "created_at": now,
        }
    }
    assert api("rewards.get", reward_id="beta_grant") == created
    listed = api("rewards.list")
    assert listed["coupons"] == [] and listed["feature_grants"] == [created["feature_grant"]]

    api.customer("u1")
    res = api("rewards.redeem", code="beta", customer_id="u1")
    assert res["entitlements_granted"][0] == {"feature_id": "messages", "balance": 10}
    assert api.check("u1", "messages")["balance"]["remaining"] == 10
    assert api.check("u1", "beta")["allowed"] is True
    api("customers.advance_test_clock", customer_id="u1", advance_by_ms=32 * DAY)
    assert api.check("u1", "messages")["allowed"] is False  # the month-long grant expired

    updated = api(
        "rewards.update",
        reward_id="beta_grant",
        feature_grant={
            "name": "Beta credits v2",
            "grants": [{"feature_id": "messages", "included": 25, "expiry": None}],
        },
    )["feature_grant"]
    assert updated["name"] == "Beta credits v2"
    assert updated["grants"] == [{"feature_id": "messages", "included": 25, "expiry": None}]
    assert updated["promo_codes"] == [{"code": "BETA", "max_uses": 2}]  # omitted: kept
    assert api("rewards.delete", reward_id="beta_grant") == {"success": True}
    err = api.error("rewards.get", reward_id="beta_grant")
    assert (err.status, err.code) == (404, "reward_not_found")
    assert api.error("rewards.delete", reward_id="beta_grant").status == 404


def test_coupon_lifecycle(api: Api) -> None:
    _catalogue(api)
    coupon = _coupon(api)["coupon"]
    assert {k: coupon[k] for k in ("type", "value", "duration", "plan_ids")} == {
        "type": "percentage_discount",
        "value": 20,
        "duration": {"type": "months", "length": 3},
        "plan_ids": ["pro"],
    }
    assert coupon["promo_codes"] == [
        {"code": "SUMMER20", "global_max_redemption": None, "first_time_transaction": False}
    ]
    everywhere = _coupon(
        api,
        "ten_off",
        type="fixed_discount",
        value=10,
        duration={"type": "forever", "length": None},
        plan_ids=None,
        promo_codes=[{"code": "TEN", "global_max_redemption": 5, "first_time_transaction": True}],
    )["coupon"]
    assert everywhere["plan_ids"] is None and everywhere["duration"] == {"type": "forever", "length": None}
    assert [c["id"] for c in api("rewards.list")["coupons"]] == ["ten_off", "summer_sale"]  # newest first

    updated = api(
        "rewards.update", reward_id="summer_sale", coupon={"name": "Summer Sale 2", "plan_ids": None}
    )["coupon"]
    assert (updated["name"], updated["plan_ids"], updated["value"]) == ("Summer Sale 2", None, 20)
    err = api.error("rewards.update", reward_id="summer_sale", coupon={"plan_ids": ["pro", "nope"]})
    assert (err.status, err.code, err.body["message"]) == (400, "invalid_request", "Plans not found: nope")
    err = api.error("rewards.update", reward_id="summer_sale", feature_grant={"name": "x"})
    assert (err.status, err.code) == (400, "invalid_request")
    assert "provide coupon" in err.body["message"]
    api.customer("u1")
    err = api.error("rewards.redeem", code="SUMMER20", customer_id="u1")  # no paid subscription for it
    assert (err.status, err.code) == (400, "invalid_reward")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "invalid_reward"),
        (
            {
                "coupon": {
                    "id": "c",
                    "name": "c",
                    "type": "fixed_discount",
                    "value": 1,
                    "duration": {"type": "one_off", "length": None},
                    "plan_ids": None,
                    "promo_codes": [],
                },
                "feature_grant": {
                    "id": "g",
                    "name": "g",
                    "grants": [{"feature_id": "messages", "included": 1, "expiry": None}],
                    "promo_codes": [{"code": "G", "max_uses": None}],
                },
            },
            400,
            "invalid_reward",
        ),
    ],
)
def test_create_takes_exactly_one_kind(api: Api, body: dict[str, Any], status: int, code: str) -> None:
    _catalogue(api)
    r = api.raw("/v1/rewards.create", body)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert r.json()["message"] == "Provide exactly one of coupon or feature_grant"


def test_create_refusals(api: Api) -> None:
    _catalogue(api)
    _grant(api)

    def grant(**kw: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": "other",
            "name": "Other",
            "grants": [{"feature_id": "messages", "included": 1, "expiry": None}],
            "promo_codes": [{"code": "OTHER", "max_uses": None}],
        }
        return body | kw

    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"feature_grant": grant(id="beta_grant")}, 400, "duplicate_reward_id"),
        (
            {"feature_grant": grant(promo_codes=[{"code": "beta", "max_uses": None}])},
            400,
            "duplicate_promo_code",
        ),
        (
            {
                "feature_grant": grant(
                    promo_codes=[{"code": "A", "max_uses": 1}, {"code": "a", "max_uses": 1}]
                )
            },
            400,
            "duplicate_promo_code",
        ),
        (
            {"feature_grant": grant(grants=[{"feature_id": "beta", "included": 3, "expiry": None}])},
            400,
            "invalid_reward",
        ),
        (
            {"feature_grant": grant(grants=[{"feature_id": "messages", "included": None, "expiry": None}])},
            400,
            "invalid_reward",
        ),
        (
            {"feature_grant": grant(grants=[{"feature_id": "ghost", "included": 1, "expiry": None}])},
            404,
            "feature_not_found",
        ),
    ]
    cases.append(({"feature_grant": grant(id=7)}, 400, "invalid_inputs"))  # a wrong type: never a 500
    for body, status, code in cases:
        r = api.raw("/v1/rewards.create", body)
        assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)
    coupon: dict[str, Any] = {
        "id": "c",
        "name": "c",
        "type": "percentage_discount",
        "value": 120,
        "duration": {"type": "one_off", "length": None},
        "plan_ids": None,
        "promo_codes": [],
    }
    for patch in (
        {"value": 120},
        {"duration": {"type": "months", "length": None}},
        {"duration": {"type": "forever", "length": 2}},
        {"value": 5, "plan_ids": ["pro", "pro"]},
    ):
        r = api.raw("/v1/rewards.create", {"coupon": coupon | patch})
        assert (r.status_code, r.json()["code"]) == (400, "invalid_inputs"), (patch, r.text)
    r = api.raw("/v1/rewards.create", {"coupon": coupon | {"value": 5, "plan_ids": ["nope"]}})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request"), r.text
    assert [g["id"] for g in api("rewards.list")["feature_grants"]] == ["beta_grant"]  # nothing half-made


def test_referral_program_lifecycle(api: Api) -> None:
    _catalogue(api)
    _grant(api)
    _coupon(api)
    now = api.clock.now_ms()
    program = api(
        "referrals.create_program",
        id="refer_a_friend",
        reward_id="beta_grant",
        redeem_on="customer_creation",
        received_by="referrer",
    )
    assert program == {
        "id": "refer_a_friend",
        "reward_id": "beta_grant",
        "redeem_on": "customer_creation",
        "received_by": "referrer",
        "max_redemptions": None,
        "plan_ids": None,
        "exclude_trial": False,
        "created_at": now,
    }
    assert api("referrals.get_program", referral_program_id="refer_a_friend") == program
    assert api("referrals.list_programs")["list"] == [program]

    updated = api(
        "referrals.update_program",
        referral_program_id="refer_a_friend",
        received_by="all",
        max_redemptions=3,
    )
    assert updated == program | {"received_by": "all", "max_redemptions": 3}
    checkout = api(
        "referrals.update_program",
        referral_program_id="refer_a_friend",
        reward_id="summer_sale",
        redeem_on="checkout",
        plan_ids=["pro"],
        exclude_trial=True,
    )
    assert checkout == updated | {
        "reward_id": "summer_sale",
        "redeem_on": "checkout",
        "plan_ids": ["pro"],
        "exclude_trial": True,
    }

    # A reward in use cannot be deleted; Autumn names the programs that hold it.
    err = api.error("rewards.delete", reward_id="summer_sale")
    assert (err.status, err.code) == (400, "invalid_request")
    assert "refer_a_friend" in err.body["message"]
    assert api("rewards.get", reward_id="summer_sale")["coupon"]["id"] == "summer_sale"
    assert api("rewards.delete", reward_id="beta_grant") == {"success": True}  # no longer linked

    assert api("referrals.delete_program", referral_program_id="refer_a_friend") == {"success": True}
    err = api.error("referrals.get_program", referral_program_id="refer_a_friend")
    assert (err.status, err.code) == (404, "reward_program_not_found")
    err = api.error("referrals.delete_program", referral_program_id="refer_a_friend")
    assert (err.status, err.code) == (400, "reward_not_found")
    assert api("rewards.delete", reward_id="summer_sale") == {"success": True}
    assert api("referrals.list_programs") == {"list": []}


def test_referral_program_refusals(api: Api) -> None:
    _catalogue(api)
    _grant(api)
    base: dict[str, Any] = {
        "id": "p",
        "reward_id": "beta_grant",
        "redeem_on": "customer_creation",
        "received_by": "referrer",
    }
    err = api.error("referrals.create_program", **base | {"reward_id": "ghost"})
    assert (err.status, err.code, err.body["message"]) == (404, "reward_not_found", "Reward ghost not found")
    err = api.error("referrals.create_program", **base | {"redeem_on": "checkout", "max_redemptions": 5})
    assert (err.status, err.code) == (400, "invalid_request")
    assert "at least one product" in err.body["message"]
    err = api.error("referrals.create_program", **base | {"redeem_on": "checkout", "plan_ids": ["pro"]})
    assert (err.status, err.code) == (400, "invalid_request")
    assert "max redemptions" in err.body["message"]
    api("referrals.create_program", **base)
    err = api.error("referrals.create_program", **base)
    assert (err.status, err.code) == (400, "invalid_request")
    err = api.error("referrals.update_program", referral_program_id="p", reward_id="ghost")
    assert (err.status, err.code) == (404, "reward_not_found")
    err = api.error("referrals.update_program", referral_program_id="ghost", received_by="all")
    assert (err.status, err.code) == (404, "reward_program_not_found")
    err = api.error("referrals.update_program", referral_program_id="p", redeem_on="checkout")
    assert (err.status, err.code) == (400, "invalid_request")
    assert api("referrals.get_program", referral_program_id="p")["redeem_on"] == "customer_creation"


def test_program_rewards_redeemers(api: Api) -> None:
    """A program's reward reaches the referrer (and the redeemer when received_by is all)."""
    _catalogue(api)
    _grant(api)
    api(
        "referrals.create_program",
        id="friends",
        reward_id="beta_grant",
        redeem_on="customer_creation",
        received_by="all",
        max_redemptions=1,
    )
    api.customer("ref")
    api.customer("new")
    code = api("referrals.create_code", customer_id="ref", program_id="friends")["code"]
    assert api("referrals.redeem_code", code=code, customer_id="new")["reward_id"] == "beta_grant"
    assert api.check("ref", "messages")["balance"]["remaining"] == 10
    assert api.check("new", "messages")["balance"]["remaining"] == 10
    api.customer("late")
    err = api.error("referrals.redeem_code", code=code, customer_id="late")
    assert err.code == "referral_code_max_redemptions_reached"
    # The program moves to another reward; deleting the old one keeps the program's history.
    _grant(api, "second_grant", "SECOND")
    api("referrals.update_program", referral_program_id="friends", reward_id="second_grant")
    assert api("rewards.delete", reward_id="beta_grant") == {"success": True}
    err = api.error("referrals.redeem_code", code=code, customer_id="late")
    assert err.code == "referral_code_max_redemptions_reached"
    referrals = api("customers.get", customer_id="ref", expand=["referrals"])["referrals"]
    assert [r["customer"]["id"] for r in referrals] == ["new"]


def test_sdk_round_trip(api: Api) -> None:
    _catalogue(api)
    with Autumn(api.key, server_url=api.server.url, max_retries=0) as autumn:
        created = autumn.rewards.create(
            feature_grant={
                "id": "sdk_grant",
                "name": "SDK grant",
                "grants": [{"feature_id": "messages", "included": 5, "expiry": None}],
                "promo_codes": [{"code": "SDK5", "max_uses": None}],
            }
        )
        assert created.feature_grant is not None and created.feature_grant.id == "sdk_grant"
        program = autumn.referrals.create_program(
            id="sdk_prog", reward_id="sdk_grant", redeem_on="customer_creation", received_by="referrer"
        )
        assert (program.id, program.reward_id, program.exclude_trial) == ("sdk_prog", "sdk_grant", False)
        assert [p.id for p in autumn.referrals.list_programs().list] == ["sdk_prog"]
        got = autumn.rewards.get(reward_id="sdk_grant")
        assert got.feature_grant is not None and got.feature_grant.promo_codes[0].code == "SDK5"
        assert autumn.referrals.delete_program(referral_program_id="sdk_prog").success is True
        assert autumn.rewards.delete(reward_id="sdk_grant").success is True
        assert autumn.rewards.list().feature_grants == []


def test_advance_test_clock_takes_the_official_shape(api: Api) -> None:
    api.customer("u1")
    now = api.clock.now_ms()
    res = api("customers.advance_test_clock", customer_id="u1", frozen_time=now + DAY + 1_234)
    assert res == {
        "customer_id": "u1",
        "frozen_time": now + DAY + 1_000,
        "status": "ready",
        "now": now + DAY + 1_000,
    }
    for body in (
        {"frozen_time": now + DAY},  # not later than the clock
        {"frozen_time": now + 2 * DAY, "advance_by_ms": 5},
    ):
        r = api.raw("/v1/customers.advance_test_clock", {"customer_id": "u1", **body})
        assert (r.status_code, r.json()["code"]) == (400, "invalid_inputs"), r.text
    # The steps our own callers send still work and report the same shape.
    res = api("customers.advance_test_clock", customer_id="u1", days=1)
    assert res["frozen_time"] == res["now"] == now + 2 * DAY + 1_000 and res["status"] == "ready"
