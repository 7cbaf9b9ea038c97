"""billing_controls.usage_limits: a hard cap per window, enforced by check and track (customers, entities)."""

from __future__ import annotations

from typing import Any

from .helpers import Api

MONTH = {"interval": "month"}


def _credits(api: Api, included: float = 300, **item: Any) -> None:
    api.feature("credits")
    api.plan(
        "free", [{"feature_id": "credits", "included": included, "reset": MONTH, **item}], auto_enable=True
    )


def _limits(api: Api, cid: str, *limits: dict[str, Any]) -> list[dict[str, Any]]:
    out = api("customers.update", customer_id=cid, billing_controls={"usage_limits": list(limits)})
    return list(out["billing_controls"]["usage_limits"])


def test_daily_cap_blocks_check_and_caps_track(api: Api) -> None:
    _credits(api)
    api.customer("u1")
    shown = _limits(api, "u1", {"feature_id": "credits", "limit": 50, "interval": "day"})
    assert shown == [
        {
            "feature_id": "credits",
            "limit": 50,
            "interval": "day",
            "enabled": True,
            "usage": 0,
            "source": "customer",
        }
    ]
    api.track("u1", "credits", 30)
    assert api.check("u1", "credits", required_balance=20)["allowed"] is True
    assert api.check("u1", "credits", required_balance=21)["allowed"] is False
    out = api.track("u1", "credits", 30)  # only 20 fit under the cap: track deducts those
    assert sum(d["value"] for d in out["deductions"]) == 20
    assert out["balance"]["remaining"] == 250
    assert api.check("u1", "credits")["allowed"] is False
    got = api("customers.get", customer_id="u1")["billing_controls"]["usage_limits"]
    assert got[0]["usage"] == 50
    # the next window (a day later on the credits' reset cycle) starts from zero
    api.advance(days=1)
    assert api.check("u1", "credits", required_balance=50)["allowed"] is True
    assert api("customers.get", customer_id="u1")["billing_controls"]["usage_limits"][0]["usage"] == 0
    api.track("u1", "credits", 10)
    assert api.balance("u1", "credits")["remaining"] == 240  # type: ignore[index]


def test_reject_behaviour_and_send_event(api: Api) -> None:
    _credits(api)
    api.customer("u1")
    _limits(api, "u1", {"feature_id": "credits", "limit": 5, "interval": "week", "anchor": "utc"})
    assert api.error(
        "track", customer_id="u1", feature_id="credits", value=6, overage_behavior="reject"
    ).code == ("insufficient_balance")
    assert api.check("u1", "credits", required_balance=5, send_event=True)["allowed"] is True
    denied = api.check("u1", "credits", send_event=True)
    assert denied["allowed"] is False
    assert denied["balance"]["remaining"] == 295
    # a refund gives the window its usage back
    api.track("u1", "credits", -2)
    assert api.check("u1", "credits", required_balance=2)["allowed"] is True


def test_filter_counts_only_matching_events(api: Api) -> None:
    _credits(api)
    api.customer("u1")
    _limits(
        api,
        "u1",
        {
            "feature_id": "credits",
            "limit": 10,
            "interval": "month",
            "filter": {"properties": {"model": "gpt"}},
        },
    )
    api.track("u1", "credits", 25, properties={"model": "claude"})
    api.track("u1", "credits", 8, properties={"model": "gpt"})
    assert api.check("u1", "credits", required_balance=3, properties={"model": "gpt"})["allowed"] is False
    assert api.check("u1", "credits", required_balance=3, properties={"model": "claude"})["allowed"] is True
    assert api.check("u1", "credits", required_balance=3)["allowed"] is True
    shown = api("customers.get", customer_id="u1")["billing_controls"]["usage_limits"][0]
    assert shown["usage"] == 8 and shown["filter"] == {"properties": {"model": "gpt"}}


def test_disabled_limit_does_not_cap(api: Api) -> None:
    _credits(api)
    api.customer("u1")
    _limits(api, "u1", {"feature_id": "credits", "limit": 1, "interval": "day", "enabled": False})
    api.track("u1", "credits", 5)
    assert api.check("u1", "credits")["allowed"] is True


def test_credit_system_cap_converts_feature_units(api: Api) -> None:
    api.feature("images")
    api(
        "features.create",
        feature_id="credits",
        name="Credits",
        type="credit_system",
        credit_schema=[{"metered_feature_id": "images", "credit_cost": 5}],
    )
    api.plan("free", [{"feature_id": "credits", "included": 1000, "reset": MONTH}], auto_enable=True)
    api.customer("u1")
    _limits(api, "u1", {"feature_id": "credits", "limit": 20, "interval": "day"})
    assert api.check("u1", "images", required_balance=4)["allowed"] is True
    assert api.check("u1", "images", required_balance=5)["allowed"] is False
    api.track("u1", "images", 3)  # 15 credits
    assert api.check("u1", "images")["allowed"] is True
    assert api.check("u1", "images", required_balance=2)["allowed"] is False
    assert api("customers.get", customer_id="u1")["billing_controls"]["usage_limits"][0]["usage"] == 15


def test_entity_limit_replaces_customer_limit_and_counts_apart(api: Api) -> None:
    api.feature("seats", "metered", consumable=False)
    _credits(api)
    api.customer("u1")
    _limits(api, "u1", {"feature_id": "credits", "limit": 10, "interval": "day"})
    api(
        "entities.create",
        customer_id="u1",
        entity_id="e1",
        feature_id="seats",
        billing_controls={"usage_limits": [{"feature_id": "credits", "limit": 3, "interval": "day"}]},
    )
    api("entities.create", customer_id="u1", entity_id="e2", feature_id="seats")
    assert api.check("u1", "credits", entity_id="e1", required_balance=4)["allowed"] is False
    api.track("u1", "credits", 3, entity_id="e1")
    assert api.check("u1", "credits", entity_id="e1")["allowed"] is False
    api.track("u1", "credits", 6, entity_id="e2")  # the customer's limit counts every entity
    assert api.check("u1", "credits", entity_id="e2", required_balance=2)["allowed"] is False
    assert api.check("u1", "credits", required_balance=1)["allowed"] is True
    entity = api("entities.get", customer_id="u1", entity_id="e1")
    assert entity["billing_controls"]["usage_limits"][0]["usage"] == 3
    assert api("customers.get", customer_id="u1")["billing_controls"]["usage_limits"][0]["usage"] == 9


def test_bad_limits_are_400(api: Api) -> None:
    api.customer("u1")
    bad: list[dict[str, Any]] = [
        {"feature_id": "credits", "limit": 5, "interval": "one_off"},
        {"feature_id": "credits", "limit": -1, "interval": "day"},
        {"feature_id": "credits", "limit": 5, "interval": "day", "filter": {"properties": {}}},
    ]
    for entry in bad:
        err = api.error("customers.update", customer_id="u1", billing_controls={"usage_limits": [entry]})
        assert err.status == 400, entry
    dup = [
        {"feature_id": "credits", "limit": 5, "interval": "day"},
        {"feature_id": "credits", "limit": 6, "interval": "week"},
    ]
    err = api.error("customers.update", customer_id="u1", billing_controls={"usage_limits": dup})
    assert (err.status, err.code) == (400, "invalid_inputs")


def test_no_limits_means_no_usage_limit_rows(api: Api) -> None:
    _credits(api)
    api.customer("u1")
    api.track("u1", "credits", 10)
    assert api("customers.get", customer_id="u1")["billing_controls"]["usage_limits"] == []
