"""A local stand-in for the Autumn API: every v1 path answers with the spec's own example.

Used to run the spec's ``x-codeSamples`` against the SDK over real HTTP until the reference server
(``reference_server/``) can serve them; then :func:`serve` can be swapped for the reference app.
Each request is checked the way the real API would: bearer key present, ``x-api-version`` sent, the
body valid for the operation's params model. Each canned answer is validated through the
operation's response model at startup, so a bad example fails loudly here, not in the SDK.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from pydantic import ValidationError
from pydantic.alias_generators import to_snake
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from autumn_sdk._generated.operations import OPERATIONS
from autumn_sdk._operation import Operation

from .spec_samples import spec


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec()["components"]["schemas"][name]
    return schema


def _choices(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [_resolve(c) for c in schema.get("anyOf", schema.get("oneOf", []))]


def minimal_instance(schema: dict[str, Any]) -> Any:
    """The smallest value satisfying ``schema``'s required fields (``None`` where null is allowed)."""
    schema = _resolve(schema)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    choices = _choices(schema)
    if choices:
        if any(c.get("type") == "null" for c in choices):
            return None
        return minimal_instance(choices[0])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {name: minimal_instance(properties[name]) for name in schema.get("required", [])}
    return {"boolean": True, "string": "", "number": 0, "integer": 0, "array": []}.get(str(kind))


def _matches(value: Any, schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if isinstance(value, dict):
        return kind == "object" or "properties" in schema
    if isinstance(value, list):
        return kind == "array"
    return kind not in ("object", "array")


def repair(value: Any, schema: dict[str, Any]) -> Any:
    """Bring a documentation example up to its schema: wire (snake_case) keys, required fields present.

    Several of the spec's examples predate their schemas (camelCase keys, fields added later);
    the real API answers in the schema's shape, so the stub does too.
    """
    schema = _resolve(schema)
    choices = _choices(schema)
    if choices:
        if value is None:
            return None
        fitting = [c for c in choices if c.get("type") != "null" and _matches(value, c)]
        return repair(value, fitting[0]) if fitting else value
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [repair(item, schema["items"]) for item in value]
    if not isinstance(value, dict):
        return value
    properties: dict[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    fixed: dict[str, Any] = {}
    for key, item in value.items():
        name = to_snake(key) if to_snake(key) in properties else key
        if name in properties:
            fixed[name] = repair(item, properties[name])
        elif isinstance(extra, dict):
            fixed[name] = repair(item, extra)
        else:
            fixed[name] = item
    for name in schema.get("required", []):
        if name not in fixed and name in properties:
            fixed[name] = minimal_instance(properties[name])
    return fixed


def canned_response(op: Operation) -> tuple[int, Any]:
    """The spec's example (or a minimal valid body) for ``op``, checked against its response model."""
    responses = spec()["paths"][op.path]["post"]["responses"]
    status = str(op.success_statuses[0])
    content = responses[status]["content"]["application/json"]
    body = content.get("example")
    if body is None and content.get("examples"):
        first = next(iter(content["examples"].values()))
        body = first.get("value", first)
    body = minimal_instance(content["schema"]) if body is None else repair(body, content["schema"])
    if op.response_model is not None:
        op.response_model.model_validate(body)
    return int(status), body


def _endpoint(op: Operation) -> Any:
    status, canned = canned_response(op)

    async def answer(request: Request) -> JSONResponse:
        if not request.headers.get("authorization", "").startswith("Bearer am_sk_"):
            return JSONResponse({"message": "Missing or invalid secret key", "code": "unauthorized"}, 401)
        if not request.headers.get("x-api-version"):
            return JSONResponse({"message": "x-api-version header required", "code": "bad_request"}, 400)
        raw = await request.body()
        try:
            payload = json.loads(raw) if raw else {}
            if op.params_model is not None:
                # An array body ("items"): params_model is the model of one item.
                items = payload if op.body_style == "items" else [payload]
                if not isinstance(items, list):
                    raise ValueError(f"{op.path} takes a JSON array")
                for item in items:
                    op.params_model.model_validate(item)
        except (ValueError, ValidationError) as exc:  # JSONDecodeError is a ValueError
            return JSONResponse({"message": str(exc), "code": "invalid_request"}, 400)
        return JSONResponse(canned, status)

    return answer


def build_app() -> Starlette:
    routes = [
        Route(op.path, _endpoint(op), methods=[op.http_method])
        for op in OPERATIONS
        if op.api == "v1" and op.path in spec()["paths"]
    ]
    return Starlette(routes=routes)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def serve() -> Iterator[str]:
    """Run the stub on 127.0.0.1 in a background thread; yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(build_app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="autumn-stub", daemon=True)
    thread.start()
    for _ in range(1000):  # up to ~10 s
        if server.started or not thread.is_alive():
            break
        time.sleep(0.01)
    if not server.started:
        raise RuntimeError("the Autumn stub server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
