"""Litestar adapter: a ``Router`` serving the autumn-js routes under the path prefix.

    from autumn_handlers.litestar import autumn_router

    app = Litestar(route_handlers=[autumn_router(identify=identify, autumn_url="http://127.0.0.1:8080")])

``identify`` receives the ``litestar.Request`` and may be sync or async
(a sync one runs on the event loop, so it should not block).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response, Router, route
from litestar.enums import HttpMethod

from autumn_sdk import AsyncAutumn

from .core import DEFAULT_PATH_PREFIX, HandlerSettings
from .cors import CORSConfig
from .identity import IdentifyResult
from .inputs import DEFAULT_MAX_BODY_BYTES
from .runners import AsyncHandler, read_asgi_request

__all__ = ["autumn_router"]

LitestarRequest = Request[Any, Any, Any]
LitestarIdentify = Callable[[LitestarRequest], IdentifyResult | Awaitable[IdentifyResult]]

# HEAD is left out: Litestar reserves it for bodiless handlers, and autumn-js never sends it.
_METHODS = [
    HttpMethod.GET,
    HttpMethod.POST,
    HttpMethod.PUT,
    HttpMethod.PATCH,
    HttpMethod.DELETE,
    HttpMethod.OPTIONS,
]


def autumn_router(
    identify: LitestarIdentify,
    *,
    path_prefix: str = DEFAULT_PATH_PREFIX,
    secret_key: str | None = None,
    autumn_url: str | None = None,
    client: AsyncAutumn | None = None,
    cors: CORSConfig | None = None,
    fail_open: bool | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Router:
    """A ``Router`` at ``path_prefix`` answering ``POST /<route>`` for the React hooks.

    ``client`` replaces the ``AsyncAutumn`` built from ``secret_key`` (default env
    ``AUTUMN_SECRET_KEY``) and ``autumn_url``. Every method but HEAD is routed here, so unknown
    routes and methods get autumn-js's JSON ``not_found``. Bodies over ``max_body_bytes`` are
    answered 413.
    """
    settings = HandlerSettings(
        secret_key=secret_key,
        autumn_url=autumn_url,
        path_prefix=path_prefix,
        cors=cors,
        fail_open=fail_open,
        max_body_bytes=max_body_bytes,
    )
    handler: AsyncHandler[LitestarRequest] = AsyncHandler(identify, settings, client)

    @route(
        ["/", "/{subpath:path}"],
        http_method=_METHODS,
        name="autumn",
        include_in_schema=False,
        signature_namespace={"LitestarRequest": LitestarRequest, "Response": Response},
    )
    async def serve(request: LitestarRequest) -> Response[bytes]:
        # ``subpath`` is read from the request's path params, not declared as a parameter: "/" has
        # none, and Litestar would take one declared there for a query parameter.
        answer = await handler.handle(request, await read_asgi_request(request, max_body_bytes))
        return Response(
            content=answer.content,
            status_code=answer.status,
            headers=dict(answer.headers),
            media_type=answer.media_type or "application/json",
        )

    return Router(path=settings.normalized_prefix or "/", route_handlers=[serve])
