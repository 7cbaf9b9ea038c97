"""``DefaultAioHttpClient``: an ``httpx.AsyncClient`` whose connections are aiohttp's (``httpx-aiohttp``).

httpx's own async pool (httpcore) costs several times aiohttp's CPU per call once tens of calls run
at once, so ``AsyncAutumn(http_client=DefaultAioHttpClient())`` is the fast async client (install
``autumn-kit[aiohttp]``). It is opt-in, as in openai-python, not picked up merely because the package
is installed: respx and other httpx mocks do not see requests that leave through aiohttp, and httpx's
write timeout and HTTP/2 do not exist there. Nothing here imports aiohttp until a client is built.

The SDK's pipeline keeps working over it because :class:`AioHttpTransport` gives the errors the
meanings the pipeline relies on: the wait for a free connection (bounded by the call's total budget)
ends in ``httpx.PoolTimeout``, errors before the request left the process are ``ConnectError`` /
``ConnectTimeout``, and a connection lost after it left is ``ReadError`` / ``RemoteProtocolError``
(so a non-idempotent call is never reported as "not sent" when the server may have seen it).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import asyncio
    import ssl

    from httpx._types import CertTypes

__all__ = ["AioHttpTransport", "DefaultAioHttpClient", "aiohttp_available"]

_MISSING = (
    "DefaultAioHttpClient needs the httpx-aiohttp package: pip install 'autumn-kit[aiohttp]' "
    "(or pip install httpx-aiohttp)"
)

SDK_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)
"""The same pool size as the SDK's own httpx clients (``_transport.DEFAULT_LIMITS``)."""


def aiohttp_available() -> bool:
    """Whether ``httpx-aiohttp`` (and so aiohttp) can be imported."""
    try:
        import httpx_aiohttp  # noqa: F401
    except ImportError:
        return False
    return True


def _httpx_error(exc: BaseException) -> httpx.TransportError | None:
    """The httpx error an aiohttp error means to the SDK's pipeline (``None``: not an aiohttp error)."""
    import aiohttp

    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ClientHttpProxyError | aiohttp.ClientProxyConnectionError):
        return httpx.ProxyError(message)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.ServerTimeoutError):  # SocketTimeoutError: no bytes within the read timeout
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerFingerprintMismatch):
        return httpx.ConnectError(message)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol(message)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, aiohttp.ClientError):  # reset, broken pipe, other OS errors mid-exchange
        return httpx.ReadError(message)
    return None


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    """Re-raise aiohttp errors (bare or as wrapped by ``httpx-aiohttp``) as the httpx error they mean."""
    try:
        yield
    except httpx.TransportError as exc:
        cause = exc.__cause__
        mapped = _httpx_error(cause) if cause is not None else None
        if mapped is None:
            raise
        raise mapped from cause
    except Exception as exc:
        mapped = _httpx_error(exc)
        if mapped is None:
            raise
        raise mapped from exc


class _Stream(httpx.AsyncByteStream):
    """The response body: errors mapped, and the pool slot given back once the body is closed."""

    def __init__(self, inner: httpx.AsyncByteStream, release: _Slot) -> None:
        self._inner = inner
        self._release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for chunk in self._inner:
                yield chunk

    async def aclose(self) -> None:
        try:
            with _mapped():
                await self._inner.aclose()
        finally:
            self._release()


class _Slot:
    """One taken place of the transport's semaphore, released at most once."""

    __slots__ = ("_semaphore",)

    def __init__(self, semaphore: asyncio.Semaphore | None) -> None:
        self._semaphore = semaphore

    def __call__(self) -> None:
        if self._semaphore is not None:
            self._semaphore.release()
            self._semaphore = None


class AioHttpTransport(httpx.AsyncBaseTransport):
    """``httpx_aiohttp.AiohttpTransport`` with httpx's pool semantics.

    At most ``limits.max_connections`` requests are in flight (a slot is held until the response
    body is closed); a request that finds none free waits at most the ``pool`` timeout and then
    raises ``httpx.PoolTimeout``, as httpcore does. Other keyword arguments go to
    ``AiohttpTransport`` (``verify``, ``cert``, ``proxy``, ``uds``, ``client``...).
    """

    def __init__(self, *, limits: httpx.Limits = SDK_LIMITS, **kwargs: Any) -> None:
        try:
            from httpx_aiohttp import AiohttpTransport
        except ImportError as exc:
            raise ImportError(_MISSING) from exc
        # asyncio is imported with the transport, not with the SDK: a sync-only program never loads it.
        import asyncio

        self._inner = AiohttpTransport(limits=limits, **kwargs)
        self._wait_for = asyncio.wait_for
        self._timeout_error = asyncio.TimeoutError  # not the builtin TimeoutError before Python 3.11
        size = limits.max_connections
        self._slots = asyncio.Semaphore(size) if size is not None else None

    async def _take_slot(self, request: httpx.Request) -> _Slot:
        slots = self._slots
        if slots is None:
            return _Slot(None)
        if not slots.locked():
            await slots.acquire()  # a free slot: no suspension, no timer
            return _Slot(slots)
        timeouts = request.extensions.get("timeout") or {}
        pool = timeouts.get("pool") if isinstance(timeouts, dict) else None
        try:
            await self._wait_for(slots.acquire(), pool)
        except self._timeout_error:
            raise httpx.PoolTimeout(f"no connection of the pool became free within {pool:g} s") from None
        return _Slot(slots)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        release = await self._take_slot(request)
        try:
            with _mapped():
                response = await self._inner.handle_async_request(request)
        except BaseException:
            release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Stream(response.stream, release)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class DefaultAioHttpClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` sending over aiohttp, with the SDK's defaults (redirects followed,
    100 connections all kept alive). Give it to the async client: ``AsyncAutumn(http_client=
    DefaultAioHttpClient())``; unlike other injected clients, the SDK closes it with the client
    (``aclose`` / ``async with``). Takes ``httpx.AsyncClient``'s arguments; proxies (given or from
    the environment) go through aiohttp too.
    """

    def __init__(self, **kwargs: Any) -> None:
        if not aiohttp_available():
            raise ImportError(_MISSING)
        kwargs.setdefault("follow_redirects", True)
        kwargs.setdefault("limits", SDK_LIMITS)
        super().__init__(**kwargs)

    def _init_transport(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: CertTypes | None = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = SDK_LIMITS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> httpx.AsyncBaseTransport:
        if transport is not None:
            return transport
        return AioHttpTransport(verify=verify, cert=cert, trust_env=trust_env, http2=http2, limits=limits)

    def _init_proxy_transport(
        self,
        proxy: httpx.Proxy,
        verify: ssl.SSLContext | str | bool = True,
        cert: CertTypes | None = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = SDK_LIMITS,
    ) -> httpx.AsyncBaseTransport:
        return AioHttpTransport(
            verify=verify, cert=cert, trust_env=trust_env, http2=http2, limits=limits, proxy=proxy
        )
