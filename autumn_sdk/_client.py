"""The public clients: :class:`Autumn` (sync, with ``*_async`` twins) and :class:`AsyncAutumn`.

Their operation methods are generated (``_generated/resources/``); this module adds the
constructor, lifecycle and the four entry points the generated methods call (``_request``,
``_request_async``, ``_paginate``, ``_paginate_async``), all delegated to one
:class:`~autumn_sdk._transport.Transport`.

Timeouts: each attempt gets by default 5 s for ``check``/``track`` (hot path, then fail open), 30 s
for ``billing.*`` (Stripe is involved), 15 s for everything else. ``timeout=`` (seconds or
``httpx.Timeout``) or ``timeout_ms=`` on the client replaces those defaults; ``timeout_ms=`` on a
call wins over both. The whole call (every attempt, every backoff wait, every wait for a pooled
connection) fits in ``total_timeout_ms``: by default twice the per-attempt timeout (10 s for
``check``/``track``), set per client or per call.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel
from typing_extensions import Self, Unpack

from ._config import DEFAULT_API_VERSION, ClientConfig, DebugLogger, SecretKey
from ._generated.resources import (
    AsyncAutumnAPI,
    AsyncAutumnAPIWithRawResponse,
    AutumnAPI,
    AutumnAPIWithRawResponse,
)
from ._model import AutumnModel
from ._operation import Operation
from ._resource import RequestOptions, reject_unknown_options
from ._retries import DEFAULT_MAX_RETRIES, RetryConfig
from ._transport import Transport

T = TypeVar("T", bound=BaseModel)

__all__ = ["AsyncAutumn", "Autumn"]


def _build_config(
    secret_key: SecretKey | None,
    server_url: str | None,
    timeout: float | httpx.Timeout | None,
    max_retries: int,
    fail_open: bool | None,
    x_api_version: str,
    retry_config: RetryConfig | None,
    timeout_ms: int | None,
    debug_logger: DebugLogger | None,
    default_headers: Mapping[str, str] | None,
    total_timeout_ms: int | None,
) -> ClientConfig:
    return ClientConfig.build(
        secret_key=secret_key,
        server_url=server_url,
        x_api_version=x_api_version,
        fail_open=fail_open,
        max_retries=max_retries,
        retry_config=retry_config,
        timeout=timeout,
        timeout_ms=timeout_ms,
        default_headers=default_headers,
        debug_logger=debug_logger,
        total_timeout_ms=total_timeout_ms,
    )


def _result_model(op: Operation) -> type[BaseModel]:
    """The model a generic :meth:`Autumn.call` parses into (an empty success body parses as ``{}``)."""
    return op.response_model or EmptyResponse


class EmptyResponse(AutumnModel):
    """The result of an operation whose success response has no declared body."""


class _TransportClient:
    """What both clients share: one :class:`Transport` behind every call, and the async lifecycle."""

    _transport: Transport

    @property
    def base_url(self) -> str:
        return self._transport.config.base_url

    @property
    def fail_open(self) -> bool:
        return self._transport.config.fail_open

    async def _request_async(
        self, op: Operation, body: Mapping[str, Any], options: RequestOptions, cast_to: type[T]
    ) -> T:
        return await self._transport.request_async(op, body, options, cast_to)

    def _paginate_async(
        self, op: Operation, body: Mapping[str, Any], options: RequestOptions, item_type: type[T]
    ) -> AsyncIterator[T]:
        return self._transport.paginate_async(op, body, options, item_type)

    async def aclose(self) -> None:
        """Close every httpx client the SDK created (never an injected one), the async one included."""
        await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class Autumn(_TransportClient, AutumnAPI):
    """Sync Autumn client; every method also has an awaitable ``*_async`` twin.

    ``Autumn("am_sk_...", server_url=...)`` or ``Autumn()`` with ``AUTUMN_SECRET_KEY`` set.
    ``server_url`` falls back to ``AUTUMN_URL``, then Autumn's cloud (a server that cannot be reached
    is logged once per client at WARNING); ``fail_open`` (default on) to ``AUTUMN_FAIL_OPEN`` /
    ``FAIL_OPEN``. ``total_timeout_ms`` bounds each call end to end (default: twice its per-attempt
    timeout).
    ``http_client`` (or the official name ``client``) and ``async_client`` inject your own httpx
    clients, which the SDK never closes. Use ``with Autumn() as autumn:`` or :meth:`close`;
    :meth:`aclose` / ``async with`` also closes the async client used by the twins.
    """

    def __init__(
        self,
        secret_key: SecretKey | None = None,
        *,
        server_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        fail_open: bool | None = None,
        http_client: httpx.Client | None = None,
        x_api_version: str = DEFAULT_API_VERSION,
        retry_config: RetryConfig | None = None,
        timeout_ms: int | None = None,
        client: httpx.Client | None = None,
        async_client: httpx.AsyncClient | None = None,
        debug_logger: DebugLogger | None = None,
        default_headers: Mapping[str, str] | None = None,
        total_timeout_ms: int | None = None,
    ) -> None:
        if http_client is not None and client is not None and http_client is not client:
            raise TypeError("pass the httpx.Client as http_client= or client=, not both")
        config = _build_config(
            secret_key, server_url, timeout, max_retries, fail_open, x_api_version,
            retry_config, timeout_ms, debug_logger, default_headers, total_timeout_ms,
        )  # fmt: skip
        self._transport = Transport(config, sync_client=http_client or client, async_client=async_client)
        super().__init__(self)

    @functools.cached_property
    def with_raw_response(self) -> AutumnAPIWithRawResponse:
        """The same methods, returning :class:`~autumn_sdk.RawResponse` (status, headers, parse())."""
        return AutumnAPIWithRawResponse(self)

    def call(
        self,
        op: Operation,
        body: Mapping[str, Any] | BaseModel | None = None,
        /,
        **options: Unpack[RequestOptions],
    ) -> BaseModel:
        """Perform any operation of the generated table by its descriptor (for generic dispatchers
        such as the autumn-js handler): ``autumn.call(ops.CUSTOMERS_GET, {"customer_id": "c"})``."""
        reject_unknown_options("Autumn.call", options)
        return self._transport.request(op, body, options, _result_model(op))

    async def call_async(
        self,
        op: Operation,
        body: Mapping[str, Any] | BaseModel | None = None,
        /,
        **options: Unpack[RequestOptions],
    ) -> BaseModel:
        """Awaitable twin of :meth:`call`."""
        reject_unknown_options("Autumn.call_async", options)
        return await self._transport.request_async(op, body, options, _result_model(op))

    def _request(
        self, op: Operation, body: Mapping[str, Any], options: RequestOptions, cast_to: type[T]
    ) -> T:
        return self._transport.request(op, body, options, cast_to)

    def _paginate(
        self, op: Operation, body: Mapping[str, Any], options: RequestOptions, item_type: type[T]
    ) -> Iterator[T]:
        return self._transport.paginate(op, body, options, item_type)

    def close(self) -> None:
        """Close the sync httpx client the SDK created (never an injected one)."""
        self._transport.close()

    def __enter__(self) -> Autumn:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Autumn {self.base_url}>"


class AsyncAutumn(_TransportClient, AsyncAutumnAPI):
    """Async Autumn client: ``await autumn.check(...)``, as Autumn's own docs write it.

    Same constructor as :class:`Autumn`; ``http_client`` (or ``async_client``) takes an
    ``httpx.AsyncClient``. Use ``async with AsyncAutumn() as autumn:`` or :meth:`aclose`.
    Many concurrent calls: ``AsyncAutumn(http_client=DefaultAioHttpClient())`` sends over aiohttp
    (``pip install 'autumn-kit[aiohttp]'``), several times cheaper per call than httpx's own pool
    once tens of calls run at once; the SDK closes that client with this one.
    """

    def __init__(
        self,
        secret_key: SecretKey | None = None,
        *,
        server_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        fail_open: bool | None = None,
        http_client: httpx.AsyncClient | None = None,
        x_api_version: str = DEFAULT_API_VERSION,
        retry_config: RetryConfig | None = None,
        timeout_ms: int | None = None,
        client: httpx.AsyncClient | None = None,
        async_client: httpx.AsyncClient | None = None,
        debug_logger: DebugLogger | None = None,
        default_headers: Mapping[str, str] | None = None,
        total_timeout_ms: int | None = None,
    ) -> None:
        given = [c for c in (http_client, client, async_client) if c is not None]
        if len({id(c) for c in given}) > 1:
            raise TypeError("pass one httpx.AsyncClient (http_client=), not several")
        injected = given[0] if given else None
        if injected is not None and not isinstance(injected, httpx.AsyncClient):
            raise TypeError(f"AsyncAutumn needs an httpx.AsyncClient, got {type(injected).__name__}")
        config = _build_config(
            secret_key, server_url, timeout, max_retries, fail_open, x_api_version,
            retry_config, timeout_ms, debug_logger, default_headers, total_timeout_ms,
        )  # fmt: skip
        self._transport = Transport(config, async_client=injected)
        super().__init__(self)

    @functools.cached_property
    def with_raw_response(self) -> AsyncAutumnAPIWithRawResponse:
        """The same methods, resolving to :class:`~autumn_sdk.RawResponse`."""
        return AsyncAutumnAPIWithRawResponse(self)

    async def call(
        self,
        op: Operation,
        body: Mapping[str, Any] | BaseModel | None = None,
        /,
        **options: Unpack[RequestOptions],
    ) -> BaseModel:
        """Perform any operation of the generated table by its descriptor (see :meth:`Autumn.call`)."""
        reject_unknown_options("AsyncAutumn.call", options)
        return await self._transport.request_async(op, body, options, _result_model(op))

    def __repr__(self) -> str:
        return f"<AsyncAutumn {self.base_url}>"
