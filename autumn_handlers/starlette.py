"""Starlette adapter (FastAPI too): the autumn-js routes as a ``Router`` to mount under the prefix.

    from autumn_handlers.starlette import AutumnMount, autumn_app, autumn_routes

    URL = "http://127.0.0.1:8080"                                                 # your Autumn server
    app = Starlette(routes=[*autumn_routes(identify=identify, autumn_url=URL)])   # Starlette
    app = Starlette(routes=[AutumnMount(identify=identify, autumn_url=URL)])      # the same, as one Mount
    fastapi_app.mount("/api/autumn", autumn_app(identify=identify, autumn_url=URL))   # FastAPI

``identify`` receives the ``starlette.requests.Request`` and may be sync or async
(a sync one runs on the event loop, so it should not block).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router

from autumn_sdk import AsyncAutumn

from .core import DEFAULT_PATH_PREFIX, HandlerSettings
from .cors import CORSConfig
from .identity import IdentifyResult
from .inputs import DEFAULT_MAX_BODY_BYTES
from .runners import AsyncHandler, read_asgi_request

__all__ = ["AutumnMount", "autumn_app", "autumn_routes"]

StarletteIdentify = Callable[[Request], IdentifyResult | Awaitable[IdentifyResult]]

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _endpoint(handler: AsyncHandler[Request]) -> Callable[[Request], Awaitable[Response]]:
    max_bytes = handler.core.settings.max_body_bytes

    async def serve(request: Request) -> Response:
        answer = await handler.handle(request, await read_asgi_request(request, max_bytes))
        return Response(
            answer.content,
            status_code=answer.status,
            headers=dict(answer.headers),
            media_type=answer.media_type,
        )

    return serve


def autumn_app(
    identify: StarletteIdentify,
    *,
    secret_key: str | None = None,
    autumn_url: str | None = None,
    client: AsyncAutumn | None = None,
    cors: CORSConfig | None = None,
    fail_open: bool | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Router:
    """An ASGI ``Router`` answering ``POST /<route>``; mount it at the prefix the hooks use.

    ``client`` replaces the ``AsyncAutumn`` built from ``secret_key`` (default env
    ``AUTUMN_SECRET_KEY``) and ``autumn_url``. Every method is routed, so unknown routes and methods
    get autumn-js's JSON ``not_found``. Bodies over ``max_body_bytes`` are answered 413.
    """
    settings = HandlerSettings(
        secret_key=secret_key,
        autumn_url=autumn_url,
        cors=cors,
        fail_open=fail_open,
        max_body_bytes=max_body_bytes,
    )
    endpoint = _endpoint(AsyncHandler(identify, settings, client))
    return Router(
        routes=[
            Route("/", endpoint, methods=_ALL_METHODS),
            Route("/{subpath:path}", endpoint, methods=_ALL_METHODS),
        ],
        redirect_slashes=False,
    )


class AutumnMount(Mount):
    """``Mount(path_prefix, app=autumn_app(...))`` in one object, for a Starlette ``routes`` list."""

    def __init__(
        self,
        identify: StarletteIdentify,
        *,
        path: str = DEFAULT_PATH_PREFIX,
        secret_key: str | None = None,
        autumn_url: str | None = None,
        client: AsyncAutumn | None = None,
        cors: CORSConfig | None = None,
        fail_open: bool | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        name: str | None = "autumn",
    ) -> None:
        app = autumn_app(
            identify,
            secret_key=secret_key,
            autumn_url=autumn_url,
            client=client,
            cors=cors,
            fail_open=fail_open,
            max_body_bytes=max_body_bytes,
        )
        super().__init__(HandlerSettings(path_prefix=path).normalized_prefix, app=app, name=name)


def autumn_routes(
    identify: StarletteIdentify,
    *,
    path_prefix: str = DEFAULT_PATH_PREFIX,
    secret_key: str | None = None,
    autumn_url: str | None = None,
    client: AsyncAutumn | None = None,
    cors: CORSConfig | None = None,
    fail_open: bool | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> list[BaseRoute]:
    """The routes to splice into ``Starlette(routes=[...])``: one :class:`AutumnMount`."""
    return [
        AutumnMount(
            identify,
            path=path_prefix,
            secret_key=secret_key,
            autumn_url=autumn_url,
            client=client,
            cors=cors,
            fail_open=fail_open,
            max_body_bytes=max_body_bytes,
        )
    ]
