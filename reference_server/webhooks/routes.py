"""HTTP management of webhook endpoints (not in Autumn's API spec, which configures them in its dashboard).

``POST /v1/webhooks.create_endpoint {url, event_types?, secret?}``, ``/v1/webhooks.list_endpoints`` and
``/v1/webhooks.delete_endpoint {id}``, authenticated with the org env's secret key like the API.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from reference_server.clock import Clock
from reference_server.store.db import Database
from reference_server.store.tenancy import Tenant, env_of_key, tenant_for_key

from .endpoints import create_endpoint, delete_endpoint, list_endpoints


def _error(status: int, code: str, message: str, env: str = "sandbox") -> JSONResponse:
    return JSONResponse({"message": message, "code": code, "env": env}, status_code=status)


def webhook_routes(
    db: Database, clock: Clock, on_change: Callable[[], None] | None = None
) -> list[BaseRoute]:
    """The management routes; ``on_change`` runs after an endpoint is added or removed (cache resets)."""

    def authenticate(request: Request) -> Tenant | JSONResponse:
        header = request.headers.get("authorization", "")
        key = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not key:
            return _error(401, "no_secret_key", "Secret key not found in Authorization header")
        if env_of_key(key) is None:
            return _error(401, "invalid_request", "Invalid authorization token prefix")
        with db.read() as conn:
            tenant = tenant_for_key(conn, key)
        if tenant is None:
            return _error(401, "invalid_secret_key", "Invalid secret key")
        return tenant

    def handler(
        work: Callable[[Tenant, dict[str, Any]], JSONResponse],
    ) -> Callable[[Request], Awaitable[JSONResponse]]:
        async def endpoint(request: Request) -> JSONResponse:
            raw = await request.body()
            try:
                body = json.loads(raw) if raw.strip() else {}
            except json.JSONDecodeError:
                return _error(400, "invalid_inputs", "body: must be JSON")
            if not isinstance(body, dict):
                return _error(400, "invalid_inputs", "body: must be an object")

            def run() -> JSONResponse:
                tenant = authenticate(request)
                if isinstance(tenant, JSONResponse):
                    return tenant
                return work(tenant, body)

            return await run_in_threadpool(run)

        return endpoint

    def create(tenant: Tenant, body: dict[str, Any]) -> JSONResponse:
        url = body.get("url")
        if not isinstance(url, str):
            return _error(400, "invalid_inputs", "url: is required", tenant.env)
        try:
            with db.write() as conn:
                endpoint = create_endpoint(
                    conn,
                    tenant.org_pk,
                    tenant.env,
                    url,
                    clock.now_ms(),
                    list(body.get("event_types") or []),
                    body.get("secret"),
                )
        except ValueError as exc:
            return _error(400, "invalid_inputs", str(exc), tenant.env)
        if on_change is not None:
            on_change()
        return JSONResponse({**endpoint.to_json(), "secret": endpoint.secret})

    def list_all(tenant: Tenant, body: dict[str, Any]) -> JSONResponse:
        with db.read() as conn:
            endpoints = list_endpoints(conn, tenant.org_pk, tenant.env)
        return JSONResponse({"list": [e.to_json() for e in endpoints]})

    def remove(tenant: Tenant, body: dict[str, Any]) -> JSONResponse:
        with db.write() as conn:
            deleted = delete_endpoint(conn, tenant.org_pk, tenant.env, str(body.get("id", "")))
        if on_change is not None:
            on_change()
        if not deleted:
            return _error(
                404, "webhook_endpoint_not_found", f"Webhook endpoint {body.get('id')} not found", tenant.env
            )
        return JSONResponse({"success": True})

    return [
        Route("/v1/webhooks.create_endpoint", handler(create), methods=["POST"]),
        Route("/v1/webhooks.list_endpoints", handler(list_all), methods=["POST"]),
        Route("/v1/webhooks.delete_endpoint", handler(remove), methods=["POST"]),
    ]
