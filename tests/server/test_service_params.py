"""Every service takes its operation's validated params model (api/endpoints.py), never a raw dict."""

from __future__ import annotations

from typing import Any

import pytest

from autumn_sdk._generated.models import BatchTrackItem, CheckParams
from autumn_sdk._generated.operations import OPERATIONS
from reference_server.api.endpoints import (
    ASYNC_SERVICES,
    EXTRA_OPERATIONS,
    WIDER_PARAMS,
    Endpoint,
    endpoints,
    takes_request,
    validate_request,
)
from reference_server.errors import ApiError
from reference_server.service.context import Ctx
from reference_server.service.extra_params import NoParams


def test_every_operation_has_a_service_annotated_with_its_model() -> None:
    table = endpoints()
    assert [ep.name for ep in table if ep.in_spec] == [op.qualified_name for op in OPERATIONS]
    assert {ep.path for ep in table if not ep.in_spec} == set(EXTRA_OPERATIONS)
    for ep in table:
        assert takes_request(ep, ep.service), ep.name
        expected = next((op.params_model for op in OPERATIONS if op.qualified_name == ep.name), None)
        assert ep.params_model is (WIDER_PARAMS.get(ep.name) or expected or ep.params_model), ep.name
    fast = {ep.name: ep for ep in table if ep.async_service is not None}
    assert set(fast) == {op.qualified_name for op in ASYNC_SERVICES}
    assert all(takes_request(ep, ep.async_service) for ep in fast.values() if ep.async_service)


BATCH = "/v1/balances.batch_track"


def _check_as_dict(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    return body


def _check_typed(ctx: Ctx, params: CheckParams) -> dict[str, Any]:
    return {}


def _batch_typed(ctx: Ctx, items: list[BatchTrackItem]) -> dict[str, Any]:
    return {}


def test_a_service_that_reads_a_dict_or_another_model_is_refused() -> None:
    check = Endpoint("check", "/v1/balances.check", "POST", _check_typed, CheckParams)
    assert takes_request(check, _check_typed)
    assert not takes_request(check, _check_as_dict)
    assert not takes_request(check, _batch_typed)
    batch = Endpoint(
        "batch_track", "/v1/balances.batch_track", "POST", _batch_typed, BatchTrackItem, items=(1, 3)
    )
    assert takes_request(batch, _batch_typed)
    assert not takes_request(batch, _check_typed)


def test_validate_request_hands_over_the_model_and_refuses_bad_input_with_400() -> None:
    check = Endpoint("check", "/v1/balances.check", "POST", _check_typed, CheckParams)
    parsed = validate_request(check, {"customer_id": "u1", "feature_id": "messages"})
    assert isinstance(parsed, CheckParams) and parsed.customer_id == "u1"
    with pytest.raises(ApiError) as missing:
        validate_request(check, {"feature_id": "messages"})
    assert (missing.value.status, missing.value.code) == (400, "invalid_inputs")
    batch = Endpoint(
        "batch_track", "/v1/balances.batch_track", "POST", _batch_typed, BatchTrackItem, items=(1, 2)
    )
    items = validate_request(batch, {"items": [{"customer_id": "u1", "feature_id": "m"}]})
    assert [type(item) for item in items] == [BatchTrackItem]
    with pytest.raises(ApiError) as too_many:
        validate_request(batch, {"items": [{"customer_id": "u1", "feature_id": "m"}] * 3})
    assert "between 1 and 2 items" in too_many.value.message
    nothing = Endpoint("webhooks.list", "/v1/webhooks.list", "POST", _check_typed, NoParams)
    assert isinstance(validate_request(nothing, {"ignored": 1}), NoParams)


def test_a_wider_request_model_takes_every_field_of_the_spec_model() -> None:
    by_name = {op.qualified_name: op for op in OPERATIONS}
    for name, wider in WIDER_PARAMS.items():
        spec_model = by_name[name].params_model
        assert spec_model is not None, name
        assert set(spec_model.model_fields) < set(wider.model_fields), name
        official = {"customer_id": "c", "frozen_time": 1_700_000_000_000}
        assert wider.model_validate(official).model_dump(exclude_unset=True) == official
