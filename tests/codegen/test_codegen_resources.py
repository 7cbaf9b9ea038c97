"""Generated resource methods: keyword names, the body they hand to the client, pagination, raw views.

The client side is a recorder standing in for the hand-written client's ``_request`` family (the
boundary the generated code calls); it answers with the parsed model like the real client would.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import BaseModel

from autumn_sdk import models
from autumn_sdk._generated import operations as ops
from autumn_sdk._generated import resources
from autumn_sdk._operation import Operation
from autumn_sdk._resource import NOT_GIVEN, RequestOptions
from autumn_sdk._response import current_capture

T = TypeVar("T", bound=BaseModel)

CANNED: dict[str, dict[str, Any]] = {
    "check": {"allowed": True, "customer_id": "cus_1", "balance": None, "flag": None},
    "features.create": {"id": "f", "name": "F", "type": "metered", "consumable": True, "archived": False},
    "plans.list": {"list": []},
}


class RecordingClient:
    def __init__(self) -> None:
        self.calls: list[tuple[Operation, dict[str, Any], RequestOptions]] = []

    def _answer(self, op: Operation, body: Mapping[str, Any], options: RequestOptions, cast_to: type[T]) -> T:
        self.calls.append((op, dict(body), options))
        capture = current_capture()
        if capture is not None:
            capture.response = httpx.Response(200, json=CANNED[op.qualified_name])
        return cast_to.model_validate(CANNED[op.qualified_name])

    def _request(
        self, op: Operation, body: Mapping[str, Any], options: RequestOptions, cast_to: type[T]
    ) -> T:
        return self._answer(op, body, options, cast_to)

    async def _request_async(
        self, op: Operation, body: Mapping[str, Any], options: RequestOptions, cast_to: type[T]
    ) -> T:
        return self._answer(op, body, options, cast_to)

    def _paginate(
        self, op: Operation, body: Mapping[str, Any], options: RequestOptions, item_type: type[T]
    ) -> Iterator[T]:
        self.calls.append((op, dict(body), options))
        yield item_type.model_construct(id="cus_1")

    async def _paginate_async(
        self, op: Operation, body: Mapping[str, Any], options: RequestOptions, item_type: type[T]
    ) -> AsyncIterator[T]:
        self.calls.append((op, dict(body), options))
        yield item_type.model_construct(id="cus_1")


def test_groups_and_methods_mirror_the_operation_table() -> None:
    api = resources.AutumnAPI(RecordingClient())
    for op in ops.OPERATIONS:
        owner = getattr(api, op.group) if op.group else api
        assert callable(getattr(owner, op.method_name)), op.qualified_name
        assert inspect.iscoroutinefunction(getattr(owner, f"{op.method_name}_async")), op.qualified_name
        async_owner = getattr(resources.AsyncAutumnAPI(RecordingClient()), op.group) if op.group else None
        if async_owner is not None:
            assert inspect.iscoroutinefunction(getattr(async_owner, op.method_name))
    assert api.customers is api.customers  # cached per client


def test_keyword_names_match_the_spec_with_type_underscored() -> None:
    signature = inspect.signature(resources.Features.create)
    assert {"name", "type_", "feature_id", "display", "options"} <= set(signature.parameters)
    assert signature.parameters["type_"].kind is inspect.Parameter.KEYWORD_ONLY
    assert signature.parameters["type_"].default is inspect.Parameter.empty
    assert signature.parameters["display"].default is NOT_GIVEN
    assert inspect.getdoc(resources.Features.create) == "Creates a new feature."


def test_fields_style_body_uses_wire_names() -> None:
    client = RecordingClient()
    feature = resources.Features(client).create(name="F", type_="metered", feature_id="f", timeout_ms=5)
    assert isinstance(feature, models.Feature)
    op, body, options = client.calls[0]
    assert op is ops.FEATURES_CREATE
    assert body["type"] == "metered" and "type_" not in body
    assert body["display"] is NOT_GIVEN
    assert options == {"timeout_ms": 5}


def test_request_style_accepts_model_mapping_or_nothing() -> None:
    client = RecordingClient()
    plans = resources.Plans(client)
    plans.list()
    plans.list(request={"customer_id": "cus_1"})
    plans.list(request=models.ListPlansParams(customer_id="cus_2"))
    assert [body for _, body, _ in client.calls] == [{}, {"customer_id": "cus_1"}, {"customer_id": "cus_2"}]


async def test_async_resources_and_twins() -> None:
    client = RecordingClient()
    result = await resources.AsyncAutumnAPI(client).check(customer_id="cus_1", feature_id="messages")
    assert isinstance(result, models.CheckResponse)
    twin = await resources.AutumnAPI(client).check_async(customer_id="cus_1", feature_id="messages")
    assert twin == result
    assert [op for op, _, _ in client.calls] == [ops.CHECK, ops.CHECK]


async def test_cursor_lists_get_list_all() -> None:
    client = RecordingClient()
    customers = list(resources.Customers(client).list_all(limit=10))
    assert [c.id for c in customers] == ["cus_1"] and isinstance(customers[0], models.Customer)
    assert "start_cursor" not in client.calls[0][1] and client.calls[0][1]["limit"] == 10
    assert "start_cursor" not in inspect.signature(resources.Customers.list_all).parameters
    items = [c async for c in resources.AsyncCustomers(client).list_all()]
    assert items[0].id == "cus_1"
    for cls in (resources.Entities, resources.Events):
        assert hasattr(cls, "list_all") and hasattr(cls, "list_all_async")
    assert not hasattr(resources.Plans, "list_all")


async def test_raw_response_views_wrap_every_method() -> None:
    client = RecordingClient()
    raw = resources.AutumnAPIWithRawResponse(resources.AutumnAPI(client))
    response = raw.check(customer_id="cus_1", feature_id="messages")
    assert response.status_code == 200 and isinstance(response.parse(), models.CheckResponse)
    listed = await raw.plans.list_async()
    assert listed.parse().list == []
    async_raw = resources.AsyncAutumnAPIWithRawResponse(resources.AsyncAutumnAPI(client))
    created = await async_raw.features.create(name="F", type_="metered", feature_id="f")
    assert created.parse().id == "f"


def test_every_fields_style_method_takes_exactly_the_params_model_fields() -> None:
    api = resources.AutumnAPI(RecordingClient())
    for op in ops.OPERATIONS:
        method = getattr(getattr(api, op.group) if op.group else api, op.method_name)
        parameters = inspect.signature(method).parameters
        if op.body_style in ("request", "items"):
            assert list(parameters) == ["request", "options"], op.qualified_name
            continue
        assert op.params_model is not None
        keywords = [name.removesuffix("_") for name in parameters if name != "options"]
        fields = {name.removesuffix("_"): field for name, field in op.params_model.model_fields.items()}
        assert sorted(keywords) == sorted(fields), op.qualified_name
        for name, parameter in parameters.items():
            if name == "options":
                continue
            field = fields[name.removesuffix("_")]
            assert (parameter.default is inspect.Parameter.empty) == field.is_required(), (
                op.qualified_name,
                name,
            )


async def test_every_method_refuses_an_unknown_keyword_with_the_closest_name() -> None:
    """Sync methods, ``*_async`` twins, async resources and ``list_all``: a misspelt keyword is a
    ``TypeError`` naming it and the nearest valid name, and the client is never called."""
    client = RecordingClient()
    sync_api, async_api = resources.AutumnAPI(client), resources.AsyncAutumnAPI(client)
    checked = 0
    for op in ops.OPERATIONS:
        for api in (sync_api, async_api):
            owner = getattr(api, op.group) if op.group else api
            names = [op.method_name, f"{op.method_name}_async"]
            if op.name == "list" and hasattr(owner, "list_all"):
                names += ["list_all", "list_all_async"]
            for name in names:
                method = getattr(owner, name, None)
                if method is None:
                    continue
                parameters = inspect.signature(method).parameters
                valid = [p for p in parameters if p != "options"]
                required = {
                    p: None for p, spec in parameters.items() if spec.default is inspect.Parameter.empty
                }
                required.pop("options", None)
                misspelt = (valid[-1] if valid else "retries") + "x"
                with pytest.raises(TypeError) as info:
                    outcome = method(**required, **{misspelt: 1})
                    if inspect.isawaitable(outcome):
                        await outcome
                message = str(info.value)
                assert (
                    f"{type(owner).__name__}.{name}() got an unexpected keyword argument {misspelt!r}"
                    in message
                )
                assert message.endswith(f"did you mean {misspelt[:-1]!r}?"), message
                checked += 1
    assert checked >= 3 * len(ops.OPERATIONS)
    assert client.calls == []


def test_each_group_is_a_module_loaded_when_first_used() -> None:
    probe = (
        "import sys\n"
        "from autumn_sdk import Autumn\n"
        "client = Autumn('am_sk_test_x', server_url='http://127.0.0.1:9')\n"
        "prefix = 'autumn_sdk._generated.resources.'\n"
        "def loaded():\n"
        "    return sorted(m[len(prefix):] for m in sys.modules if m.startswith(prefix))\n"
        "print(loaded())\n"
        "client.billing\n"
        "print(loaded())\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["['_bodies', 'root']", "['_bodies', 'billing', 'root']"]


def test_the_package_re_exports_every_class_from_its_group_module() -> None:
    from autumn_sdk._generated.resources import billing, customers

    assert resources.Customers is customers.Customers
    assert resources.AsyncBillingWithRawResponse is billing.AsyncBillingWithRawResponse
    for name in resources.__all__:
        assert inspect.isclass(getattr(resources, name)), name
    with pytest.raises(AttributeError):
        _ = resources.Nope
