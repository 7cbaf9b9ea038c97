"""check and track answered ahead of Starlette's routing (the operations whose policy sets
``hot_path``): their POSTs need no route scan, no ``Request`` and no ``Response`` object."""

from __future__ import annotations

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from reference_server.api.dispatcher import Dispatcher
from reference_server.api.endpoints import Endpoint
from reference_server.api.request_bodies import read_body


class HotPaths:
    """Pure ASGI middleware serving the POSTs of check and track before Starlette's routing.

    Starlette's route scan, ``Request`` and ``Response`` objects cost as much as a whole SQLite
    check; these paths need none of them (no path parameters, no base URL), so the middleware reads
    the body and answers through :meth:`Dispatcher.serve` exactly as the routes would.
    """

    def __init__(self, app: ASGIApp, endpoints: dict[str, tuple[Dispatcher, Endpoint]]) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self.endpoints.get(scope["path"]) if scope["type"] == "http" else None
        if target is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        dispatcher, ep = target
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        try:
            data = await read_body(receive, headers.get("content-length"), dispatcher.max_body_bytes)
        except ClientDisconnect:  # the client went away
            return
        if data is None:
            status, body, extra = dispatcher.too_large(ep, headers.get)
        else:
            status, body, extra = await dispatcher.serve(
                ep, headers.get, data, None, lambda: scope_base_url(scope, headers)
            )
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})


def scope_base_url(scope: Scope, headers: dict[str, str]) -> str:
    """The request's base URL as Starlette's ``request.base_url`` gives it (without building a Request)."""
    host = headers.get("host")
    if not host:
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else "127.0.0.1"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}/"
