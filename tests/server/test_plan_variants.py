"""Plan variants on plans.update: ``variants``, ``update_variant_ids``, ``base_plan_id`` and the
``base_variant_id`` / ``variant_details`` of the plans they produce (Autumn's current API)."""

from __future__ import annotations

from typing import Any

from .helpers import Api


def _msgs(included: int) -> dict[str, Any]:
    return {"feature_id": "messages", "included": included, "reset": {"interval": "month"}}


def _included(plan: dict[str, Any]) -> dict[str, float]:
    return {i["feature_id"]: i["included"] for i in plan["items"]}


def _base(api: Api) -> None:
    api.feature("messages")
    api.feature("seats", consumable=False)
    api.plan("pro", [_msgs(100)], price={"amount": 20, "interval": "month"}, description="Pro tier")


def test_variants_create_a_plan_derived_from_the_base(api: Api) -> None:
    _base(api)
    base = api(
        "plans.update",
        plan_id="pro",
        variants=[
            {
                "variant_plan_id": "pro_annual",
                "name": "Pro annual",
                "customize": {
                    "price": {"amount": 200, "interval": "year"},
                    "add_items": [{"feature_id": "seats", "included": 5}],
                },
            }
        ],
    )
    assert (base["id"], base["version"], base["base_variant_id"]) == ("pro", 1, None)
    assert "variant_details" not in base
    variant = api("plans.get", plan_id="pro_annual")
    assert variant["name"] == "Pro annual"
    assert variant["description"] == "Pro tier"  # settings come from the base
    assert variant["price"] == {"amount": 200, "interval": "year"}
    assert _included(variant) == {"messages": 100, "seats": 5}
    assert variant["base_variant_id"] == "pro"
    details = variant["variant_details"]
    assert details["base_plan_id"] == "pro"
    assert details["customize"]["price"] == {"amount": 200, "interval": "year"}
    assert [i["feature_id"] for i in details["customize"]["add_items"]] == ["seats"]
    assert "remove_items" not in details["customize"]
    # a variant is a plan of its own: customers attach it like any plan
    api.customer("u1")
    listed = {p["id"] for p in api("plans.list")["list"]}
    assert {"pro", "pro_annual"} <= listed


def test_remove_items_and_direct_variant_update(api: Api) -> None:
    _base(api)
    api(
        "plans.update",
        plan_id="pro",
        variants=[
            {
                "variant_plan_id": "pro_lite",
                "name": "Lite",
                "customize": {"remove_items": [{"feature_id": "messages"}], "price": None},
            }
        ],
    )
    lite = api("plans.get", plan_id="pro_lite")
    assert (lite["items"], lite["price"]) == ([], None)
    assert lite["variant_details"]["customize"]["remove_items"] == [
        {"feature_id": "messages", "interval": "month", "interval_count": 1}
    ]
    # a second update of an existing variant applies its new customize to the base; the name stays
    api(
        "plans.update",
        plan_id="pro",
        variants=[{"variant_plan_id": "pro_lite", "customize": {"add_items": [_msgs(10)]}}],
    )
    lite = api("plans.get", plan_id="pro_lite")
    assert (lite["name"], lite["version"], _included(lite)) == ("Lite", 1, {"messages": 10})
    assert lite["price"] == {"amount": 20, "interval": "month"}


def test_update_variant_ids_propagates_the_base_diff(api: Api) -> None:
    _base(api)
    api(
        "plans.update",
        plan_id="pro",
        variants=[
            {
                "variant_plan_id": "pro_plus",
                "name": "Plus",
                "customize": {"add_items": [{"feature_id": "seats", "included": 5}]},
            },
            {"variant_plan_id": "pro_other", "name": "Other", "customize": {}},
        ],
    )
    api("plans.update", plan_id="pro", items=[_msgs(500)], update_variant_ids=["pro_plus"], group="tiers")
    plus = api("plans.get", plan_id="pro_plus")
    # the base's changed item reaches the selected variant; the variant's own item stays
    assert _included(plus) == {"messages": 500, "seats": 5}
    assert plus["group"] == "tiers"
    other = api("plans.get", plan_id="pro_other")
    # an unselected variant keeps its items but follows the base's settings
    assert (_included(other), other["group"]) == ({"messages": 100}, "tiers")
    assert other["variant_details"]["customize"]["add_items"][0]["included"] == 100
    assert other["variant_details"]["customize"]["remove_items"][0]["feature_id"] == "messages"


def test_variant_with_customers_versions_on_propagation(api: Api) -> None:
    api.feature("messages")
    api.plan("free", [_msgs(10)], auto_enable=True)
    api(
        "plans.update",
        plan_id="free",
        variants=[{"variant_plan_id": "free_edu", "name": "Edu", "customize": {"add_items": [_msgs(50)]}}],
    )
    api.customer("u1")
    api("billing.attach", customer_id="u1", plan_id="free_edu")
    # free has a customer too (auto-enabled), so both version; disable_version keeps them in place
    api("plans.update", plan_id="free", description="x", update_variant_ids=["free_edu"])
    assert api("plans.get", plan_id="free_edu")["version"] == 1
    edu = api(
        "plans.update",
        plan_id="free",
        variants=[{"variant_plan_id": "free_edu", "customize": {"add_items": [_msgs(60)]}}],
    )
    assert edu["version"] == 1  # the base did not change pricing
    variant = api("plans.get", plan_id="free_edu")
    assert (variant["version"], _included(variant)) == (2, {"messages": 60})
    assert api("plans.get", plan_id="free_edu", version=1)["items"][0]["included"] == 50
    assert api("plans.get", plan_id="free_edu", version=1)["base_variant_id"] == "free"
    api(
        "plans.update",
        plan_id="free",
        variants=[
            {"variant_plan_id": "free_edu", "customize": {"add_items": [_msgs(70)]}, "disable_version": True}
        ],
    )
    variant = api("plans.get", plan_id="free_edu")
    assert (variant["version"], _included(variant)) == (2, {"messages": 70})


def test_base_plan_id_links_and_detaches(api: Api) -> None:
    _base(api)
    api.plan("team", [_msgs(1000)])
    linked = api("plans.update", plan_id="team", base_plan_id="pro")
    assert linked["base_variant_id"] == "pro"
    assert _included(api("plans.get", plan_id="team"))["messages"] == 1000
    assert linked["variant_details"]["customize"]["add_items"][0]["included"] == 1000
    # settings belong to the base: a variant cannot change them itself
    error = api.error("plans.update", plan_id="team", description="mine")
    assert (error.status, error.code) == (400, "invalid_propagation_target")
    # a variant of a variant is refused, and so is a variant of itself
    api.plan("solo", [])
    assert api.error("plans.update", plan_id="solo", base_plan_id="team").code == "nested_variant_not_allowed"
    assert api.error("plans.update", plan_id="pro", base_plan_id="team").code == "nested_variant_not_allowed"
    assert api.error("plans.update", plan_id="solo", base_plan_id="solo").code == "invalid_propagation_target"
    assert api.error("plans.update", plan_id="solo", base_plan_id="nope").status == 404
    detached = api("plans.update", plan_id="team", base_plan_id=None)
    assert detached["base_variant_id"] is None and "variant_details" not in detached
    assert api("plans.update", plan_id="team", description="mine")["description"] == "mine"


def test_base_rename_moves_its_variants(api: Api) -> None:
    _base(api)
    api("plans.update", plan_id="pro", variants=[{"variant_plan_id": "pro_x", "name": "X", "customize": {}}])
    api("plans.update", plan_id="pro", new_plan_id="premium")
    variant = api("plans.get", plan_id="pro_x")
    assert variant["base_variant_id"] == "premium"
    assert variant["variant_details"] == {"base_plan_id": "premium", "customize": {}}


def test_bad_variant_requests_are_4xx(api: Api) -> None:
    _base(api)
    api.plan("other", [])
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"variants": [{"variant_plan_id": "pro_new", "customize": {}}]}, 400, "invalid_propagation_target"),
        ({"variants": [{"variant_plan_id": "other", "customize": {}}]}, 400, "invalid_propagation_target"),
        ({"update_variant_ids": ["other"]}, 400, "invalid_propagation_target"),
        ({"update_variant_ids": ["ghost"]}, 404, "product_not_found"),
        (
            {"variants": [{"variant_plan_id": "pro", "name": "P", "customize": {}}]},
            400,
            "invalid_propagation_target",
        ),
        (
            {
                "variants": [
                    {
                        "variant_plan_id": "v",
                        "name": "V",
                        "customize": {},
                        "force_version": True,
                        "disable_version": True,
                    }
                ]
            },
            400,
            "conflicting_version_flags",
        ),
        (
            {
                "variants": [
                    {
                        "variant_plan_id": "v",
                        "name": "V",
                        "customize": {"add_items": [{"feature_id": "nope"}]},
                    }
                ]
            },
            404,
            "feature_not_found",
        ),
        (
            {
                "variants": [
                    {"variant_plan_id": "v", "name": "V", "customize": {}, "migration": {"draft": True}}
                ]
            },
            400,
            "unsupported_field",
        ),
    ]
    for body, status, code in cases:
        error = api.error("plans.update", plan_id="pro", **body)
        assert (error.status, error.code) == (status, code), body
    # nothing was written by the refused requests
    assert {p["id"] for p in api("plans.list")["list"]} == {"pro", "other"}
    api("plans.update", plan_id="pro", archived=True)
    error = api.error(
        "plans.update", plan_id="pro", variants=[{"variant_plan_id": "v", "name": "V", "customize": {}}]
    )
    assert (error.status, error.code) == (400, "cannot_fork_archived_base")


def test_is_default_is_auto_enable_and_never_a_variant(api: Api) -> None:
    api.feature("messages")
    api.plan("free", [_msgs(10)])
    assert api("plans.update", plan_id="free", is_default=True)["auto_enable"] is True
    assert api("plans.update", plan_id="free", is_default=False)["auto_enable"] is False
    error = api.error("plans.update", plan_id="free", is_default=True, auto_enable=False)
    assert (error.status, error.code) == (400, "invalid_inputs")
    api.plan("paid", [_msgs(10)], price={"amount": 5, "interval": "month"})
    assert api.error("plans.update", plan_id="paid", is_default=True).status == 400
    api(
        "plans.update", plan_id="free", variants=[{"variant_plan_id": "free_v", "name": "V", "customize": {}}]
    )
    error = api.error("plans.update", plan_id="free_v", is_default=True)
    assert (error.status, error.code) == (400, "variant_cannot_be_default")
    api("plans.update", plan_id="free", is_default=True)
    error = api.error("plans.update", plan_id="free", base_plan_id="paid")
    assert (error.status, error.code) == (400, "variant_cannot_be_default")
    assert api("plans.get", plan_id="free_v")["auto_enable"] is False


def test_migration_asks_nothing_without_a_draft(api: Api) -> None:
    api.feature("messages")
    api.plan("free", [_msgs(10)], auto_enable=True)
    api.customer("u1")
    # Autumn's plans.update never moves customers: without a draft the field asks for nothing
    updated = api(
        "plans.update",
        plan_id="free",
        items=[_msgs(20)],
        disable_version=True,
        migration={"draft": False, "include_custom": True},
    )
    assert (updated["version"], _included(updated)) == (1, {"messages": 20})
    error = api.error("plans.update", plan_id="free", items=[_msgs(30)], migration={"draft": True})
    assert (error.status, error.code) == (400, "unsupported_field")
    assert _included(api("plans.get", plan_id="free")) == {"messages": 20}


def test_deleting_the_base_detaches_its_variants(api: Api) -> None:
    _base(api)
    api("plans.update", plan_id="pro", variants=[{"variant_plan_id": "pro_x", "name": "X", "customize": {}}])
    api("plans.update", plan_id="pro", items=[_msgs(200)], force_version=True)
    api("plans.delete", plan_id="pro")  # the latest version: the variant follows version 1
    variant = api("plans.get", plan_id="pro_x")
    assert variant["variant_details"]["customize"] == {}
    api("plans.delete", plan_id="pro")
    variant = api("plans.get", plan_id="pro_x")
    assert variant["base_variant_id"] is None and "variant_details" not in variant
