"""The suite's spec check itself: it refuses what the specs refuse and accepts what they allow."""

from __future__ import annotations

import json
from typing import Any, cast

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from reference_server.testing import serve_app
from tests.spec_conformance import (
    UNCHECKED_SERVE_APP,
    VIOLATIONS,
    SpecCheckedApp,
    conformance,
    unchecked_servers,
)

ERROR = {"message": "bad", "code": "invalid_inputs", "env": "sandbox"}


def _check(method: str, path: str, status: int, body: object) -> list[str]:
    return conformance().check(method, path, status, json.dumps(body).encode())


def test_nulls_the_schemas_do_not_allow_are_violations() -> None:
    check = {"allowed": True, "customer_id": "c", "balance": None, "flag": None}
    assert _check("POST", "/v1/balances.check", 200, check) == []
    assert _check("POST", "/v1/balances.check", 200, {**check, "preview": None}) == [
        "$.preview: None is not of type 'object'"
    ]
    assert _check("POST", "/v1/check", 200, {**check, "preview": None}), "legacy alias: same schema"


def test_openapi_30_nullable_is_honoured() -> None:
    user: dict[str, Any] = {"email": "a@example.com", "created_at": 1, "organizations": None}
    assert _check("GET", "/v1/platform/users", 200, {"list": [user]}) == []
    assert _check("GET", "/v1/platform/users", 200, {"list": [{**user, "organizations": 3}]}) == [
        "$.list[0].organizations: 3 is not of type 'array', 'null'"
    ]


def test_errors_follow_the_documented_schema_or_autumns_error_json() -> None:
    assert _check("POST", "/v1/customers.get", 404, ERROR) == []
    assert _check("POST", "/v1/customers.get", 404, {"error": "x"}) == [
        "$: 'message' is a required property",
        "$: 'code' is a required property",
    ]
    # platform.yaml documents its 400 with a closed enum of codes
    assert _check("POST", "/v1/platform/organizations", 400, ERROR) != []
    assert _check("POST", "/v1/platform/organizations", 400, {**ERROR, "code": "invalid_input"}) == []


def test_an_undocumented_success_status_is_a_violation() -> None:
    assert _check("POST", "/v1/customers.get", 201, {}) != []
    assert _check("POST", "/v1/not-an-operation", 201, {}) == []


def test_the_middleware_turns_a_violation_into_a_failing_500() -> None:
    async def bad_check(request: Request) -> JSONResponse:
        return JSONResponse({"allowed": "yes"})

    app = Starlette(routes=[Route("/v1/balances.check", bad_check, methods=["POST"])])
    before = len(VIOLATIONS)
    with serve_app(cast(Starlette, SpecCheckedApp(app))) as url:
        r = httpx.post(url + "/v1/balances.check", json={})
    assert r.status_code == 500
    assert r.json()["code"] == "spec_violation"
    assert "$.allowed: 'yes' is not of type 'boolean'" in r.json()["message"]
    found = VIOLATIONS[before:]
    assert [(v.path, v.status) for v in found] == [("/v1/balances.check", 200)]
    del VIOLATIONS[before:]  # provoked on purpose: the suite's per-test check must not count it


def test_run_server_is_spec_checked_in_this_suite() -> None:
    from reference_server import testing

    assert testing.serve_app is not UNCHECKED_SERVE_APP
    with unchecked_servers():
        assert testing.serve_app is UNCHECKED_SERVE_APP
    assert testing.serve_app is not UNCHECKED_SERVE_APP
