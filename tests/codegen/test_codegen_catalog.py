"""The hoist/merge/name rules on small specs, independent of Autumn's current spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from autumn_sdk import models
from codegen.collect import collect
from codegen.emit_models import render_models
from codegen.identifiers import pascal, python_name, singular, snake
from codegen.spec import SpecDocument


def _price(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {"amount": {"type": "number", "description": "Amount."}, **(extra or {})}
    return {"type": "object", "properties": properties, "required": ["amount"]}


def _document(paths: dict[str, Any]) -> SpecDocument:
    return SpecDocument(
        Path("test.yml"), {"openapi": "3.1.0", "servers": [{"url": "https://x"}], "paths": paths}
    )


def _op(operation_id: str, body: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation_id,
            "tags": ["things"],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {"200": {"content": {"application/json": {"schema": response}}}},
        }
    }


def _names(document: SpecDocument) -> set[str]:
    collection = collect([document])
    return {shape.name for shape in collection.catalog.live_shapes() if shape.name}


def test_identical_inline_shapes_become_one_class_named_from_the_first_place() -> None:
    body = {"type": "object", "title": "MakeThingParams", "properties": {"price": _price()}}
    other = {"type": "object", "title": "OtherThingParams", "properties": {"cost": _price()}}
    response = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    names = _names(
        _document({"/a": _op("makeThing", body, response), "/b": _op("otherThing", other, response)})
    )
    # One price class (named where it was met first) and one response class for both operations.
    assert names == {"MakeThingParams", "OtherThingParams", "MakeThingPrice", "MakeThingResponse"}


def test_descriptions_do_not_split_shapes_but_structure_does() -> None:
    described = _price()
    described["description"] = "Something else entirely."
    body = {"type": "object", "title": "AParams", "properties": {"price": _price(), "alt": described}}
    different = {
        "type": "object",
        "title": "BParams",
        "properties": {"price": _price({"cur": {"type": "string"}})},
    }
    response = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    names = _names(_document({"/a": _op("a", body, response), "/b": _op("b", different, response)}))
    assert "APrice" in names and "BPrice" in names
    assert not any(name[-1].isdigit() for name in names)


def test_conflicting_names_are_reported_not_numbered() -> None:
    # Two different union options at the same place need an explicit name in codegen/name_overrides.py.
    union = {"anyOf": [_price(), _price({"cur": {"type": "string"}})]}
    body = {"type": "object", "title": "CParams", "properties": {"price": union}}
    response = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    with pytest.raises(ValueError, match=r"CParamsPrice\[1\]"):
        collect([_document({"/c": _op("c", body, response)})])


def test_naming_helpers() -> None:
    assert snake("getOrCreate") == "get_or_create"
    assert snake("generateOAuthURL") == "generate_oauth_url"
    assert snake("createCode") == "create_code"
    assert (
        pascal("auto_topups") == "AutoTopups" and pascal("balances.limit_reached") == "BalancesLimitReached"
    )
    assert singular("auto_topups") == "auto_topup" and singular("entities") == "entity"
    assert (
        singular("processes") == "process" and singular("list") == "item" and singular("status") == "status"
    )
    assert python_name("type") == "type_" and python_name("import") == "import_" and python_name("id") == "id"


def test_integers_stay_integers_on_the_wire() -> None:
    params = models.TrackParams(customer_id="c", feature_id="f", value=1)
    assert params.model_dump_json(exclude_unset=True) == '{"customer_id":"c","feature_id":"f","value":1}'
    assert models.TrackParams(customer_id="c", feature_id="f", value=0.5).value == 0.5
    with pytest.raises(ValueError):
        models.AutoTopup(feature_id="f", threshold=1, quantity=0)  # quantity has minimum 1


def test_a_field_named_for_a_keyword_keeps_its_wire_name() -> None:
    """track's ``async`` is ``async_`` in Python (as in the official SDK) and ``async`` on the wire."""
    params = models.TrackParams.model_validate({"customer_id": "c", "feature_id": "f", "async": True})
    assert params.async_ is True
    assert params.to_api() == {"customer_id": "c", "feature_id": "f", "async": True}
    assert models.TrackParams(customer_id="c", async_=False).model_dump(
        by_alias=True, exclude_unset=True
    ) == {
        "customerId": "c",
        "async": False,
    }
    assert isinstance(models.TrackParams.model_fields["async_"].alias, str)
    body = {"type": "object", "title": "KParams", "properties": {"async": {"type": "string"}}}
    response = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    code = render_models(collect([_document({"/k": _op("k", body, response)})]).catalog, "# test")
    assert "class KParams(KeywordFieldsModel):" in code


@pytest.mark.parametrize("wire_name", ["model_config", "camel-case"])
def test_wire_names_that_cannot_be_field_names_fail_loudly(wire_name: str) -> None:
    body = {"type": "object", "title": "KParams", "properties": {wire_name: {"type": "string"}}}
    response = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    collection = collect([_document({"/k": _op("k", body, response)})])
    with pytest.raises(ValueError, match="renamed by the generator"):
        render_models(collection.catalog, "# test")
