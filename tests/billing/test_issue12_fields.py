"""Fields of Autumn's current API that the server used to refuse, through the real server over HTTP on
SQLite and PostgreSQL (and on Stripe with localstripe, as the other billing scenarios):
``customize.remove_items[].interval_count`` and ``billing.multi_attach``'s per-plan ``entity_id``."""

from __future__ import annotations

from typing import Any

from .helpers import Api

MONTH = {"interval": "month"}
QUARTER = {"interval": "month", "interval_count": 3}


def _two_cadence_plan(api: Api) -> None:
    """``dual``: 100 messages a month and 500 more every three months, $10 a month."""
    api(
        "plans.create",
        plan_id="dual",
        name="Dual",
        price={"amount": 10, "interval": "month"},
        items=[
            {"feature_id": "messages", "included": 100, "reset": MONTH},
            {"feature_id": "messages", "included": 500, "reset": QUARTER},
        ],
    )


def _granted(api: Api, customer_id: str) -> Any:
    return api.customer(customer_id)["balances"]["messages"]["granted"]


def test_remove_items_interval_count_removes_only_the_item_of_that_count(api: Api) -> None:
    _two_cadence_plan(api)
    for cid in ("u1", "u2", "u3"):
        api("customers.get_or_create", customer_id=cid)
        api.add_card(cid)
    quarterly = {"remove_items": [{"feature_id": "messages", "interval": "month", "interval_count": 3}]}
    preview = api("billing.preview_attach", customer_id="u1", plan_id="dual", customize=quarterly)
    assert preview["total"] == 10
    api("billing.attach", customer_id="u1", plan_id="dual", customize=quarterly)
    assert _granted(api, "u1") == 100  # the quarterly 500 is gone, the monthly 100 stays
    # interval_count 1 is the count of an item that gives none
    monthly = {"remove_items": [{"feature_id": "messages", "interval_count": 1}]}
    api("billing.attach", customer_id="u2", plan_id="dual", customize=monthly)
    assert _granted(api, "u2") == 500
    # without interval_count every messages item of that interval goes
    both = {"remove_items": [{"feature_id": "messages", "interval": "month"}]}
    api("billing.attach", customer_id="u3", plan_id="dual", customize=both)
    assert "messages" not in api.customer("u3")["balances"], api.customer("u3")["balances"]


def test_remove_items_interval_count_on_update_and_multi_attach(api: Api) -> None:
    _two_cadence_plan(api)
    api("customers.get_or_create", customer_id="u1")
    api.add_card("u1")
    api("billing.attach", customer_id="u1", plan_id="dual")
    assert _granted(api, "u1") == 600
    quarterly = {"remove_items": [{"feature_id": "messages", "interval_count": 3}]}
    api("billing.update", customer_id="u1", plan_id="dual", customize=quarterly)
    assert _granted(api, "u1") == 100
    api("customers.get_or_create", customer_id="u2")
    api.add_card("u2")
    api("billing.multi_attach", customer_id="u2", plans=[{"plan_id": "dual", "customize": quarterly}])
    assert _granted(api, "u2") == 100


def test_remove_items_bad_interval_count_is_400_and_attaches_nothing(api: Api) -> None:
    _two_cadence_plan(api)
    api("customers.get_or_create", customer_id="u1")
    for bad in (0, -1, 1.5, "three"):
        body = {"remove_items": [{"feature_id": "messages", "interval_count": bad}]}
        error = api("billing.attach", expect=400, customer_id="u1", plan_id="dual", customize=body)
        assert error["code"] == "invalid_inputs", error
    assert api.plans_of("u1") == {"free": "active"}
