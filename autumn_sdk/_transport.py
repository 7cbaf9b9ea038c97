"""The engine behind both clients: settings, lazily created httpx clients, and the call entry points.

``Autumn`` needs a blocking client for its methods and an async one for the ``*_async`` twins;
``AsyncAutumn`` needs only the async one. Neither is created until the first call that uses it, and
clients passed in by the caller are used as they are and never closed by the SDK (except a
:class:`~autumn_sdk.DefaultAioHttpClient`, which only selects the aiohttp transport).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from . import _drivers
from ._aiohttp import DefaultAioHttpClient
from ._config import ClientConfig
from ._operation import Operation
from ._pagination import CursorWalk
from ._pipeline import ClientState, plan_call
from ._resource import RequestOptions

T = TypeVar("T", bound=BaseModel)

Body = Mapping[str, Any] | BaseModel | None


DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)
"""The SDK's own clients: httpx's 100 connections, all kept alive between bursts (httpx keeps 20 by
default, so every burst above 20 concurrent calls would open new connections again). Calls beyond
100 at once wait for a free connection within their total budget (see ``_pipeline``)."""


def _new_sync_client() -> httpx.Client:
    return httpx.Client(follow_redirects=True, limits=DEFAULT_LIMITS)


def _new_async_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(follow_redirects=True, limits=DEFAULT_LIMITS)


class Transport:
    """Performs operations for a client; one instance per ``Autumn`` / ``AsyncAutumn``."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        sync_client: httpx.Client | None = None,
        async_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self._sync_client = sync_client
        self._async_client = async_client
        self._owns_sync = sync_client is None
        # A DefaultAioHttpClient is the SDK's own client over aiohttp, handed in only to choose it.
        self._owns_async = async_client is None or isinstance(async_client, DefaultAioHttpClient)
        self._lock = threading.Lock()
        self._closed = False
        self.state = ClientState()

    # -- clients -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this Autumn client is closed; create a new one")

    @property
    def sync_client(self) -> httpx.Client:
        self._check_open()
        if self._sync_client is None:
            with self._lock:
                if self._sync_client is None:
                    self._sync_client = _new_sync_client()
        return self._sync_client

    @property
    def async_client(self) -> httpx.AsyncClient:
        self._check_open()
        if self._async_client is None:
            with self._lock:
                if self._async_client is None:
                    self._async_client = _new_async_client()
        return self._async_client

    def close(self) -> None:
        """Close the sync client the SDK created (an async one it created is dropped unclosed
        only if never used; use :meth:`aclose` from async code to close it properly)."""
        self._closed = True
        if self._owns_sync and self._sync_client is not None:
            self._sync_client.close()
            self._sync_client = None

    async def aclose(self) -> None:
        """Close every client the SDK created."""
        self.close()
        if self._owns_async and self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None

    # -- calls -------------------------------------------------------------------------------

    def request(self, op: Operation, body: Body, options: RequestOptions, cast_to: type[T]) -> T:
        plan = plan_call(self.config, op, body, options, cast_to, self.state)
        return _drivers.run_sync(plan, self.sync_client)

    async def request_async(self, op: Operation, body: Body, options: RequestOptions, cast_to: type[T]) -> T:
        plan = plan_call(self.config, op, body, options, cast_to, self.state)
        return await _drivers.run_async(plan, self.async_client)

    def paginate(self, op: Operation, body: Body, options: RequestOptions, item_type: type[T]) -> Iterator[T]:
        walk = CursorWalk(op, body, item_type)
        while True:
            page = self.request(op, walk.body, options, walk.page_model)
            yield from walk.items(page)
            if not walk.advance(page):
                return

    async def paginate_async(
        self, op: Operation, body: Body, options: RequestOptions, item_type: type[T]
    ) -> AsyncIterator[T]:
        walk = CursorWalk(op, body, item_type)
        while True:
            page = await self.request_async(op, walk.body, options, walk.page_model)
            for item in walk.items(page):
                yield item
            if not walk.advance(page):
                return
