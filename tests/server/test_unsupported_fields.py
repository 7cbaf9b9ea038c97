"""Fields of the current spec the server does not act on yet are refused, never silently ignored."""

from __future__ import annotations

from typing import Any

import pytest

from autumn_sdk._generated.operations import OPERATIONS
from reference_server.api.unsupported_fields import UNSUPPORTED_FIELDS, refuse_unsupported
from reference_server.errors import ApiError

from .helpers import Api

OPERATION_NAMES = {op.qualified_name for op in OPERATIONS}


def test_every_listed_operation_exists() -> None:
    assert set(UNSUPPORTED_FIELDS) <= OPERATION_NAMES


@pytest.mark.parametrize(
    ("operation", "path"), [(op, path) for op, paths in UNSUPPORTED_FIELDS.items() for path in paths]
)
def test_every_listed_field_is_a_field_of_the_operations_request(operation: str, path: str) -> None:
    """A listed path names a real field: the generated params model has it (through nested models)."""
    op = next(o for o in OPERATIONS if o.qualified_name == operation)
    model = op.params_model
    assert model is not None
    for step in path.replace("[]", "").split("."):
        assert model is not None, (operation, path)
        fields = {name.removesuffix("_"): field for name, field in model.model_fields.items()}
        assert step in fields, (operation, path, step)
        model = _nested_model(fields[step].annotation)


def _nested_model(annotation: object) -> type | None:
    """The first pydantic model inside ``X | None``, ``list[X]`` and the like."""
    from typing import get_args

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def test_nested_and_listed_paths_are_found() -> None:
    refuse_unsupported("billing.attach", {"customize": {"items": [{"feature_id": "f"}]}})
    with pytest.raises(ApiError) as info:
        refuse_unsupported("billing.attach", {"customize": {"items": [{"feature_id": "f", "pooled": True}]}})
    assert (info.value.status, info.value.code) == (400, "unsupported_field")
    assert "customize.items[*].pooled" in info.value.message
    # A value that asks for nothing passes: the official SDK sends every item's default.
    refuse_unsupported("billing.attach", {"customize": {"items": [{"feature_id": "f", "pooled": False}]}})
    refuse_unsupported("billing.attach", {"remove_plan_ids": [], "customize": {"billing_controls": {}}})


def test_the_server_refuses_before_writing(api: Api) -> None:
    api.feature("messages")
    api.plan("pro", [{"feature_id": "messages", "included": 10}])
    error = api.error("customers.get_or_create", customer_id="u1", currency="eur")
    assert (error.status, error.body["code"]) == (400, "unsupported_field")
    assert "currency" in error.body["message"]
    assert api.error("customers.get", customer_id="u1").body["code"] == "customer_not_found"
    error = api.error("billing.attach", customer_id="u1", plan_id="pro", currency="eur")
    assert (error.status, error.body["code"]) == (400, "unsupported_field")
    api.customer("u1")
    assert api("billing.attach", customer_id="u1", plan_id="pro")["customer_id"] == "u1"


_ATTACH_ASKS: dict[str, Any] = {
    "new_billing_subscription": True,
    "processor_subscription_id": "sub_123",
    "tax_rate_id": "txr_123",
}
"""Attach fields no attach here acts on, each with a value that asks for something."""
_ATTACH_EMPTY: dict[str, Any] = {
    "discounts": [],
    "new_billing_subscription": False,
    "custom_line_items": [],
    "metadata": {},
    "no_billing_changes": False,
}
"""The same fields with values that ask for nothing (what the official SDK may send)."""
_SETUP_ASKS: dict[str, Any] = {
    **{k: v for k, v in _ATTACH_ASKS.items() if k != "new_billing_subscription"},
    "custom_line_items": [{"amount": 5, "description": "Setup"}],
    "billing_cycle_anchor": "now",
    "starts_at": 1_900_000_000_000,
    "ends_at": 1_900_000_000_000,
    "version": 1,
    "proration_behavior": "none",
    "subscription_id": "sub_a",
    "carry_over_balances": {"enabled": True},
    "carry_over_usages": {"enabled": True},
    "enable_plan_immediately": True,
}
"""What billing.setup_payment's later attach would drop (it takes only plan, scope, quantities,
customization, removals, metadata, no_billing_changes and discounts)."""
_UPDATE_ASKS: dict[str, Any] = {
    "billing_cycle_anchor": "now",
}
_MULTI_ATTACH_ASKS: dict[str, Any] = {
    "new_billing_subscription": True,
}  # (its request-wide free_trial is served: tests/billing/test_multi_attach_free_trial.py)


def _refused(error: Any, field: str) -> None:
    assert (error.status, error.body["code"]) == (400, "unsupported_field"), (field, error.body)
    assert error.body["message"].startswith(f"{field} "), (field, error.body)


def _free_catalogue(api: Api) -> None:
    api.feature("messages")
    api.feature("seats", consumable=False)
    api.plan("free", [{"feature_id": "messages", "included": 10}])
    api.plan("pro", [{"feature_id": "messages", "included": 100}], price={"amount": 20, "interval": "month"})


@pytest.mark.parametrize("operation", ["billing.attach", "billing.preview_attach"])
def test_attach_fields_it_does_not_act_on_are_refused(api: Api, operation: str) -> None:
    _free_catalogue(api)
    api.customer("u1")
    for field, value in _ATTACH_ASKS.items():
        _refused(api.error(operation, customer_id="u1", plan_id="free", **{field: value}), field)
    assert api("customers.get", customer_id="u1")["subscriptions"] == []  # nothing attached
    api(operation, customer_id="u1", plan_id="free", **_ATTACH_EMPTY)


@pytest.mark.parametrize("operation", ["billing.update", "billing.preview_update"])
def test_update_fields_it_does_not_act_on_are_refused(api: Api, operation: str) -> None:
    _free_catalogue(api)
    api.plan("team", [{"feature_id": "seats", "included": 5}])
    api.customer("u1")
    api("billing.attach", customer_id="u1", plan_id="team")
    before = api("customers.get", customer_id="u1")
    for field, value in _UPDATE_ASKS.items():
        _refused(api.error(operation, customer_id="u1", plan_id="team", **{field: value}), field)
    assert api("customers.get", customer_id="u1") == before
    empty = {"discounts": [], "no_billing_changes": False, "recalculate_balances": {"enabled": False}}
    api(operation, customer_id="u1", plan_id="team", **empty)


@pytest.mark.parametrize("operation", ["billing.multi_attach", "billing.preview_multi_attach"])
def test_multi_attach_fields_it_does_not_act_on_are_refused(api: Api, operation: str) -> None:
    _free_catalogue(api)
    api.customer("u1")
    plans = [{"plan_id": "free"}]
    for field, value in _MULTI_ATTACH_ASKS.items():
        _refused(api.error(operation, customer_id="u1", plans=plans, **{field: value}), field)
    # customer_data.create_in_stripe: refused before the customer it describes is created.
    error = api.error(operation, customer_id="u2", plans=plans, customer_data={"create_in_stripe": True})
    _refused(error, "customer_data.create_in_stripe")
    assert api("customers.get", customer_id="u1")["subscriptions"] == []
    assert api.error("customers.get", customer_id="u2").body["code"] == "customer_not_found"
    empty = {"discounts": [], "new_billing_subscription": False}
    api(operation, customer_id="u1", plans=plans, **empty)


def test_setup_payment_fields_its_attach_would_drop_are_refused(api: Api) -> None:
    _free_catalogue(api)
    api.customer("u1")
    for field, value in _SETUP_ASKS.items():
        _refused(api.error("billing.setup_payment", customer_id="u1", plan_id="pro", **{field: value}), field)
    empty = {**{k: v for k, v in _ATTACH_EMPTY.items() if k != "new_billing_subscription"}}
    empty.update(enable_plan_immediately=False)
    assert "/setup/" in api("billing.setup_payment", customer_id="u1", plan_id="pro", **empty)["url"]


def test_create_in_stripe_and_portal_configuration_are_refused(api: Api) -> None:
    api.feature("seats", consumable=False)
    _refused(
        api.error("customers.get_or_create", customer_id="u1", create_in_stripe=True), "create_in_stripe"
    )
    assert api.error("customers.get", customer_id="u1").body["code"] == "customer_not_found"
    error = api.error(
        "entities.create",
        customer_id="u1",
        entity_id="e1",
        feature_id="seats",
        customer_data={"create_in_stripe": True},
    )
    _refused(error, "customer_data.create_in_stripe")
    assert api.error("customers.get", customer_id="u1").body["code"] == "customer_not_found"
    api("customers.get_or_create", customer_id="u1", create_in_stripe=False)
    api(
        "entities.create",
        customer_id="u1",
        entity_id="e1",
        feature_id="seats",
        customer_data={"create_in_stripe": False},
    )
    error = api.error("billing.open_customer_portal", customer_id="u1", configuration_id="bpc_123")
    _refused(error, "configuration_id")
    assert "/portal/" in api("billing.open_customer_portal", customer_id="u1")["url"]
