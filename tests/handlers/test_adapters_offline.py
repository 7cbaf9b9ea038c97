"""The adapters' own behaviour, through each framework's test client, with Autumn unreachable.

Autumn is "down" for real here: the handler points at a loopback port nobody listens on, so these
cover the paths that never need an answer (routing, identity, CORS) and the outage paths
(fail-open, status 555). The live contract against the reference server is in ``test_adapters_live``.
"""

from __future__ import annotations

import socket
import warnings
from collections.abc import Iterator
from typing import Any

import flask
import pytest
from litestar import Litestar, Request
from litestar.testing import TestClient as LitestarTestClient
from starlette.applications import Starlette
from starlette.testclient import TestClient as StarletteTestClient

from autumn_handlers import CORSConfig, Identity
from autumn_handlers.flask import autumn_blueprint
from autumn_handlers.litestar import autumn_router
from autumn_handlers.starlette import autumn_app, autumn_routes

from .apps import FRAMEWORKS, HandlerClient, HandlerOptions, handler_client

PREFIX = "/api/autumn"


@pytest.fixture(scope="module")
def closed_port_url() -> str:
    """A loopback URL that refuses connections (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(params=FRAMEWORKS)
def client(request: pytest.FixtureRequest, closed_port_url: str) -> Iterator[HandlerClient]:
    options = HandlerOptions(secret_key="am_sk_test_offline", autumn_url=closed_port_url)
    with handler_client(request.param, options) as test_client:
        yield test_client


def as_customer(customer_id: str) -> dict[str, str]:
    return {"x-test-customer": customer_id}


def test_requests_without_identity_are_401(client: HandlerClient) -> None:
    reply = client.request("POST", f"{PREFIX}/attach", {"planId": "pro"})
    assert reply.status == 401
    assert reply.json == {
        "message": "customerId returned from identify function is null",
        "code": "no_customer_id",
        "statusCode": 401,
    }
    assert reply.headers["content-type"].startswith("application/json")


def test_get_or_create_without_identity(client: HandlerClient) -> None:
    silent = client.request("POST", f"{PREFIX}/getOrCreateCustomer", {"errorOnNotFound": False})
    assert silent.status == 204
    assert silent.text == ""
    loud = client.request("POST", f"{PREFIX}/getOrCreateCustomer", {})
    assert loud.status == 401
    assert loud.json["message"] == "customerId not found"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"{PREFIX}/unknownRoute"),
        ("POST", f"{PREFIX}/getorcreatecustomer"),
        ("POST", f"{PREFIX}/attach/more"),
        ("POST", PREFIX + "/"),
        ("POST", f"{PREFIX}/?subpath=getOrCreateCustomer"),  # a query string never names the route
        ("GET", f"{PREFIX}/getOrCreateCustomer"),
        ("DELETE", f"{PREFIX}/attach"),
        ("OPTIONS", f"{PREFIX}/attach"),
    ],
)
def test_unknown_routes_and_methods_get_json_not_found(client: HandlerClient, method: str, path: str) -> None:
    reply = client.request(method, path, headers=as_customer("cus_offline"))
    assert reply.status == 404
    assert reply.json == {"message": "Not found", "code": "not_found", "statusCode": 404}


@pytest.mark.parametrize("path", [f"{PREFIX}/attach/", f"{PREFIX}//attach", f"{PREFIX}/attach//"])
def test_slashes_are_tolerated(client: HandlerClient, path: str) -> None:
    reply = client.request("POST", path, {"planId": "pro"})
    assert reply.status == 401  # matched the attach route, then failed on identity


def test_fail_open_routes_answer_empty_objects_when_autumn_is_down(client: HandlerClient) -> None:
    customer = client.request("POST", f"{PREFIX}/getOrCreateCustomer", {}, as_customer("cus_offline"))
    assert customer.status == 200
    assert customer.json["id"] is None
    assert customer.json["balances"] == {}
    assert customer.json["sendEmailReceipts"] is False
    entity = client.request("POST", f"{PREFIX}/getEntity", {"entityId": "seat_1"}, as_customer("cus_offline"))
    assert entity.status == 200
    assert entity.json["customerId"] is None
    assert entity.json["featureId"] is None


def test_other_routes_report_the_network_failure_as_555(client: HandlerClient) -> None:
    reply = client.request("POST", f"{PREFIX}/attach", {"planId": "pro"}, as_customer("cus_offline"))
    assert reply.status == 555
    assert reply.json["code"] == "autumn_api_error"
    assert reply.json == {"message": "Could not reach Autumn", "code": "autumn_api_error", "statusCode": 555}
    assert "127.0.0.1" not in reply.text  # the SDK's message names the host: it stays in the log


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_fail_open_off_reports_the_outage(framework: str, closed_port_url: str) -> None:
    options = HandlerOptions(secret_key="am_sk_test_offline", autumn_url=closed_port_url, fail_open=False)
    with handler_client(framework, options) as client:
        reply = client.request("POST", f"{PREFIX}/getOrCreateCustomer", {}, as_customer("cus_offline"))
    assert reply.status == 555


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_missing_secret_key_is_500(
    framework: str, closed_port_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTUMN_SECRET_KEY", raising=False)
    with handler_client(framework, HandlerOptions(secret_key=None, autumn_url=closed_port_url)) as client:
        for path in (f"{PREFIX}/attach", f"{PREFIX}/unknown"):
            reply = client.request("POST", path, {}, as_customer("cus_offline"))
            assert reply.status == 500
            assert reply.json["code"] == "no_secret_key"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_custom_path_prefix(framework: str, closed_port_url: str) -> None:
    options = HandlerOptions(secret_key="k", autumn_url=closed_port_url, path_prefix="/api/auth/autumn/")
    with handler_client(framework, options) as client:
        moved = client.request("POST", "/api/auth/autumn/attach", {"planId": "pro"})
        assert moved.status == 401
        assert moved.json["code"] == "no_customer_id"


CORS = CORSConfig(allow_origins=["http://localhost:5173"], allow_headers=["content-type", "x-test-customer"])


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_cors_preflight_and_actual_request(framework: str, closed_port_url: str) -> None:
    options = HandlerOptions(secret_key="k", autumn_url=closed_port_url, cors=CORS)
    with handler_client(framework, options) as client:
        preflight = client.request(
            "OPTIONS",
            f"{PREFIX}/getOrCreateCustomer",
            headers={
                "Origin": "http://localhost:5173",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-test-customer",
            },
        )
        assert preflight.status == 204
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
        assert preflight.headers["access-control-allow-credentials"] == "true"
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "x-test-customer" in preflight.headers["access-control-allow-headers"]

        actual = client.request(
            "POST",
            f"{PREFIX}/getOrCreateCustomer",
            {},
            {"Origin": "http://localhost:5173", "x-test-customer": "cus_cors"},
        )
        assert actual.status == 200
        assert actual.headers["access-control-allow-origin"] == "http://localhost:5173"
        assert actual.headers["access-control-allow-credentials"] == "true"

        foreign = client.request(
            "OPTIONS",
            f"{PREFIX}/attach",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert foreign.status == 403
        assert "access-control-allow-origin" not in foreign.headers


# --- identify flavours each framework offers -----------------------------------------------------


def test_flask_accepts_an_async_identify(closed_port_url: str) -> None:
    async def identify(request: flask.Request) -> Identity:
        return Identity(request.headers["x-user"])

    app = flask.Flask(__name__)
    app.register_blueprint(autumn_blueprint(identify, secret_key="k", autumn_url=closed_port_url))
    reply = app.test_client().post(f"{PREFIX}/getOrCreateCustomer", json={}, headers={"x-user": "cus_async"})
    assert reply.status_code == 200  # failed open: identify succeeded, Autumn is down


def test_starlette_accepts_a_sync_identify_and_mounts_in_two_ways(closed_port_url: str) -> None:
    seen: list[str] = []

    def identify(request: Any) -> dict[str, Any]:
        seen.append(request.url.path)
        return {"customer_id": "cus_sync"}

    app = Starlette(routes=autumn_routes(identify, secret_key="k", autumn_url=closed_port_url))
    app.mount("/other", autumn_app(identify, secret_key="k", autumn_url=closed_port_url))
    with StarletteTestClient(app) as client:
        assert client.post(f"{PREFIX}/getOrCreateCustomer", json={}).status_code == 200
        assert client.post("/other/getOrCreateCustomer", json={}).status_code == 200
    assert seen == [f"{PREFIX}/getOrCreateCustomer", "/other/getOrCreateCustomer"]


def test_litestar_router_declares_no_deprecated_parameters(closed_port_url: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. LitestarDeprecationWarning for an inferred parameter
        Litestar(route_handlers=[autumn_router(lambda request: None, autumn_url=closed_port_url)])


def test_identify_exceptions_become_identify_failures(closed_port_url: str) -> None:
    def identify(request: Request[Any, Any, Any]) -> Identity:
        raise PermissionError("session expired")

    app = Litestar(route_handlers=[autumn_router(identify, secret_key="k", autumn_url=closed_port_url)])
    with LitestarTestClient(app) as client:
        reply = client.post(f"{PREFIX}/attach", json={"planId": "pro"})
    assert reply.status_code == 500
    assert reply.json()["code"] == "identify_failed"
    assert "session expired" not in reply.text
