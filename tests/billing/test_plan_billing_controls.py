"""Plan-level billing_controls: stored on plans, shown in Plan responses, inherited by the plans'
customers under their own controls (``source``), through the real server over HTTP on SQLite and
PostgreSQL with the local processor."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from reference_server.clock import ManualClock
from reference_server.testing import fresh_database_url, postgres_available, run_server

from .helpers import Api, ms, with_card

MONTH = {"interval": "month"}
USAGE_PRICE = {"amount": 0.5, "interval": "month", "billing_method": "usage_based"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    if request.param == "postgres" and not postgres_available():
        pytest.skip("PostgreSQL is not available")
    monkeypatch.delenv("AUTUMN_PAYMENT_PROCESSOR", raising=False)
    clock = ManualClock(ms(2026, 4, 1))
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(fresh_database_url(request.param))
        server = stack.enter_context(run_server(url, clock=clock))
        client = Api(server, clock)
        for fid in ("messages", "calls"):
            client("features.create", feature_id=fid, name=fid.title(), type="metered", consumable=True)
        yield client
        client.http.close()


def _free(
    api: Api, plan_id: str, controls: dict[str, Any], *, add_on: bool = False, **kw: Any
) -> dict[str, Any]:
    return api(
        "plans.create",
        plan_id=plan_id,
        name=plan_id.title(),
        add_on=add_on,
        items=[{"feature_id": "messages", "included": 100, "reset": MONTH}],
        billing_controls=controls,
        **kw,
    )


def _allowed(api: Api, cid: str, fid: str, required: float) -> bool:
    return bool(api("check", customer_id=cid, feature_id=fid, required_balance=required)["allowed"])


def test_plan_response_shows_stored_controls_and_update_replaces_lists(api: Api) -> None:
    controls = {
        "usage_limits": [{"feature_id": "messages", "limit": 10, "interval": "day"}],
        "overage_allowed": [{"feature_id": "messages", "enabled": True}],
    }
    created = _free(api, "free", controls)
    assert created["billing_controls"]["usage_limits"] == [
        {"feature_id": "messages", "limit": 10, "interval": "day"}
    ]
    assert created["billing_controls"]["overage_allowed"] == [{"feature_id": "messages", "enabled": True}]
    assert created["billing_controls"]["spend_limits"] == []
    assert api("plans.get", plan_id="free")["billing_controls"] == created["billing_controls"]
    spend = [{"feature_id": "messages", "enabled": True, "overage_limit": 5}]
    updated = api(
        "plans.update", plan_id="free", billing_controls={"spend_limits": spend, "overage_allowed": []}
    )
    assert updated["billing_controls"]["spend_limits"] == spend
    assert updated["billing_controls"]["overage_allowed"] == []
    assert updated["billing_controls"]["usage_limits"] == controls["usage_limits"]  # not sent: kept
    plain = api("plans.create", plan_id="plain", name="Plain", items=[])
    assert "billing_controls" not in plain


def test_duplicate_plan_controls_are_400(api: Api) -> None:
    dup = [{"feature_id": "messages", "enabled": True}, {"feature_id": "messages", "enabled": False}]
    api("plans.create", 400, plan_id="bad", name="Bad", items=[], billing_controls={"overage_allowed": dup})
    bad = [{"feature_id": "messages", "limit": 5, "interval": "one_off"}]
    api("plans.create", 400, plan_id="bad", name="Bad", items=[], billing_controls={"usage_limits": bad})


def test_customers_inherit_plan_controls_and_their_own_shadow_them(api: Api) -> None:
    controls = {
        "overage_allowed": [{"feature_id": "messages", "enabled": True}],
        "spend_limits": [{"feature_id": "messages", "enabled": True, "overage_limit": 20}],
        "usage_limits": [{"feature_id": "messages", "limit": 50, "interval": "day"}],
    }
    _free(api, "free", controls, auto_enable=True)
    api("customers.get_or_create", customer_id="u1")
    shown = api.customer("u1")["billing_controls"]
    assert shown["overage_allowed"] == [{"feature_id": "messages", "enabled": True, "source": "plan"}]
    assert shown["usage_limits"] == [
        {
            "feature_id": "messages",
            "limit": 50,
            "interval": "day",
            "enabled": True,
            "usage": 0,
            "source": "plan",
        }
    ]
    # the plan's usage limit caps a day at 50
    api("balances.track", customer_id="u1", feature_id="messages", value=45)
    assert _allowed(api, "u1", "messages", 5) and not _allowed(api, "u1", "messages", 6)
    assert api.customer("u1")["billing_controls"]["usage_limits"][0]["usage"] == 45
    # next day: overage allowed by the plan, capped by its spend limit (100 included + 20)
    api.clock.set(ms(2026, 4, 2, 1))
    api("balances.track", customer_id="u1", feature_id="messages", value=50)
    api.clock.set(ms(2026, 4, 3, 1))
    api("balances.track", customer_id="u1", feature_id="messages", value=20)
    assert _allowed(api, "u1", "messages", 5) and not _allowed(api, "u1", "messages", 6)
    # the customer's own entries shadow the plan's: no usage limit of 50 a day, a wider spend limit
    own = {
        "spend_limits": [{"feature_id": "messages", "enabled": True, "overage_limit": 40}],
        "usage_limits": [{"feature_id": "messages", "limit": 1000, "interval": "day"}],
    }
    shown = api("customers.update", customer_id="u1", billing_controls=own)["billing_controls"]
    assert shown["spend_limits"] == [
        {"feature_id": "messages", "enabled": True, "overage_limit": 40, "source": "customer"}
    ]
    assert [(e["limit"], e["source"]) for e in shown["usage_limits"]] == [(1000, "customer")]
    assert shown["overage_allowed"][0]["source"] == "plan"
    assert _allowed(api, "u1", "messages", 25) and not _allowed(api, "u1", "messages", 26)


def test_most_restrictive_plan_wins(api: Api) -> None:
    _free(
        api,
        "base",
        {"usage_limits": [{"feature_id": "messages", "limit": 100, "interval": "day"}]},
        auto_enable=True,
    )
    _free(
        api,
        "extra",
        {"usage_limits": [{"feature_id": "messages", "limit": 2000, "interval": "month"}]},
        add_on=True,
    )
    api("customers.get_or_create", customer_id="u1")
    api("billing.attach", customer_id="u1", plan_id="extra")
    # 100 a day against about 66.7 a day: the monthly cap is the stricter one
    limits = api.customer("u1")["billing_controls"]["usage_limits"]
    assert [(e["limit"], e["interval"], e["source"]) for e in limits] == [(2000, "month", "plan")]
    assert _allowed(api, "u1", "messages", 150)  # 200 granted, no daily cap any more


def test_plan_overage_off_blocks_a_usage_based_price(api: Api) -> None:
    api(
        "plans.create",
        plan_id="payg",
        name="Pay as you go",
        price={"amount": 10, "interval": "month"},
        items=[{"feature_id": "calls", "included": 10, "reset": MONTH, "price": USAGE_PRICE}],
        billing_controls={"overage_allowed": [{"feature_id": "calls", "enabled": False}]},
    )
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="payg")
    assert _allowed(api, "u1", "calls", 10) and not _allowed(api, "u1", "calls", 11)
    out = api("balances.track", customer_id="u1", feature_id="calls", value=15)
    assert out["balance"]["remaining"] == 0


def test_a_plan_auto_top_up_buys_for_its_customers(api: Api) -> None:
    api("features.create", feature_id="credits", name="Credits", type="metered", consumable=True)
    pack = {"amount": 5, "interval": "one_off", "billing_method": "prepaid", "billing_units": 100}
    topup = {"feature_id": "credits", "enabled": True, "threshold": 20, "quantity": 100}
    api(
        "plans.create",
        plan_id="packs",
        name="Packs",
        price={"amount": 20, "interval": "month"},
        items=[{"feature_id": "credits", "included": 0, "price": pack}],
        billing_controls={"auto_topups": [topup]},
    )
    with_card(api, "u1")
    api(
        "billing.attach",
        customer_id="u1",
        plan_id="packs",
        feature_quantities=[{"feature_id": "credits", "quantity": 100}],
    )
    shown = api.customer("u1")["billing_controls"]["auto_topups"]
    assert shown == [{**topup, "source": "plan"}]
    api("balances.track", customer_id="u1", feature_id="credits", value=90)
    assert api.customer("u1")["balances"]["credits"]["remaining"] == 110  # 10 left + a pack of 100
    # the customer's own entry (disabled) shadows the plan's
    api("customers.update", customer_id="u1", billing_controls={"auto_topups": [{**topup, "enabled": False}]})
    api.clock.advance(60_000)
    api("balances.track", customer_id="u1", feature_id="credits", value=100)
    assert api.customer("u1")["balances"]["credits"]["remaining"] == 10


def test_variant_customize_billing_controls_overrides_the_base_list_by_list(api: Api) -> None:
    base_controls = {
        "usage_limits": [{"feature_id": "messages", "limit": 10, "interval": "day"}],
        "overage_allowed": [{"feature_id": "messages", "enabled": True}],
    }
    _free(api, "free", base_controls)
    strict = {"usage_limits": [{"feature_id": "messages", "limit": 3, "interval": "day"}]}
    variant = {
        "variant_plan_id": "free_strict",
        "name": "Free strict",
        "customize": {"billing_controls": strict},
    }
    api("plans.update", plan_id="free", variants=[variant])
    got = api("plans.get", plan_id="free_strict")
    assert got["billing_controls"]["usage_limits"] == strict["usage_limits"]
    assert (
        got["billing_controls"]["overage_allowed"] == base_controls["overage_allowed"]
    )  # not sent: the base's
    assert got["variant_details"]["customize"]["billing_controls"] == {"usage_limits": strict["usage_limits"]}
    assert (
        api("plans.get", plan_id="free")["billing_controls"]["usage_limits"] == base_controls["usage_limits"]
    )
    # the variant's holders get the variant's controls
    api("customers.get_or_create", customer_id="u1")
    api("billing.attach", customer_id="u1", plan_id="free_strict")
    assert _allowed(api, "u1", "messages", 3) and not _allowed(api, "u1", "messages", 4)
    # updating the variant again: its controls are the base's with the new patch
    cleared = {**variant, "customize": {"billing_controls": {"overage_allowed": []}}}
    api("plans.update", plan_id="free", variants=[cleared])
    got = api("plans.get", plan_id="free_strict")
    assert got["billing_controls"]["usage_limits"] == base_controls["usage_limits"]
    assert got["billing_controls"]["overage_allowed"] == []
    assert got["variant_details"]["customize"]["billing_controls"] == {"overage_allowed": []}


def test_variant_customize_billing_controls_bad_input_creates_nothing(api: Api) -> None:
    _free(api, "free", {})
    bad = {"usage_limits": [{"feature_id": "messages", "limit": -1, "interval": "day"}]}
    variant = {"variant_plan_id": "free_bad", "name": "Bad", "customize": {"billing_controls": bad}}
    error = api("plans.update", expect=400, plan_id="free", variants=[variant])
    assert error["code"] == "invalid_inputs", error
    api("plans.get", expect=404, plan_id="free_bad")
