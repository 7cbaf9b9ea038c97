"""The generated model catalogue: meaningful unique names, one class per shape, AutumnModel behaviour."""

from __future__ import annotations

import inspect
import re
from typing import get_args

import pytest
from pydantic import BaseModel, ValidationError

from autumn_sdk import models
from autumn_sdk._generated import models as models_module
from autumn_sdk._generated import operations as ops
from autumn_sdk._model import AutumnModel
from autumn_sdk._operation import model_named

MODEL_CLASSES = {
    name: obj
    for name in models.__all__
    if inspect.isclass(obj := getattr(models, name))
    and issubclass(obj, BaseModel)
    and obj.__module__.startswith("autumn_sdk._generated.models.")
}


def test_every_generated_class_is_an_autumn_model_and_exported() -> None:
    assert len(MODEL_CLASSES) > 150
    for model in MODEL_CLASSES.values():
        assert issubclass(model, AutumnModel)
    assert sorted([*MODEL_CLASSES, "CustomerExpand", "PlanId"]) == sorted(models.__all__)


def test_named_enum_components_are_literal_aliases() -> None:
    params = models.GetCustomerParams.model_validate({"customer_id": "c", "expand": ["invoices"]})
    assert params.expand == ["invoices"]
    with pytest.raises(ValidationError):
        models.GetCustomerParams.model_validate({"customer_id": "c", "expand": ["nope"]})
    assert "invoices" in get_args(models.CustomerExpand.__value__)


def test_no_numbered_collision_names() -> None:
    numbered = [name for name in MODEL_CLASSES if re.search(r"\d$", name)]
    assert numbered == []


def test_component_names_are_kept() -> None:
    for name in ("Customer", "CustomerData", "Plan", "Balance", "PlatformUser", "PlatformOrganization"):
        assert name in MODEL_CLASSES


def test_one_customer_class_serves_every_customer_operation() -> None:
    list_item = ops.CUSTOMERS_LIST.response_model.model_fields["list"].annotation  # type: ignore[union-attr]
    assert list_item == list[models.Customer]
    for op in (ops.CUSTOMERS_GET, ops.CUSTOMERS_GET_OR_CREATE, ops.CUSTOMERS_UPDATE):
        assert op.response_model is models.Customer


def test_one_class_per_plan_feature_entity_and_balance() -> None:
    for op in (ops.PLANS_CREATE, ops.PLANS_GET, ops.PLANS_UPDATE):
        assert op.response_model is models.Plan
    for op in (ops.FEATURES_CREATE, ops.FEATURES_GET, ops.FEATURES_UPDATE):
        assert op.response_model is models.Feature
    for op in (ops.ENTITIES_CREATE, ops.ENTITIES_GET, ops.ENTITIES_UPDATE):
        assert op.response_model is models.Entity
    assert models.ListEntitiesResponse.model_fields["list"].annotation == list[models.Entity]
    assert models.CheckResponse.model_fields["balance"].annotation == models.Balance | None
    assert models.TrackResponse.model_fields["balance"].annotation == models.Balance | None
    assert models.Customer.model_fields["balances"].annotation == dict[str, models.Balance]


def test_shared_responses_are_one_class() -> None:
    success_ops = (ops.CUSTOMERS_DELETE, ops.PLANS_DELETE, ops.FEATURES_DELETE, ops.ENTITIES_DELETE)
    assert {op.response_model for op in success_ops} == {models.SuccessResponse}
    assert ops.BILLING_MULTI_ATTACH.response_model is models.AttachResponse
    assert ops.BILLING_UPDATE.response_model is models.AttachResponse


def test_titled_request_bodies_keep_their_titles() -> None:
    assert ops.CHECK.params_model is models.CheckParams
    assert ops.TRACK.params_model is models.TrackParams
    assert ops.BILLING_ATTACH.params_model is models.AttachParams
    assert ops.BILLING_PREVIEW_ATTACH.params_model is models.PreviewAttachParams
    assert ops.ENTITIES_LIST.params_model is models.ListEntitiesParams


def test_webhook_payload_models() -> None:
    assert model_named(ops.WEBHOOK_EVENTS["balances.limit_reached"]) is models.BalancesLimitReachedEvent
    assert model_named(ops.WEBHOOK_EVENTS["billing.updated"]) is models.BillingUpdatedEvent
    event = models.BalancesLimitReachedEvent.model_validate(
        {
            "type": "balances.limit_reached",
            "data": {"customer_id": "c", "feature_id": "f", "limit_type": "included"},
        }
    )
    assert event.data.limit_type == "included"


def test_enums_and_consts_are_literals_and_nullables_optional() -> None:
    assert str(models.BalancesLimitReachedEvent.model_fields["type"].annotation) == (
        "typing.Literal['balances.limit_reached']"
    )
    name = models.CustomerData.model_fields["name"]
    assert name.annotation == str | None and not name.is_required()
    assert models.CheckParams.model_fields["customer_id"].is_required()


def test_non_nullable_fields_follow_the_spec() -> None:
    """Optional fields stay ``X | None = None``; the table keeps which of them the spec lets be null."""
    table = models_module.NON_NULLABLE_FIELDS
    customer_update = models_module.non_nullable_fields(models.UpdateCustomerParams)
    assert "send_email_receipts" in customer_update  # type: boolean
    assert "name" not in customer_update and "email" not in customer_update  # anyOf [string, null]
    assert "customer_id" not in customer_update  # required: pydantic refuses null there itself
    plan_update = table["UpdatePlanParams"]
    assert "name" in plan_update and "price" not in plan_update and "free_trial" not in plan_update
    assert "CreateOrganizationResponse" not in table  # OpenAPI 3.0 ``nullable: true``
    assert "organizations" not in models_module.non_nullable_fields(models.PlatformUser)
    assert models_module.non_nullable_fields(type("UpdatePlanParams", (BaseModel,), {})) == frozenset()
    field = models.UpdateCustomerParams.model_fields["send_email_receipts"]
    assert field.annotation == bool | None and not field.is_required()
    assert "NON_NULLABLE_FIELDS" not in models.__all__


def test_descriptions_reach_field_metadata() -> None:
    assert models.CheckParams.model_fields["feature_id"].description


def test_wire_names_are_field_names_without_explicit_aliases() -> None:
    for model in MODEL_CLASSES.values():
        for name, field in model.model_fields.items():
            assert name.isidentifier()
            assert field.alias is None or field.alias == _camel(name)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def test_camel_case_aliases_validate() -> None:
    params = models.CheckParams.model_validate({"customerId": "cus_1", "featureId": "messages"})
    assert params.customer_id == "cus_1" and params.feature_id == "messages"
    assert params.to_api() == {"customer_id": "cus_1", "feature_id": "messages"}


def test_to_browser_is_camel_case_but_map_keys_stay_untouched() -> None:
    params = models.CheckParams.model_validate(
        {"customer_id": "cus_1", "feature_id": "f", "properties": {"user_agent": "x", "someKey": 1}}
    )
    browser = params.to_browser()
    assert browser["customerId"] == "cus_1"
    assert browser["properties"] == {"user_agent": "x", "someKey": 1}
    assert "customer_id" not in browser


def test_list_fields_keep_their_wire_name() -> None:
    page = models.ListCustomersResponse.model_validate({"list": [], "next_cursor": None})
    assert page.to_api() == {"list": [], "next_cursor": None}


def test_unknown_fields_are_kept() -> None:
    response = models.SuccessResponse.model_validate({"success": True, "new_server_field": {"a": 1}})
    assert response.model_extra == {"new_server_field": {"a": 1}}
    assert response.to_api() == {"success": True, "new_server_field": {"a": 1}}
