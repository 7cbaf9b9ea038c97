"""Derive ``spec/autumn-sdk-1.2.0-operations.yml`` from the official ``autumn-sdk`` 1.2.0 itself.

The official Python SDK is Speakeasy-generated from Autumn's internal spec, so its Pydantic models are
the request and response shapes of its operations.  This script reads, for each official operation
that ``spec/autumn-2026-08-22.yml`` lacks, the method's path, ``operationId`` and docstring and the
JSON schemas of its request and response models, and writes them as one OpenAPI 3.1 document:

- ``Nullable[X]`` and ``OptionalNullable[X]`` fields are nullable, ``Optional[X]`` ones are only
  optional (Speakeasy's Python makes every optional field ``Optional``);
- an open enum of a response (``Literal[...]`` or any string) is a string whose description lists the
  known values; Speakeasy's catch-all "unknown" variant of an open union is left out, and a union's
  discriminator (a ``const`` with itself as default) is required;
- the limits Speakeasy's Python drops but the docstrings state (:data:`LIMITS`) are added.

It also writes, under ``x-official-arguments``, the request fields that the official methods of
operations of Autumn's spec take beyond that spec (:data:`ARGUMENTS`, Autumn's internal spec being
newer): path -> field -> schema, read the same way. ``codegen/overlay.py`` adds them to those requests.

It runs with the interpreter of an environment that has ``autumn-sdk==1.2.0`` (never this kit's: both
install ``autumn_sdk``), as a script, not as part of the package: ``python -I codegen/official_operations.py``
prints the document as JSON; ``--write PATH`` writes it as YAML (PyYAML needed there).
``tests/official_sdk`` checks the vendored file is exactly what it derives.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import json
import re
import sys
from typing import Any

OPERATIONS = (
    "balances.list",
    "billing.verify",
    "customers.advance_test_clock",
    "customers.list_purchases",
    "customers.list_subscriptions",
    "invoices.create",
    "invoices.finalize",
    "invoices.issue_credit_note",
    "invoices.list_templates",
    "invoices.pay",
    "invoices.reissue",
    "invoices.update",
    "invoices.void",
    "logs.search",
    "platform.disconnect_stripe",
    "platform.get_stripe_connection",
    "sandboxes.create",
    "sandboxes.delete",
    "sandboxes.list",
    "sandboxes.reset",
    "webhooks.create",
    "webhooks.delete",
    "webhooks.get",
    "webhooks.list",
    "webhooks.preview_sync",
    "webhooks.sync",
    "webhooks.update",
)
"""The official operations beyond Autumn's published spec (``group.method``)."""

_LINES = ("add_lines", "remove_lines", "remove_discounts", "free_trial")
ARGUMENTS: dict[str, tuple[str, ...]] = {
    "customers.get_or_create": ("billing_details",),
    "customers.update": ("billing_details",),
    "features.create": ("combine",),
    "features.update": ("combine",),
    "billing.attach": (*_LINES, "billing_details", "tax"),
    "billing.preview_attach": (*_LINES, "billing_details", "tax"),
    "billing.setup_payment": (*_LINES, "billing_details", "tax"),
    "billing.update": (*_LINES, "custom_line_items", "subscription_params"),
    "billing.preview_update": (*_LINES, "custom_line_items", "subscription_params"),
    "billing.multi_update": ("refund_last_payment", "subscription_params"),
    "billing.preview_multi_update": ("refund_last_payment", "subscription_params"),
    "events.list": ("range",),
    "events.aggregate": ("measure", "timezone"),
    "invoices.list": ("invoice_id", "stripe_id"),
    "referrals.create_program": ("internal_id",),
}
"""The official methods of operations of ``autumn-2026-08-22.yml`` -> their arguments that spec lacks."""

BROKEN_MODEL_MODULES = ("autumn_sdk.models.createfeatureop", "autumn_sdk.models.updatefeatureop")
"""Official model modules that name classes before defining them (1.2.0's import bug); imported with
their statements in dependency order."""

LIMITS: dict[tuple[str, str], dict[str, Any]] = {
    ("balances.list", "limit"): {"minimum": 1, "maximum": 200},
    ("balances.list", "statuses"): {"minItems": 1},
    ("customers.list_purchases", "limit"): {"minimum": 1, "maximum": 200},
    ("customers.list_purchases", "statuses"): {"minItems": 1},
    ("customers.list_subscriptions", "limit"): {"minimum": 1, "maximum": 200},
    ("customers.list_subscriptions", "statuses"): {"minItems": 1},
    ("logs.search", "limit"): {"minimum": 1, "maximum": 200, "default": 100},
    ("logs.search", "query"): {"maxLength": 4000},
    ("sandboxes.create", "name"): {"minLength": 1, "maxLength": 200},
    ("sandboxes.create", "icon"): {"maxLength": 64},
}
"""Request limits the official docstrings state ("from 1 to 200", "hard ceiling 200"...) and Autumn's
server enforces, which Speakeasy's Python models leave out."""

SHARED_REQUESTS = {"webhooks.sync": "SyncWebhooksParams", "webhooks.preview_sync": "SyncWebhooksParams"}
"""One request shape under one title (the SDK's own names repeat the group:
``SyncWebhooksSyncWebhooksParams``)."""

CALL_OPTIONS = frozenset({"request", "retries", "server_url", "timeout_ms", "http_headers"})
NULL: dict[str, Any] = {"type": "null"}
UNSET_SENTINEL = "~?~unset~?~sentinel~?~"


def _camel(snake_name: str) -> str:
    first, *rest = snake_name.split("_")
    return first + "".join(word.title() for word in rest)


def _ref_name(schema: dict[str, Any]) -> str:
    return str(schema.get("$ref", "")).rsplit("/", 1)[-1]


def _is_unknown_variant(option: dict[str, Any], defs: dict[str, Any]) -> bool:
    target = defs.get(_ref_name(option), option) if "$ref" in option else option
    return "is_unknown" in (target.get("properties") or {})


def _convert(schema: dict[str, Any], defs: dict[str, Any], response: bool) -> tuple[dict[str, Any], bool]:
    """The OpenAPI schema of a Pydantic JSON schema, and whether it is a Speakeasy ``Nullable``."""
    if "$ref" in schema:
        name = _ref_name(schema)
        target = defs[name]
        if name.startswith("OptionalNullable_"):
            inner = [o for o in target["anyOf"] if o != NULL and _ref_name(o) != "Unset"]
            return _convert(inner[0], defs, response)[0], True
        if name.startswith("Nullable_"):
            if "anyOf" not in target:  # Nullable[Any]
                return {}, False
            inner = [o for o in target["anyOf"] if o != NULL]
            return _convert(inner[0] if len(inner) == 1 else {"anyOf": inner}, defs, response)[0], True
        return _convert(target, defs, response)
    if "anyOf" in schema:
        nullable = NULL in schema["anyOf"]
        options = [o for o in schema["anyOf"] if o != NULL and not _is_unknown_variant(o, defs)]
        strings = [o for o in options if o.get("type") == "string"]
        if len(options) == 2 and len(strings) == 2 and any("enum" in o for o in strings):
            known = next(o for o in strings if "enum" in o)["enum"]
            if response:  # an open enum: any string may come
                listed = ", ".join(known)
                return {
                    "type": "string",
                    "description": f"Known values: {listed} (others may appear).",
                }, nullable
            return {"type": "string", "enum": known}, nullable
        converted = []
        for option in options:
            out, inner_nullable = _convert(option, defs, response)
            nullable = nullable or inner_nullable
            converted.append(out)
        return (converted[0] if len(converted) == 1 else {"anyOf": converted}), nullable
    if schema.get("type") == "object" or "properties" in schema:
        return _object(schema, defs, response), False
    if schema.get("type") == "array":
        return {"type": "array", "items": _convert(schema.get("items", {}), defs, response)[0]}, False
    return {key: schema[key] for key in ("type", "enum", "const", "format") if key in schema}, False


def _object(schema: dict[str, Any], defs: dict[str, Any], response: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    declared_required = set(schema.get("required", []))
    required: list[str] = []
    for name, field in (schema.get("properties") or {}).items():
        out, nullable = _convert(field, defs, response)
        out = dict(out)
        # Only Speakeasy's Nullable/OptionalNullable (a $ref here) are nullable; Optional[X] = None is not.
        if nullable and "$ref" in field:
            out = {"anyOf": [*out["anyOf"], NULL]} if "anyOf" in out else {"anyOf": [out, NULL]}
        default = field.get("default")
        is_required = name in declared_required
        if "const" in out and default == out["const"]:  # a union's discriminator: always sent
            default, is_required = None, True
        if default is not None and default != UNSET_SENTINEL and not isinstance(default, (dict, list)):
            out["default"] = default
        properties[name] = out
        if is_required:
            required.append(name)
    result: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        result["required"] = required
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        result["additionalProperties"] = _convert(extra, defs, response)[0]
    elif extra is True and not properties:
        result["additionalProperties"] = {}
    return result


def _root(model: Any, response: bool) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema(
        mode="validation" if response else "serialization", ref_template="#/$defs/{model}"
    )
    defs = schema.pop("$defs", {})
    return {"title": schema.get("title"), **_convert(schema, defs, response)[0]}


def _docstring(method: Any) -> tuple[str, dict[str, str]]:
    """The method's text and its ``:param name: text`` lines (the per-call options left out)."""
    text, _, params = (inspect.getdoc(method) or "").partition("\n:param")
    described = {}
    for line in (":param" + params).splitlines():
        found = re.match(r":param (\w+): (.*)", line)
        if found and found.group(1) not in CALL_OPTIONS:
            described[found.group(1)] = found.group(2).strip()
    return text.strip(), described


def _import_in_dependency_order(name: str) -> None:
    """Import the model module ``name`` although some of its statements name classes defined later."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ImportError(f"the official SDK has no {name}")
    with open(spec.origin, encoding="utf-8") as handle:
        pending = ast.parse(handle.read(), spec.origin).body
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    while pending:
        deferred = []
        for statement in pending:
            try:
                code = compile(ast.Module(body=[statement], type_ignores=[]), spec.origin, "exec")
                exec(code, module.__dict__)
            except NameError:  # names a class defined further down: run it after that class
                deferred.append(statement)
        if len(deferred) == len(pending):
            raise ImportError(f"{spec.origin}: unresolvable names")
        pending = deferred


def _method(official: Any, qualified: str) -> tuple[Any, str]:
    """The official sub-SDK method of ``group.method`` and its source."""
    group, name = qualified.split(".")
    module_name, class_name = official.Autumn._sub_sdk_map[group]
    method = getattr(getattr(importlib.import_module(module_name), class_name), name)
    return method, inspect.getsource(method)


def _arguments(official: Any, models: Any, qualified: str) -> tuple[str, dict[str, Any]]:
    """The path of an operation of Autumn's spec and the schemas of its :data:`ARGUMENTS`."""
    method, source = _method(official, qualified)
    path = re.search(r'path="([^"]+)"', source)
    model = re.search(r'"json",\s*(?:Optional\[)?models\.(\w+)', source)
    if path is None or model is None:
        raise ValueError(f"{qualified}: no path or request model in the official method")
    properties = _root(getattr(models, model.group(1)), response=False)["properties"]
    _, described = _docstring(method)
    fields = {}
    for field_name in ARGUMENTS[qualified]:
        field = properties[field_name]
        if field_name in described:
            field["description"] = described[field_name]
        fields[field_name] = field
    return path.group(1), fields


def _operation(official: Any, models: Any, qualified: str) -> tuple[str, dict[str, Any]]:
    group, name = qualified.split(".")
    method, source = _method(official, qualified)

    def found(pattern: str) -> str:
        match = re.search(pattern, source)
        if match is None:
            raise ValueError(f"{qualified}: no {pattern!r} in the official method")
        return match.group(1)

    path = found(r'path="([^"]+)"')
    request_model = getattr(models, found(r'"json",\s*(?:Optional\[)?models\.(\w+)'))
    response_model = getattr(models, found(r"unmarshal_json_response\(\s*models\.(\w+)"))
    text, described = _docstring(method)
    request = _root(request_model, response=False)
    if qualified in SHARED_REQUESTS:
        request["title"] = SHARED_REQUESTS[qualified]
        request["properties"]["webhooks"]["items"]["title"] = "SyncWebhookItem"
    for field_name, field in request.get("properties", {}).items():
        if field_name in described:
            field["description"] = described[field_name]
        field.update(LIMITS.get((qualified, field_name), {}))
    return path, {
        "post": {
            "operationId": found(r'operation_id="([^"]+)"'),
            "summary": text.split(". ")[0].rstrip("."),
            "description": text,
            "tags": [group],
            "x-speakeasy-name-override": _camel(name),
            "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": _root(response_model, response=True)}},
                }
            },
        }
    }


def document() -> dict[str, Any]:
    """The OpenAPI document of :data:`OPERATIONS`, read from the installed official SDK."""
    official = importlib.import_module("autumn_sdk")
    if official.__name__ != "autumn_sdk" or not hasattr(official.Autumn, "_sub_sdk_map"):
        raise RuntimeError("run this with the interpreter of an environment holding autumn-sdk 1.2.0")
    for name in BROKEN_MODEL_MODULES:
        _import_in_dependency_order(name)
    models = importlib.import_module("autumn_sdk.models")
    paths = dict(sorted(_operation(official, models, qualified) for qualified in OPERATIONS))
    arguments = dict(sorted(_arguments(official, models, qualified) for qualified in ARGUMENTS))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Autumn API: the official autumn-sdk 1.2.0 operations beyond the published spec",
            "version": "2.5.0",
            "description": (
                "Written for this kit, not published by Autumn. The operations of the official Python SDK "
                "autumn-sdk 1.2.0 (Speakeasy-generated from Autumn's internal spec) that "
                "autumn-2026-08-22.yml lacks: paths, operation ids, method names and request and response "
                "shapes read from that SDK's models and method docstrings; under x-official-arguments, the "
                "request fields its methods of that spec's operations take beyond it. See spec/README.md."
            ),
        },
        "servers": [{"url": "https://api.useautumn.com", "description": "Production server"}],
        "paths": paths,
        "x-official-arguments": arguments,
    }


def main(argv: list[str]) -> int:
    derived = document()
    if argv[1:2] == ["--write"] and len(argv) == 3:
        yaml: Any = importlib.import_module("yaml")
        plain = json.loads(json.dumps(derived))  # no shared objects, so no YAML anchors
        with open(argv[2], "w", encoding="utf-8") as handle:
            yaml.safe_dump(plain, handle, sort_keys=False, allow_unicode=True, width=110)
        return 0
    print(json.dumps(derived))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
