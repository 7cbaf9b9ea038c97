"""Strict response validation against the vendored specs themselves (not the lax generated models).

Every response the reference server sends for an operation of ``spec/autumn-2026-08-22.yml``,
``spec/platform.yaml`` or ``spec/autumn-sdk-1.2.0-operations.yml`` (the official SDK's operations
beyond the published spec, as its models read them) is checked against the JSON schema the spec
gives for that operation and status, with ``jsonschema`` (Draft 2020-12, ``$ref``s resolved
inside the spec document; the platform API's OpenAPI 3.0 ``nullable`` rewritten to a JSON Schema
``null`` alternative first).

The specs document no error responses for Autumn's own operations and only some for the platform
API.  Every error the server answers is Autumn's error JSON (``{message, code, env}``), so a 4xx or
5xx the spec does not list is checked against :data:`AUTUMN_ERROR` (a documented status keeps its
own schema: the platform API's ``ErrorResponse`` with its closed ``code`` enum).  A 2xx the spec
does not list is a violation.

:class:`SpecCheckedApp` wraps a served app: a response that breaks the spec is replaced by a 500
``spec_violation`` naming the operation, the status and the first errors, and recorded in
:data:`VIOLATIONS`, so the test that caused it fails where it happened.  Validators are compiled
once per process (:func:`conformance`).
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reference_server import testing as _testing
from reference_server.api.router import LEGACY_ALIASES

SPEC_DIR = Path(__file__).resolve().parent.parent / "spec"
AUTUMN_SPEC = SPEC_DIR / "autumn-2026-08-22.yml"
PLATFORM_SPEC = SPEC_DIR / "platform.yaml"
OFFICIAL_SDK_SPEC = SPEC_DIR / "autumn-sdk-1.2.0-operations.yml"
PLATFORM_PREFIX = "/v1"
"""``platform.yaml``'s server URL ends in ``/v1``: its paths are served under it."""

AUTUMN_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["message", "code"],
    "properties": {
        "message": {"type": "string"},
        "code": {"type": "string", "minLength": 1},
        "env": {"type": "string", "enum": ["sandbox", "live"]},
    },
}
"""Autumn's error JSON, for an error status the spec does not document."""

_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_METHODS = ("get", "post", "put", "patch", "delete")


def openapi30_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 schema keywords as JSON Schema: ``nullable: true`` becomes a ``null`` alternative."""
    if isinstance(node, list):
        return [openapi30_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: openapi30_to_jsonschema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        if "$ref" in out or "type" not in out or "enum" in out:
            return {"anyOf": [out, {"type": "null"}]}
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    return out


def load_spec(path: Path) -> dict[str, Any]:
    """The spec document, its schemas as JSON Schema 2020-12 (3.0 ``nullable`` rewritten)."""
    document: dict[str, Any] = yaml.load(path.read_text(), Loader=_YamlLoader)
    if str(document.get("openapi", "")).startswith("3.0"):
        document = openapi30_to_jsonschema(document)
    return document


@dataclass
class Operation:
    """One operation's response schemas, by status (``"200"``, ``"4XX"``, ``"default"``)."""

    name: str
    responses: dict[str, dict[str, Any] | None]
    validators: dict[str, Draft202012Validator | None] = field(default_factory=dict)

    def schema_for(self, status: int) -> tuple[str, dict[str, Any] | None] | None:
        """The documented response for ``status`` (exact, then ``NXX``, then ``default``)."""
        for key in (str(status), f"{status // 100}XX", "default"):
            if key in self.responses:
                return key, self.responses[key]
        return None


class Conformance:
    """Response validators for every operation of the vendored specs, compiled once."""

    def __init__(self) -> None:
        self.operations: dict[tuple[str, str], Operation] = {}
        self._validators: dict[tuple[str, str], Draft202012Validator] = {}
        for spec_path, prefix in (
            (AUTUMN_SPEC, ""),
            (PLATFORM_SPEC, PLATFORM_PREFIX),
            (OFFICIAL_SDK_SPEC, ""),
        ):
            document = load_spec(spec_path)
            uri = spec_path.as_uri()
            registry: Registry[Any] = Registry().with_resource(
                uri, Resource.from_contents(document, default_specification=DRAFT202012)
            )
            for path, item in document["paths"].items():
                for method, op in item.items():
                    if method not in _METHODS:
                        continue
                    responses: dict[str, dict[str, Any] | None] = {}
                    for status, response in op.get("responses", {}).items():
                        content = (response or {}).get("content", {}).get("application/json")
                        responses[str(status)] = content.get("schema") if content else None
                    key = (method.upper(), prefix + path)
                    operation = Operation(op.get("operationId", path), responses)
                    for status, schema in responses.items():
                        pointer = "/".join(
                            _escape(part) for part in ("paths", path, method, "responses", status, "content")
                        )
                        operation.validators[status] = (
                            None
                            if schema is None
                            else Draft202012Validator(
                                {"$ref": f"{uri}#/{pointer}/application~1json/schema"}, registry=registry
                            )
                        )
                    self.operations[key] = operation
        for alias, target in LEGACY_ALIASES.items():  # /v1/check answers as /v1/balances.check
            if ("POST", target) in self.operations:
                self.operations[("POST", alias)] = self.operations[("POST", target)]
        self._error_validator = Draft202012Validator(AUTUMN_ERROR)

    def operation(self, method: str, path: str) -> Operation | None:
        return self.operations.get((method.upper(), path))

    def check(self, method: str, path: str, status: int, body: bytes) -> list[str]:
        """What is wrong with this response for this operation (empty: it conforms, or no operation)."""
        operation = self.operation(method, path)
        if operation is None:
            return []
        documented = operation.schema_for(status)
        if documented is None:
            if status < 400:
                return [f"status {status} is not documented (documented: {sorted(operation.responses)})"]
            validator: Draft202012Validator | None = self._error_validator
        else:
            validator = operation.validators[documented[0]]
        if validator is None:
            return []
        try:
            data = json.loads(body)
        except ValueError:
            return [f"status {status}: the body is not JSON: {body[:200]!r}"]
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        return [f"{e.json_path}: {_short(e.message)}" for e in errors]


def _escape(part: str) -> str:
    """A JSON pointer token."""
    return part.replace("~", "~0").replace("/", "~1")


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


@functools.lru_cache(maxsize=1)
def conformance() -> Conformance:
    """The process-wide validators (compiled on first use)."""
    return Conformance()


@dataclass
class Violation:
    method: str
    path: str
    status: int
    errors: list[str]
    body: bytes

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}: " + "; ".join(self.errors[:5])


UNCHECKED_SERVE_APP = _testing.serve_app

VIOLATIONS: list[Violation] = []
"""Every spec violation any :class:`SpecCheckedApp` saw in this process, in order."""


class SpecCheckedApp:
    """ASGI middleware: buffers each spec operation's response, validates it, answers 500 if it breaks."""

    def __init__(self, app: ASGIApp, checker: Conformance | None = None) -> None:
        self.app = app
        self.checker = checker or conformance()

    def __getattr__(self, name: str) -> Any:  # ``RunningServer.app.state`` keeps working
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.checker.operation(scope["method"], scope["path"]) is None:
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            assert start is not None
            body = b"".join(chunks)
            errors = self.checker.check(scope["method"], scope["path"], start["status"], body)
            if not errors:
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
            violation = Violation(scope["method"], scope["path"], start["status"], errors, body)
            VIOLATIONS.append(violation)
            replacement = json.dumps(
                {
                    "message": f"response breaks the spec: {violation}; body: {body[:500]!r}",
                    "code": "spec_violation",
                    "env": "sandbox",
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(replacement)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": replacement})

        await self.app(scope, receive, capture)


@contextlib.contextmanager
def spec_checked_servers() -> Iterator[None]:
    """While active, every server :func:`reference_server.testing.run_server` starts is spec-checked."""
    from reference_server import testing

    original = UNCHECKED_SERVE_APP

    @contextlib.contextmanager
    def serve_checked(app: Any, port: int | None = None) -> Iterator[str]:
        checked = app if isinstance(app, SpecCheckedApp) else SpecCheckedApp(app)
        # serve_app hands any ASGI app to uvicorn; it is typed for the Starlette app it usually gets
        with original(cast(Starlette, checked), port) as url:
            yield url

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(testing, "serve_app", serve_checked)
        yield


@contextlib.contextmanager
def unchecked_servers() -> Iterator[None]:
    """While active, ``run_server`` serves apps as they are (for a test that judges responses itself)."""
    from reference_server import testing

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(testing, "serve_app", UNCHECKED_SERVE_APP)
        yield


@pytest.fixture(scope="session", autouse=True)
def spec_checked_run_server() -> Iterator[None]:
    """Session fixture for a conftest: every ``run_server`` server of the session is spec-checked."""
    with spec_checked_servers():
        yield


@pytest.fixture(autouse=True)
def spec_conformant_responses() -> Iterator[None]:
    """Fails the test if any server answered it with a response that breaks the spec."""
    since = len(VIOLATIONS)
    yield
    found = VIOLATIONS[since:]
    assert not found, "responses broke the spec:\n" + "\n".join(str(v) for v in found)
