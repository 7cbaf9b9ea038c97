"""Fields of the current spec the server does not act on yet are refused, never silently ignored."""

from __future__ import annotations

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
