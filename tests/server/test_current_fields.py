"""Fields of Autumn's current API (2026-08-22) on existing operations, acted on by the server."""

from __future__ import annotations

from typing import Any

from .helpers import Api


def _ids(page: dict[str, Any]) -> list[str]:
    return [str(c["id"]) for c in page["list"]]


def _customers_a_second_apart(api: Api, count: int) -> list[int]:
    created = []
    for i in range(count):
        created.append(int(api.customer(f"c{i}")["created_at"]))
        api.advance(1000)
    return created


def test_customers_list_sorts_newest_first_by_default(api: Api) -> None:
    _customers_a_second_apart(api, 5)
    assert _ids(api("customers.list")) == ["c4", "c3", "c2", "c1", "c0"]
    assert _ids(api("customers.list", sort_order="desc")) == ["c4", "c3", "c2", "c1", "c0"]
    assert _ids(api("customers.list", sort_order="asc")) == ["c0", "c1", "c2", "c3", "c4"]


def test_customers_list_pages_in_either_order(api: Api) -> None:
    _customers_a_second_apart(api, 5)
    api.customer("c5")  # c5 and c6 share a created_at: the tie is broken by creation order
    api.customer("c6")
    oldest_first = [f"c{i}" for i in range(7)]
    for order, expected in (("asc", oldest_first), ("desc", oldest_first[::-1])):
        seen: list[str] = []
        cursor = ""
        while True:
            page = api("customers.list", limit=2, start_cursor=cursor, sort_order=order)
            seen += _ids(page)
            if page["next_cursor"] is None:
                break
            cursor = str(page["next_cursor"])
        assert seen == expected, order


def test_customers_list_created_at_range_is_inclusive(api: Api) -> None:
    created = _customers_a_second_apart(api, 5)
    rng = {"start": created[1], "end": created[3]}
    assert _ids(api("customers.list", created_at_range=rng)) == ["c3", "c2", "c1"]
    assert _ids(api("customers.list", created_at_range=rng, sort_order="asc")) == ["c1", "c2", "c3"]
    assert _ids(api("customers.list", created_at_range={"start": created[3]})) == ["c4", "c3"]
    assert _ids(api("customers.list", created_at_range={"end": created[0]})) == ["c0"]
    assert _ids(api("customers.list", created_at_range={"start": created[4] + 1})) == []
    assert _ids(api("customers.list", created_at_range={})) == ["c4", "c3", "c2", "c1", "c0"]
    page = api("customers.list", created_at_range=rng, limit=2)
    assert _ids(page) == ["c3", "c2"]
    rest = api("customers.list", created_at_range=rng, limit=2, start_cursor=page["next_cursor"])
    assert (_ids(rest), rest["next_cursor"]) == (["c1"], None)


def test_customers_list_bad_sort_and_cursor_are_400(api: Api) -> None:
    error = api.error("customers.list", sort_order="sideways")
    assert error.status == 400
    error = api.error("customers.list", start_cursor="not-a-cursor")
    assert (error.status, error.code) == (400, "invalid_inputs")


def test_entities_list_filters_by_customer(api: Api) -> None:
    api.feature("seats", "metered", consumable=False)
    for cid in ("a", "b"):
        api.customer(cid)
        for n in (1, 2):
            api("entities.create", customer_id=cid, entity_id=f"{cid}-e{n}", feature_id="seats")
    listed = api("entities.list", customer_id="b")["list"]
    assert [(e["id"], e["customer_id"]) for e in listed] == [("b-e1", "b"), ("b-e2", "b")]
    assert len(api("entities.list")["list"]) == 4
    assert api.error("entities.list", customer_id="nobody").code == "customer_not_found"


MONTH = {"interval": "month"}


def _msgs(included: int) -> dict[str, Any]:
    return {"feature_id": "messages", "included": included, "reset": MONTH}


def _included(plan: dict[str, Any]) -> dict[str, float]:
    return {i["feature_id"]: i["included"] for i in plan["items"]}


def test_plans_update_force_version_without_customers(api: Api) -> None:
    api.feature("messages")
    api.plan("pro", [_msgs(10)])
    assert api("plans.update", plan_id="pro", name="Pro 2", force_version=True)["version"] == 2
    assert api("plans.get", plan_id="pro")["name"] == "Pro 2"
    assert api("plans.get", plan_id="pro", version=1)["name"] == "Pro"
    # a request that changes nothing does not version, as in Autumn
    assert api("plans.update", plan_id="pro", force_version=True)["version"] == 2
    # without the flag an update with no customers stays in place
    assert api("plans.update", plan_id="pro", items=[_msgs(20)])["version"] == 2


def test_plans_update_version_flags_are_exclusive(api: Api) -> None:
    api.feature("messages")
    api.plan("pro", [_msgs(10)])
    for flags in (
        {"force_version": True, "disable_version": True},
        {"all_versions": True, "disable_version": True},
        {"all_versions": True, "force_version": True},
    ):
        error = api.error("plans.update", plan_id="pro", name="x", **flags)
        assert (error.status, error.code) == (400, "conflicting_version_flags"), flags
    assert api("plans.get", plan_id="pro")["name"] == "Pro"


def test_plans_update_all_versions_applies_the_diff_to_every_version(api: Api) -> None:
    api.feature("messages")
    api.feature("seats", consumable=False)
    api.plan("free", [_msgs(10)], auto_enable=True)
    api.customer("u1")  # on version 1, so the next pricing change versions
    assert api("plans.update", plan_id="free", items=[_msgs(20)])["version"] == 2
    updated = api(
        "plans.update",
        plan_id="free",
        all_versions=True,
        description="Everyone",
        items=[_msgs(20), {"feature_id": "seats", "included": 3}],
    )
    assert updated["version"] == 2  # in place, despite the customers
    v1 = api("plans.get", plan_id="free", version=1)
    # the diff (a new item, a new description) reaches version 1; its own messages grant stays
    assert (_included(v1), v1["description"]) == ({"messages": 10, "seats": 3}, "Everyone")
    assert _included(api("plans.get", plan_id="free")) == {"messages": 20, "seats": 3}
    # a changed item replaces the matching item of every version
    api(
        "plans.update",
        plan_id="free",
        all_versions=True,
        items=[_msgs(20), {"feature_id": "seats", "included": 5}],
    )
    assert _included(api("plans.get", plan_id="free", version=1)) == {"messages": 10, "seats": 5}
    # a removed item leaves every version
    api("plans.update", plan_id="free", all_versions=True, items=[_msgs(20)])
    assert _included(api("plans.get", plan_id="free", version=1)) == {"messages": 10}
    assert len(api("plans.list", all_versions=True)["list"]) == 2


def test_plans_list_all_versions(api: Api) -> None:
    api.feature("messages")
    api.plan("pro", [_msgs(10)])
    api.plan("team", [_msgs(50)])
    api("plans.update", plan_id="pro", items=[_msgs(20)], force_version=True)
    api("plans.update", plan_id="pro", items=[_msgs(30)], force_version=True)
    latest = [(p["id"], p["version"]) for p in api("plans.list")["list"]]
    assert sorted(latest) == [("pro", 3), ("team", 1)]
    listed = [(p["id"], p["version"]) for p in api("plans.list", all_versions=True)["list"]]
    assert sorted(listed) == [("pro", 1), ("pro", 2), ("pro", 3), ("team", 1)]
    assert [v for pid, v in listed if pid == "pro"] == [3, 2, 1]  # latest first
    api("plans.update", plan_id="team", archived=True)
    assert ("team", 1) not in [(p["id"], p["version"]) for p in api("plans.list", all_versions=True)["list"]]
    assert len(api("plans.list", all_versions=True, include_archived=True)["list"]) == 4
    api.customer("u1")
    with_eligibility = api("plans.list", all_versions=True, customer_id="u1")["list"]
    assert len(with_eligibility) == 3 and all("customer_eligibility" in p for p in with_eligibility)


def _overage_customer(api: Api, cid: str, spend_limit: dict[str, Any]) -> dict[str, Any]:
    controls = {
        "overage_allowed": [{"feature_id": "messages", "enabled": True}],
        "spend_limits": [{"feature_id": "messages", "enabled": True, **spend_limit}],
    }
    return api.customer(cid, billing_controls=controls)


def test_spend_limit_usage_percentage_is_a_share_of_the_main_plan_allowance(api: Api) -> None:
    api.feature("messages")
    api.plan("free", [_msgs(200)], auto_enable=True)
    created = _overage_customer(api, "u1", {"limit_type": "usage_percentage", "overage_limit": 20})
    assert created["billing_controls"]["spend_limits"][0]["limit_type"] == "usage_percentage"
    b = api.track("u1", "messages", 230)["balance"]
    assert (b["usage"], b["remaining"]) == (230, 0)
    assert api.check("u1", "messages", required_balance=10)["allowed"] is True
    assert api.check("u1", "messages", required_balance=11)["allowed"] is False  # 20% of 200 = 40 over
    b = api.track("u1", "messages", 100)["balance"]
    assert b["usage"] == 240  # capped at 200 + 40
    # "absolute" (the default) is the plain number of units
    _overage_customer(api, "u2", {"limit_type": "absolute", "overage_limit": 20})
    assert api.track("u2", "messages", 300)["balance"]["usage"] == 220


def test_spend_limit_percentage_without_a_main_plan_caps_nothing(api: Api) -> None:
    api.feature("messages")
    api.plan("boost", [_msgs(50)], add_on=True)
    _overage_customer(api, "u1", {"limit_type": "usage_percentage", "overage_limit": 10})
    api("billing.attach", customer_id="u1", plan_id="boost")
    assert api.track("u1", "messages", 500)["balance"]["usage"] == 500
    assert api.check("u1", "messages", required_balance=1000)["allowed"] is True


def test_spend_limit_percentage_on_an_entity(api: Api) -> None:
    api.feature("messages")
    api.feature("seats", consumable=False)
    api.plan("free", [_msgs(100)], auto_enable=True)
    api.customer("u1")
    api(
        "entities.create",
        customer_id="u1",
        entity_id="e1",
        feature_id="seats",
        billing_controls={
            "overage_allowed": [{"feature_id": "messages", "enabled": True}],
            "spend_limits": [
                {
                    "feature_id": "messages",
                    "enabled": True,
                    "limit_type": "usage_percentage",
                    "overage_limit": 50,
                }
            ],
        },
    )
    b = api.track("u1", "messages", 1000, entity_id="e1")["balance"]
    assert b["usage"] == 150


def test_disable_overage_billing_is_stored_and_echoed(api: Api) -> None:
    assert "disable_overage_billing" not in api.customer("u1")["config"]
    created = api.customer("u2", config={"disable_overage_billing": True})
    assert created["config"] == {"disable_pooled_balance": False, "disable_overage_billing": True}
    updated = api("customers.update", customer_id="u2", config={"disable_overage_billing": False})
    assert updated["config"]["disable_overage_billing"] is False
    api.feature("seats", consumable=False)
    api(
        "entities.create",
        customer_id="u3",
        entity_id="e1",
        feature_id="seats",
        customer_data={"config": {"disable_overage_billing": True}},
    )
    assert api("customers.get", customer_id="u3")["config"]["disable_overage_billing"] is True


def _controls_data() -> dict[str, Any]:
    """A ``customer_data`` (or ``customers.get_or_create`` body) setting every current control field."""
    return {
        "name": "Ada",
        "config": {"disable_overage_billing": True},
        "billing_controls": {
            "overage_allowed": [{"feature_id": "messages", "enabled": True}],
            "spend_limits": [
                {
                    "feature_id": "messages",
                    "enabled": True,
                    "limit_type": "usage_percentage",
                    "overage_limit": 20,
                    "skip_overage_billing": True,
                }
            ],
            "auto_topups": [
                {
                    "feature_id": "messages",
                    "enabled": True,
                    "threshold": 10,
                    "quantity": 100,
                    "purchase_limit": {"interval": "day", "limit": 2, "count": 1},
                }
            ],
        },
    }


def _topup_counts(api: Api, customer_id: str) -> list[tuple[str, int]]:
    from sqlalchemy import select

    from reference_server.store.tables.core import auto_topup_counts, customers

    with api.server.app.state.autumn.db.read() as conn:
        rows = conn.execute(
            select(auto_topup_counts.c.feature_id, auto_topup_counts.c.purchase_count)
            .join(customers, customers.c.pk == auto_topup_counts.c.customer_pk)
            .where(customers.c.id == customer_id)
        ).all()
    return [(str(r.feature_id), int(r.purchase_count)) for r in rows]


def _boost_plans(api: Api) -> None:
    api.feature("messages")
    api.feature("calls")
    api.plan("free", [_msgs(200)], auto_enable=True)
    api.plan("boost", [{"feature_id": "calls", "included": 5, "reset": MONTH}], add_on=True)


def test_customer_data_of_multi_attach_sets_the_controls_get_or_create_sets(api: Api) -> None:
    _boost_plans(api)
    data = _controls_data()
    api("billing.multi_attach", customer_id="u1", plans=[{"plan_id": "boost"}], customer_data=data)
    api.customer("u2", **data)
    made, direct = (api("customers.get", customer_id=c) for c in ("u1", "u2"))
    assert (made["config"], made["billing_controls"]) == (direct["config"], direct["billing_controls"])
    assert made["config"]["disable_overage_billing"] is True
    limit = made["billing_controls"]["spend_limits"][0]
    assert (limit["limit_type"], limit["skip_overage_billing"], limit["overage_limit"]) == (
        "usage_percentage",
        True,
        20,
    )
    # purchase_limit.count is runtime state: counted, not stored with the controls
    assert made["billing_controls"]["auto_topups"][0]["purchase_limit"] == {"interval": "day", "limit": 2}
    assert _topup_counts(api, "u1") == _topup_counts(api, "u2") == [("messages", 1)]
    assert sorted(s["plan_id"] for s in made["subscriptions"]) == ["boost", "free"]
    # The percentage spend limit caps usage: 20% of free's 200 messages beyond them.
    assert api.track("u1", "messages", 300)["balance"]["usage"] == 240
    # customer_data only creates: a customer that exists keeps its controls.
    other = {"config": {"disable_overage_billing": False}, "billing_controls": {"spend_limits": []}}
    api("billing.multi_attach", customer_id="u2", plans=[{"plan_id": "boost"}], customer_data=other)
    assert api("customers.get", customer_id="u2")["billing_controls"] == direct["billing_controls"]


def test_bad_customer_data_controls_are_refused_and_create_nothing(api: Api) -> None:
    _boost_plans(api)
    data = _controls_data()
    data["billing_controls"]["auto_topups"][0]["purchase_limit"]["count"] = 3
    plans = [{"plan_id": "boost"}]
    error = api.error("billing.multi_attach", customer_id="u1", plans=plans, customer_data=data)
    assert (error.status, error.code) == (400, "invalid_request")
    assert error.body["message"] == (
        "purchase_limit.count (3) cannot exceed purchase_limit.limit (2) for feature messages"
    )
    assert api.error("customers.get", customer_id="u1").code == "customer_not_found"
    data = _controls_data()
    data["billing_controls"]["spend_limits"][0]["limit_type"] = "sideways"
    error = api.error("billing.multi_attach", customer_id="u1", plans=plans, customer_data=data)
    assert (error.status, error.code) == (400, "invalid_inputs")
    currency = {**_controls_data(), "currency": "eur"}
    error = api.error("billing.multi_attach", customer_id="u1", plans=plans, customer_data=currency)
    assert (error.status, error.code) == (400, "unsupported_field")
    assert "customer_data.currency" in error.body["message"]
    assert api.error("customers.get", customer_id="u1").code == "customer_not_found"


def test_entity_data_of_multi_attach_sets_the_controls_entities_create_sets(api: Api) -> None:
    _boost_plans(api)
    api.feature("seats", consumable=False)
    api.customer("u1")
    controls = {
        "overage_allowed": [{"feature_id": "messages", "enabled": True}],
        "spend_limits": [
            {
                "feature_id": "messages",
                "enabled": True,
                "limit_type": "usage_percentage",
                "overage_limit": 50,
                "skip_overage_billing": True,
            }
        ],
    }
    api(
        "billing.multi_attach",
        customer_id="u1",
        entity_id="e1",
        entity_data={"feature_id": "seats", "billing_controls": controls},
        plans=[{"plan_id": "boost"}],
    )
    api("entities.create", customer_id="u1", entity_id="e2", feature_id="seats", billing_controls=controls)
    made, direct = (api("entities.get", customer_id="u1", entity_id=e) for e in ("e1", "e2"))
    assert made["billing_controls"] == direct["billing_controls"]
    limit = made["billing_controls"]["spend_limits"][0]
    assert (limit["limit_type"], limit["skip_overage_billing"]) == ("usage_percentage", True)
    assert [s["plan_id"] for s in made["subscriptions"]] == ["boost"]
    assert api.track("u1", "messages", 1000, entity_id="e1")["balance"]["usage"] == 300
    bad = {"spend_limits": [{"feature_id": "messages", "limit_type": "sideways"}]}
    error = api.error(
        "billing.multi_attach",
        customer_id="u1",
        entity_id="e3",
        entity_data={"feature_id": "seats", "billing_controls": bad},
        plans=[{"plan_id": "boost"}],
    )
    assert (error.status, error.code) == (400, "invalid_inputs")
    assert api.error("entities.get", customer_id="u1", entity_id="e3").code == "entity_not_found"


def test_two_spend_limits_for_one_feature_are_refused_on_create_and_update(api: Api) -> None:
    api.feature("messages")
    twice = {
        "spend_limits": [
            {"feature_id": "messages", "enabled": True, "overage_limit": 10},
            {"feature_id": "messages", "enabled": True, "overage_limit": 20},
        ]
    }
    for op, body in (
        ("customers.get_or_create", {"customer_id": "dup"}),
        ("customers.update", {"customer_id": "u1"}),
    ):
        if op == "customers.update":
            api.customer("u1")
        refused = api.error(op, **body, billing_controls=twice)
        assert (refused.status, refused.body["code"]) == (400, "invalid_inputs")
        assert "duplicate feature_id" in refused.body["message"]
    assert api.error("customers.get", customer_id="dup").status == 404  # nothing was created
    assert api("customers.get", customer_id="u1")["billing_controls"].get("spend_limits", []) == []
