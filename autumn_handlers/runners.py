"""Thin sync and async drivers of :class:`~autumn_handlers.core.HandlerCore`'s pipeline.

They do the two kinds of I/O the pipeline asks for (``identify`` and one SDK call) with a sync
``Autumn`` client (Flask) or an ``AsyncAutumn`` client (Starlette, Litestar). SDK calls go through the
client's public generic entry point, ``client.call(operation, body)``, so an injected client behaves
exactly as the app configured it (retries, timeouts, headers).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from autumn_sdk import AsyncAutumn, Autumn

from .core import HandlerCore, HandlerSettings, IncomingRequest, NeedIdentity, Pipeline
from .identity import IdentifyResult
from .inputs import declared_length
from .responses import HandlerResponse

__all__ = ["ASGIRequest", "AsyncHandler", "SyncHandler", "read_asgi_request"]

RequestT = TypeVar("RequestT")
ClientT = TypeVar("ClientT", Autumn, AsyncAutumn)


async def _await(value: Awaitable[IdentifyResult]) -> IdentifyResult:
    return await value


class ASGIRequest(Protocol):
    """The parts of a Starlette or Litestar request the handler reads; both name them alike."""

    @property
    def method(self) -> str: ...

    @property
    def path_params(self) -> Mapping[str, Any]: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def body(self) -> bytes: ...

    def stream(self) -> AsyncIterator[bytes]: ...


async def _read_asgi_body(request: ASGIRequest, max_bytes: int) -> bytes:
    """At most ``max_bytes + 1`` bytes: enough for the pipeline to tell an oversized body (413).

    With a ``Content-Length`` (what browsers send) the framework's cached ``body()`` is used, so
    ``identify`` may still read the body; the ASGI server holds the body to that length.
    """
    declared = declared_length(request.headers.get("content-length"))
    if declared is not None:
        return b"" if declared > max_bytes else await request.body()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            break
    return b"".join(chunks)


async def read_asgi_request(request: ASGIRequest, max_bytes: int) -> IncomingRequest:
    """The pipeline's view of a request routed as ``/`` or ``/{subpath:path}`` under the prefix."""
    return IncomingRequest(
        method=request.method,
        subpath=request.path_params.get("subpath") or "",
        body=await _read_asgi_body(request, max_bytes),
        headers=dict(request.headers),
    )


class _Handler(Generic[RequestT, ClientT]):
    """What both drivers share: the app's ``identify``, the pipeline core and the Autumn client."""

    _client_class: type[ClientT]
    _client: ClientT | None

    def __init__(
        self,
        identify: Callable[[RequestT], IdentifyResult | Awaitable[IdentifyResult]],
        settings: HandlerSettings,
        client: ClientT | None = None,
    ) -> None:
        self.identify = identify
        self.core = HandlerCore(settings, has_injected_client=client is not None)
        self._client = client
        # Clients this handler created, by (scope, secret key); the scope is the event loop for
        # AsyncHandler (httpx's async pools belong to one loop) and None for SyncHandler.
        self._owned: dict[tuple[object, str], ClientT] = {}
        self._lock = threading.Lock()

    def _owned_client(self, scope: object) -> ClientT:
        """The client for this scope and the current secret key, created on first use and reused."""
        key = self.core.secret_key()
        if key is None:
            raise RuntimeError("no Autumn secret key")
        with self._lock:
            client = self._owned.get((scope, key))
            if client is None:
                # No SDK fail-open or retries: the pipeline fails open itself (autumn-js' empty
                # objects, not the SDK's) and the browser hooks retry.
                client = self._owned[(scope, key)] = self._client_class(
                    secret_key=key, server_url=self.core.settings.autumn_url, fail_open=False, max_retries=0
                )
        return client

    def _release_owned(self, keep: Callable[[object], bool]) -> list[ClientT]:
        """Forget (and return, to be closed) the owned clients whose scope ``keep`` rejects."""
        with self._lock:
            dropped = [entry for entry in self._owned if not keep(entry[0])]
            return [self._owned.pop(entry) for entry in dropped]


class SyncHandler(_Handler[RequestT, Autumn]):
    """Runs the pipeline with blocking I/O (WSGI frameworks)."""

    _client_class = Autumn

    def client(self) -> Autumn:
        """The injected client, else one per secret key, created on first use and reused."""
        if self._client is not None:
            return self._client
        return self._owned_client(None)

    def _identify(self, request: RequestT) -> IdentifyResult:
        result = self.identify(request)
        if inspect.isawaitable(result):
            # An async identify in a sync app: run it to completion on a private loop.
            return asyncio.run(_await(result))
        return result

    def handle(self, request: RequestT, incoming: IncomingRequest) -> HandlerResponse:
        pipeline: Pipeline = self.core.pipeline(incoming)
        try:
            effect = next(pipeline)
            while True:
                try:
                    if isinstance(effect, NeedIdentity):
                        outcome: Any = self._identify(request)
                    else:
                        outcome = self.client().call(effect.operation, effect.body)
                except Exception as exc:
                    effect = pipeline.throw(exc)
                else:
                    effect = pipeline.send(outcome)
        except StopIteration as done:
            response: HandlerResponse = done.value
            return response
        finally:
            pipeline.close()

    def close(self) -> None:
        """Close the clients this handler created (not an injected one)."""
        for client in self._release_owned(lambda scope: False):
            client.close()


class AsyncHandler(_Handler[RequestT, AsyncAutumn]):
    """Runs the pipeline on an event loop (ASGI frameworks)."""

    _client_class = AsyncAutumn

    def client(self) -> AsyncAutumn:
        """The injected client, else one per event loop and secret key, reused across requests."""
        if self._client is not None:
            return self._client
        # The clients of loops that have closed since (a test client's, a restarted worker's) cannot
        # be closed any more; they are only forgotten.
        self._release_owned(
            lambda loop: not (isinstance(loop, asyncio.AbstractEventLoop) and loop.is_closed())
        )
        return self._owned_client(asyncio.get_running_loop())

    async def _identify(self, request: RequestT) -> IdentifyResult:
        # A sync identify runs on the loop, like a JavaScript one: it should only read the request
        # (headers, cookies, a session already loaded by middleware); I/O belongs in an async identify.
        result = self.identify(request)
        if inspect.isawaitable(result):
            return await result
        return result

    async def handle(self, request: RequestT, incoming: IncomingRequest) -> HandlerResponse:
        pipeline: Pipeline = self.core.pipeline(incoming)
        try:
            effect = next(pipeline)
            while True:
                try:
                    if isinstance(effect, NeedIdentity):
                        outcome: Any = await self._identify(request)
                    else:
                        outcome = await self.client().call(effect.operation, effect.body)
                except Exception as exc:
                    effect = pipeline.throw(exc)
                else:
                    effect = pipeline.send(outcome)
        except StopIteration as done:
            response: HandlerResponse = done.value
            return response
        finally:
            pipeline.close()

    async def aclose(self) -> None:
        """Close the clients this handler created on the running loop (not an injected one)."""
        running = asyncio.get_running_loop()
        for client in self._release_owned(lambda loop: loop is not running):
            await client.aclose()
