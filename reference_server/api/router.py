"""The API's routes: one Starlette route per operation of the generated table, plus the extras and
Autumn's legacy paths, each handing its request to :meth:`Dispatcher.serve
<reference_server.api.dispatcher.Dispatcher.serve>`; check and track POSTs are also served ahead of
the routing (:class:`~reference_server.api.hot_paths.HotPaths`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from autumn_sdk._generated.operations import OPERATIONS
from reference_server.api.dispatcher import Dispatcher
from reference_server.api.endpoints import Endpoint, endpoints
from reference_server.api.request_bodies import read_body

HOT_PATHS = frozenset(op.path for op in OPERATIONS if op.hot_path)
"""POST paths served ahead of Starlette's routing: the operations whose policy sets ``hot_path``."""

LEGACY_ALIASES: dict[str, str] = {
    "/v1/check": "/v1/balances.check",
    "/v1/entitled": "/v1/balances.check",
    "/v1/track": "/v1/balances.track",
    "/v1/events": "/v1/balances.track",
    "/v1/balances/create": "/v1/balances.create",
}


def asgi_endpoint(dispatcher: Dispatcher, ep: Endpoint) -> Callable[[Request], Any]:
    """The Starlette endpoint of ``ep``: its query parameters (GET) or body (POST) to the dispatcher."""

    async def endpoint(request: Request) -> Response:
        if ep.query_params:
            status, body, headers = await dispatcher.serve(
                ep, request.headers.get, None, dict(request.query_params), lambda: str(request.base_url)
            )
        else:
            data = await read_body(
                request.receive, request.headers.get("content-length"), dispatcher.max_body_bytes
            )
            if data is None:
                status, body, headers = dispatcher.too_large(ep, request.headers.get)
            else:
                status, body, headers = await dispatcher.serve(
                    ep, request.headers.get, data, None, lambda: str(request.base_url)
                )
        return Response(body, status_code=status, media_type="application/json", headers=headers)

    return endpoint


def build_routes(dispatcher: Dispatcher) -> tuple[list[Route], list[dict[str, Any]]]:
    """Routes for every endpoint (:func:`~reference_server.api.endpoints.endpoints`), plus an index
    for /openapi.json."""
    routes: list[Route] = []
    index: list[dict[str, Any]] = []
    by_path: dict[str, Endpoint] = {}
    for ep in endpoints():
        routes.append(Route(ep.path, asgi_endpoint(dispatcher, ep), methods=[ep.method]))
        entry: dict[str, Any] = {
            "path": ep.path,
            "method": ep.method,
            "operation_id": ep.operation_id,
            "name": ep.name,
            "summary": ep.summary,
        }
        if ep.in_spec:
            entry.update(params_model=ep.params_model, response_model=ep.response_model, status=ep.status)
        index.append(entry)
        if ep.method == "POST":
            by_path[ep.path] = ep
    for alias, target in LEGACY_ALIASES.items():
        routes.append(Route(alias, asgi_endpoint(dispatcher, by_path[target]), methods=["POST"]))
    for path in HOT_PATHS:
        dispatcher.hot_endpoints[path] = by_path[path]
    for alias, target in LEGACY_ALIASES.items():
        if target in HOT_PATHS:
            dispatcher.hot_endpoints[alias] = by_path[target]
    # Starlette tries routes in order (a regex match each): the hot paths go first.
    routes.sort(key=lambda route: route.path not in HOT_PATHS)
    return routes, index
