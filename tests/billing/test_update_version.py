"""``billing.update`` ``version`` (move the subscription to another version of its plan) and
``recalculate_balances`` (restart the balances of the quantities an update sets), over real HTTP on the
local processor and on Stripe (whose books the ``api`` fixture checks), SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import DAY, Api, create_prepaid_team_plan, ms, on_pro, with_card


def _customer(api: Api, customer_id: str = "u1") -> dict[str, Any]:
    """The customer with its invoices and each subscription's plan (with its version)."""
    return api("customers.get", customer_id=customer_id, expand=["invoices", "subscriptions.plan"])


def _pro_version(api: Api, customer_id: str = "u1") -> int:
    (sub,) = [s for s in _customer(api, customer_id)["subscriptions"] if s["plan_id"] == "pro"]
    return int(sub["plan"]["version"])


def _state(api: Api, customer_id: str) -> tuple[Any, ...]:
    """What an update could change: the subscriptions, the balances and the invoices."""
    customer = _customer(api, customer_id)
    subs = sorted(
        (s["plan_id"], s["plan"]["version"], s["status"], s["current_period_end"])
        for s in customer["subscriptions"]
    )
    balances = {k: (v["granted"], v["remaining"], v["usage"]) for k, v in customer["balances"].items()}
    invoices = [(i["status"], i["total"]) for i in customer["invoices"]]
    return subs, balances, invoices


def test_version_upgrade_mid_cycle_prorates_the_price_change(api: Api) -> None:
    on_pro(api)
    # pro's price changes while it has a customer: version 2; the customer stays on version 1.
    api("plans.update", plan_id="pro", price={"amount": 30, "interval": "month"})
    assert api("plans.get", plan_id="pro")["version"] == 2
    assert _pro_version(api) == 1
    api.clock.advance(15 * DAY)  # half of April's 30 days left
    preview = api("billing.preview_update", customer_id="u1", plan_id="pro", version=2)
    assert preview["intent"] == "update_plan" and preview["total"] == 5  # (30 - 20) / 2
    assert {line["plan_id"] for line in preview["line_items"]} == {"pro"}
    assert sorted(line["total"] for line in preview["line_items"]) == [-10, 15]
    result = api("billing.update", customer_id="u1", plan_id="pro", version=2)
    assert result["invoice"]["total"] == preview["total"] == 5
    assert api.on_processor(result["invoice"]) == ("paid", 500)
    customer = _customer(api)
    (sub,) = customer["subscriptions"]
    assert (sub["plan_id"], sub["plan"]["version"], sub["status"]) == ("pro", 2, "active")
    assert sub["current_period_end"] == ms(2026, 5, 1)  # the cycle is kept
    api.clock.set(ms(2026, 5, 1) + 1)
    assert [i["total"] for i in api.customer("u1")["invoices"]] == [30, 5, 20]  # renews at version 2's price


def test_version_downgrade_credits_the_unused_difference(api: Api) -> None:
    api("plans.create", plan_id="team", name="Team", price={"amount": 40, "interval": "month"})
    with_card(api, "u1")
    api("plans.update", plan_id="team", price={"amount": 20, "interval": "month"}, force_version=True)
    api("billing.attach", customer_id="u1", plan_id="team", version=1)
    api.clock.advance(15 * DAY)
    preview = api("billing.preview_update", customer_id="u1", plan_id="team", version=2)
    assert preview["total"] == -10  # half a month of the $20 difference, credited
    result = api("billing.update", customer_id="u1", plan_id="team", version=2)
    assert result["invoice"]["total"] == -10
    (sub,) = _customer(api)["subscriptions"]
    assert (sub["plan_id"], sub["plan"]["version"]) == ("team", 2)
    api.clock.set(ms(2026, 5, 1) + 1)
    # The renewal bills version 2's $20, paid from the $10 of credit and the card.
    assert [i["total"] for i in api.customer("u1")["invoices"]] == [20, -10, 40]  # (newest first)


@pytest.mark.parametrize("carry", [None, {"enabled": False}])
def test_version_change_keeps_or_resets_balances(api: Api, carry: dict[str, Any] | None) -> None:
    on_pro(api)
    api("track", customer_id="u1", feature_id="messages", value=300)
    month = {"interval": "month"}
    api("plans.update", plan_id="pro", items=[{"feature_id": "messages", "included": 2000, "reset": month}])
    assert _pro_version(api) == 1
    extra = {} if carry is None else {"carry_over_usages": carry}
    preview = api("billing.preview_update", customer_id="u1", plan_id="pro", version=2, **extra)
    assert preview["total"] == 0  # same price: nothing to prorate
    api("billing.update", customer_id="u1", plan_id="pro", version=2, **extra)
    messages = api.customer("u1")["balances"]["messages"]
    if carry is None:  # Autumn's update default: the usage carries onto the new version
        assert (messages["granted"], messages["remaining"], messages["usage"]) == (2000, 1700, 300)
    else:
        assert (messages["granted"], messages["remaining"], messages["usage"]) == (2000, 2000, 0)
    assert _pro_version(api) == 2


def test_version_change_drops_a_customization_unless_customized_again(api: Api) -> None:
    on_pro(api)
    month = {"interval": "month"}
    custom = {"items": [{"feature_id": "messages", "included": 3000, "reset": month}]}
    api("billing.update", customer_id="u1", plan_id="pro", customize=custom)
    assert api.customer("u1")["balances"]["messages"]["granted"] == 3000
    # Back to version 1 as it is (Autumn: the named version's items, no customization).
    api("billing.update", customer_id="u1", plan_id="pro", version=1)
    assert api.customer("u1")["balances"]["messages"]["granted"] == 1000
    api("plans.update", plan_id="pro", price={"amount": 30, "interval": "month"})
    api("billing.update", customer_id="u1", plan_id="pro", version=2, customize=custom)
    customer = _customer(api)
    assert customer["balances"]["messages"]["granted"] == 3000
    assert customer["subscriptions"][0]["plan"]["version"] == 2
    # (newest first) a whole month of the $10 more; the changes of items alone billed nothing
    assert [i["total"] for i in customer["invoices"] if i["total"]] == [10, 20]


def test_version_change_keeps_the_prepaid_quantity(api: Api) -> None:
    create_prepaid_team_plan(api)
    with_card(api, "u1")
    quantity = [{"feature_id": "messages", "quantity": 200}]
    api("billing.attach", customer_id="u1", plan_id="team", feature_quantities=quantity)
    api("track", customer_id="u1", feature_id="messages", value=50)
    api("plans.update", plan_id="team", price={"amount": 30, "interval": "month"})
    api.clock.advance(15 * DAY)
    preview = api("billing.preview_update", customer_id="u1", plan_id="team", version=2)
    assert preview["total"] == 5  # the base price's half month; the 2 packs are the same on both versions
    result = api("billing.update", customer_id="u1", plan_id="team", version=2)
    assert result["invoice"]["total"] == 5
    customer = _customer(api)
    assert customer["subscriptions"][0]["plan"]["version"] == 2
    messages = customer["balances"]["messages"]
    assert (messages["granted"], messages["remaining"], messages["usage"]) == (200, 150, 50)
    api.clock.set(ms(2026, 5, 1) + 1)
    assert api.customer("u1")["invoices"][0]["total"] == 50  # $30 and the 2 packs of $10


@pytest.mark.parametrize("recalculate", [False, True])
def test_recalculate_balances_with_a_quantity_change(api: Api, recalculate: bool) -> None:
    create_prepaid_team_plan(api)
    with_card(api, "u1")
    api(
        "billing.attach",
        customer_id="u1",
        plan_id="team",
        feature_quantities=[{"feature_id": "messages", "quantity": 100}],
    )
    api("track", customer_id="u1", feature_id="messages", value=80)
    api.clock.advance(15 * DAY)
    body: dict[str, Any] = {
        "customer_id": "u1",
        "plan_id": "team",
        "feature_quantities": [{"feature_id": "messages", "quantity": 300}],
        "recalculate_balances": {"enabled": recalculate},
    }
    preview = api("billing.preview_update", **body)
    assert preview["intent"] == "update_quantity" and preview["total"] == 10  # 2 packs, half a month
    result = api("billing.update", **body)
    assert result["invoice"]["total"] == preview["total"]
    messages = api.customer("u1")["balances"]["messages"]
    if recalculate:  # the balance restarts from the new quantity
        assert (messages["granted"], messages["remaining"], messages["usage"]) == (300, 300, 0)
    else:  # the usage is kept: the balance moves by the 200 bought
        assert (messages["granted"], messages["remaining"], messages["usage"]) == (300, 220, 80)


def _error(api: Api, op: str, status: int, **body: Any) -> dict[str, Any]:
    response = api.http.post(f"/v1/{op}", json=body)
    assert response.status_code == status, response.text
    error = dict(response.json())
    assert set(error) >= {"message", "code"}, error
    return error


@pytest.mark.parametrize("op", ["billing.update", "billing.preview_update"])
def test_bad_version_or_recalculate_is_refused_and_writes_nothing(api: Api, op: str) -> None:
    create_prepaid_team_plan(api)
    on_pro(api)
    with_card(api, "u2")
    quantity = [{"feature_id": "messages", "quantity": 100}]
    api("billing.attach", customer_id="u2", plan_id="team", feature_quantities=quantity)
    api("plans.update", plan_id="pro", price={"amount": 30, "interval": "month"})
    api("track", customer_id="u1", feature_id="messages", value=10)
    api("track", customer_id="u2", feature_id="messages", value=10)
    before = _state(api, "u1"), _state(api, "u2")
    for version in (3, 1.5, 0, -1):
        error = _error(api, op, 404, customer_id="u1", plan_id="pro", version=version)
        assert error["code"] == "product_not_found", error
        assert "not found for product pro" in error["message"]
    for version in ("two", [2], {"v": 2}):
        error = _error(api, op, 400, customer_id="u1", plan_id="pro", version=version)
        assert error["code"] in ("invalid_inputs", "validation_error"), error
    quantities = [{"feature_id": "messages", "quantity": 300}]
    for recalculate in ({}, {"enabled": "sometimes"}, True, "yes", {"enabled": None}):
        error = _error(
            api,
            op,
            400,
            customer_id="u2",
            plan_id="team",
            feature_quantities=quantities,
            recalculate_balances=recalculate,
        )
        assert error["code"] in ("invalid_inputs", "validation_error"), error
    # Only with feature quantities (Autumn: "only applicable when updating feature quantities").
    for extra in (
        {"customer_id": "u2", "plan_id": "team"},
        {"customer_id": "u1", "plan_id": "pro", "version": 2},
        {"customer_id": "u1", "plan_id": "pro", "cancel_action": "cancel_end_of_cycle"},
    ):
        error = _error(api, op, 400, recalculate_balances={"enabled": True}, **extra)
        assert error["code"] == "invalid_inputs" and "recalculate_balances" in error["message"], error
    # A plan without a price (its own path) refuses it too.
    api("customers.get_or_create", customer_id="u3")
    error = _error(api, op, 400, customer_id="u3", plan_id="free", recalculate_balances={"enabled": True})
    assert error["code"] == "invalid_inputs" and "recalculate_balances" in error["message"], error
    assert (_state(api, "u1"), _state(api, "u2")) == before
