"""billing.attach / billing.update for plans without a price (§5.1, 5.2, 5.6 for free plans)."""

from __future__ import annotations

from .helpers import Api

MONTH = {"interval": "month"}


def _catalogue(api: Api) -> None:
    api.feature("messages")
    api.feature("seats", consumable=False)
    api.feature("sso", "boolean")
    api.plan(
        "free",
        [{"feature_id": "messages", "included": 100, "reset": MONTH}, {"feature_id": "seats", "included": 2}],
        auto_enable=True,
    )
    api.plan(
        "team",
        [
            {"feature_id": "messages", "included": 500, "reset": MONTH},
            {"feature_id": "seats", "included": 10},
            {"feature_id": "sso"},
        ],
    )
    api.plan("boost", [{"feature_id": "messages", "included": 50}], add_on=True)


def test_free_to_free_switch_is_immediate(api: Api) -> None:
    _catalogue(api)
    api.customer("u1")
    api("entities.create", customer_id="u1", entity_id="e1", feature_id="seats")
    first_reset = api.balance("u1", "messages")["next_reset_at"]  # type: ignore[index]
    api.track("u1", "messages", 30)
    res = api("billing.attach", customer_id="u1", plan_id="team")
    assert res == {"customer_id": "u1", "payment_url": None}
    cust = api("customers.get", customer_id="u1")
    assert [s["plan_id"] for s in cust["subscriptions"]] == ["team"]
    msgs = cust["balances"]["messages"]
    assert (msgs["granted"], msgs["usage"]) == (500, 0) and msgs["next_reset_at"] == first_reset
    assert cust["balances"]["seats"]["usage"] == 1  # continuous usage carries over
    assert cust["flags"]["sso"]["plan_id"] == "team"
    err = api.error("billing.attach", customer_id="u1", plan_id="team")
    assert (err.status, err.code) == (409, "plan_already_attached")


def test_add_ons_stack(api: Api) -> None:
    _catalogue(api)
    api.customer("u1")
    api("billing.attach", customer_id="u1", plan_id="boost")
    api("billing.attach", customer_id="u1", plan_id="boost")
    b = api.balance("u1", "messages")
    assert b is not None and b["granted"] == 200 and len(b["breakdown"]) == 3
    cust = api("customers.get", customer_id="u1")
    assert sorted(s["plan_id"] for s in cust["subscriptions"]) == ["boost", "boost", "free"]


def test_cancel_brings_default_back_and_uncancel(api: Api) -> None:
    _catalogue(api)
    api.customer("u1")
    api("billing.attach", customer_id="u1", plan_id="team")
    api("billing.update", customer_id="u1", plan_id="team", cancel_action="cancel_immediately")
    cust = api("customers.get", customer_id="u1")
    assert [s["plan_id"] for s in cust["subscriptions"]] == ["free"]
    assert cust["balances"]["messages"]["granted"] == 100
    err = api.error("billing.update", customer_id="u1", plan_id="team", cancel_action="cancel_immediately")
    assert (err.status, err.code) == (404, "cus_product_not_found")
    api("billing.update", customer_id="u1", plan_id="free", cancel_action="uncancel")


def test_attach_errors_and_entity_scope(api: Api) -> None:
    _catalogue(api)
    api.customer("u1")
    assert api.error("billing.attach", customer_id="ghost", plan_id="team").code == "customer_not_found"
    assert api.error("billing.attach", customer_id="u1", plan_id="ghost").code == "product_not_found"
    assert (
        api.error("billing.attach", customer_id="u1", plan_id="team", entity_id="ghost").code
        == "entity_not_found"
    )
    api("entities.create", customer_id="u1", entity_id="e1", feature_id="seats")
    api("billing.attach", customer_id="u1", plan_id="team", entity_id="e1")
    ent = api("entities.get", customer_id="u1", entity_id="e1")
    assert [s["plan_id"] for s in ent["subscriptions"]] == ["team"]
    assert ent["balances"]["messages"]["granted"] == 600  # entity's 500 + the customer's shared 100
    assert [s["plan_id"] for s in api("customers.get", customer_id="u1")["subscriptions"]] == ["free"]


def test_priced_plans_go_to_paid_billing(api: Api) -> None:
    _catalogue(api)
    api.plan(
        "pro",
        [{"feature_id": "messages", "included": 1000, "reset": MONTH}],
        price={"amount": 20, "interval": "month"},
    )
    api.customer("u1")
    r = api.raw("/v1/billing.attach", {"customer_id": "u1", "plan_id": "pro"})
    assert r.status_code in (200, 201), r.text  # billing is always wired (no 501 branch any more)


def test_customer_eligibility(api: Api) -> None:
    _catalogue(api)
    api.plan(
        "pro",
        [{"feature_id": "messages", "included": 1000, "reset": MONTH}],
        price={"amount": 20, "interval": "month"},
        free_trial={"duration_length": 7, "duration_type": "day"},
    )
    api.customer("u1")
    plans = {p["id"]: p["customer_eligibility"] for p in api("plans.list", customer_id="u1")["list"]}
    assert plans["free"]["attach_action"] == "none" and plans["free"]["status"] == "active"
    assert plans["team"]["attach_action"] == "upgrade"
    assert plans["boost"]["attach_action"] == "activate"
    assert plans["pro"]["attach_action"] == "upgrade" and plans["pro"]["trial_available"] is True
    assert (
        api("plans.get", plan_id="team", customer_id="u1")["customer_eligibility"]["attach_action"]
        == "upgrade"
    )


def test_e2_entity_plans_aggregate_on_the_customer(api: Api) -> None:
    api.feature("users", consumable=False)
    api.feature("messages")
    api.plan("per_user", [{"feature_id": "messages", "included": 100, "reset": MONTH}])
    api.customer("u1")
    for eid in ("e1", "e2", "e3"):
        api("entities.create", customer_id="u1", entity_id=eid, feature_id="users")
        api("billing.attach", customer_id="u1", plan_id="per_user", entity_id=eid)
    assert api.balance("u1", "messages")["remaining"] == 300  # type: ignore[index]
    api.track("u1", "messages", 10, entity_id="e1")
    assert api.balance("u1", "messages", entity_id="e1")["remaining"] == 90  # type: ignore[index]
    assert api.balance("u1", "messages", entity_id="e2")["remaining"] == 100  # type: ignore[index]
    assert api.balance("u1", "messages")["remaining"] == 290  # type: ignore[index]


def test_a_scheduled_free_plan_starts_on_time_with_its_balances(api: Api) -> None:
    """The core's maintenance starts a scheduled plan no processor bills (service.maintenance)."""
    _catalogue(api)
    api.customer("u1")
    api("entities.create", customer_id="u1", entity_id="e1", feature_id="seats")
    now = api.clock.now_ms()
    later = now + 3 * 86_400_000
    api(
        "billing.create_schedule",
        customer_id="u1",
        phases=[
            {"starts_at": now, "plans": [{"plan_id": "team"}]},
            {"starts_at": later, "plans": [{"plan_id": "free"}]},
        ],
    )
    subs = {s["plan_id"]: s for s in api("customers.get", customer_id="u1")["subscriptions"]}
    assert (subs["team"]["status"], subs["free"]["status"]) == ("active", "scheduled")
    api.advance(days=3, hours=1)
    cust = api("customers.get", customer_id="u1")
    free = next(s for s in cust["subscriptions"] if s["plan_id"] == "free")
    assert free["status"] == "active" and free["started_at"] == later
    assert cust["balances"]["messages"]["granted"] == 100
    assert cust["balances"]["seats"]["usage"] == 1  # the entity's seat is in use from the start
