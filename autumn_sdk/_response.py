"""Raw responses: the parsed result together with the HTTP exchange that produced it.

``autumn.with_raw_response.customers.get(...)`` returns a :class:`RawResponse` instead of the bare
model, so callers can read the status (``202`` = degraded), headers or the ``httpx.Response``.

The generated ``*WithRawResponse`` classes wrap each resource method with
:func:`to_raw_response_wrapper` / :func:`async_to_raw_response_wrapper`. The wrapper opens a
*capture* in a context variable; the transport finds it and records the final ``httpx.Response``
there, so the resource methods keep one signature and one code path for both modes. A call made
through a raw wrapper never fails open: it either returns the real response or raises.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Generic, TypeVar

from typing_extensions import ParamSpec

if TYPE_CHECKING:
    import httpx

P = ParamSpec("P")
R = TypeVar("R")


class ResponseCapture:
    """Slot the transport fills with the final HTTP response of a raw call."""

    __slots__ = ("response",)

    def __init__(self) -> None:
        self.response: httpx.Response | None = None


_current_capture: ContextVar[ResponseCapture | None] = ContextVar("autumn_sdk_raw_capture", default=None)


def current_capture() -> ResponseCapture | None:
    """The capture of the raw call in progress, if any (read by the transport)."""
    return _current_capture.get()


@contextmanager
def _capturing() -> Iterator[ResponseCapture]:
    capture = ResponseCapture()
    token = _current_capture.set(capture)
    try:
        yield capture
    finally:
        _current_capture.reset(token)


class RawResponse(Generic[R]):
    """An API result plus its HTTP response (status, headers, the ``httpx.Response`` itself)."""

    __slots__ = ("_parsed", "http_response")

    def __init__(self, http_response: httpx.Response, parsed: R) -> None:
        self.http_response = http_response
        self._parsed = parsed

    @property
    def status_code(self) -> int:
        return self.http_response.status_code

    @property
    def headers(self) -> httpx.Headers:
        return self.http_response.headers

    @property
    def replayed(self) -> bool:
        """True when the server answered with the stored response of an earlier request with the
        same ``Idempotency-Key`` (header ``Idempotent-Replayed: true``), e.g. after a retry."""
        value: str = self.http_response.headers.get("idempotent-replayed", "")
        return value.lower() == "true"

    @property
    def request_id(self) -> str | None:
        """The server's ``x-request-id`` for this response, if it sent one."""
        value: str | None = self.http_response.headers.get("x-request-id")
        return value or None

    def parse(self) -> R:
        """The typed result, exactly what the non-raw method returns."""
        return self._parsed

    def __repr__(self) -> str:
        return f"<RawResponse [{self.status_code}] {type(self._parsed).__name__}>"


def _missing_response(func: Callable[..., object]) -> RuntimeError:
    name = getattr(func, "__qualname__", repr(func))
    return RuntimeError(f"{name} completed without an HTTP response; it is not an Autumn API call")


def to_raw_response_wrapper(func: Callable[P, R]) -> Callable[P, RawResponse[R]]:
    """Wrap a sync resource method so it returns a :class:`RawResponse` around its result."""

    @functools.wraps(func)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> RawResponse[R]:
        with _capturing() as capture:
            parsed = func(*args, **kwargs)
        if capture.response is None:
            raise _missing_response(func)
        return RawResponse(capture.response, parsed)

    return wrapped


def async_to_raw_response_wrapper(
    func: Callable[P, Awaitable[R]],
) -> Callable[P, Awaitable[RawResponse[R]]]:
    """Wrap an async resource method so it resolves to a :class:`RawResponse` around its result."""

    @functools.wraps(func)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> RawResponse[R]:
        with _capturing() as capture:
            parsed = await func(*args, **kwargs)
        if capture.response is None:
            raise _missing_response(func)
        return RawResponse(capture.response, parsed)

    return wrapped
