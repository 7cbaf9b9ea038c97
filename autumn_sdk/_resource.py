"""Base classes the generated resources (``_generated/resources/``) call into.

CONTRACT between ``codegen`` (which emits the typed method signatures) and the hand-written
SDK (which implements the calls). Generated code may use exactly these names:

* ``NOT_GIVEN`` / ``NotGiven``: default of every optional keyword, so "not passed" differs from ``None``;
* ``RequestOptions``: the per-call options every method takes as ``**options``; a keyword that is
  neither a parameter of the method nor an option raises ``TypeError`` here (see
  :func:`reject_unknown_options`), as the official SDK's methods do, so a misspelt argument is
  never silently dropped;
* ``SyncResource._call`` / ``_call_async`` / ``_paginate`` / ``_paginate_async`` and
  ``AsyncResource._call`` / ``_paginate``: perform an :class:`~autumn_sdk._operation.Operation`.

``body`` maps wire field names to values that may be ``NOT_GIVEN`` (dropped), plain data,
or generated models; the implementation validates it through ``op.params_model``.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel
from typing_extensions import TypedDict

from ._operation import Operation

if TYPE_CHECKING:
    from ._retries import RetryConfig

T = TypeVar("T", bound=BaseModel)


class NotGiven:
    """Sentinel for "argument not passed" (distinct from an explicit ``None``)."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()


class RequestOptions(TypedDict, total=False):
    """Per-call options accepted by every SDK method (names follow the official SDK)."""

    retries: RetryConfig | int | None
    server_url: str | None
    timeout_ms: int | None
    http_headers: Mapping[str, str] | None
    idempotency_key: str | None
    total_timeout_ms: int | None


OPTION_NAMES: frozenset[str] = RequestOptions.__optional_keys__ | RequestOptions.__required_keys__
"""Every per-call option name (what ``**options`` may hold)."""


def reject_unknown_options(
    method: str, options: Mapping[str, object], parameters: Iterable[str] = ()
) -> None:
    """Raise ``TypeError`` for the first key of ``options`` that is not a per-call option.

    ``method`` names the method in the message; ``parameters`` are its other keyword names, offered
    with the options as the closest valid name (``difflib``).
    """
    for name in options:
        if name in OPTION_NAMES:
            continue
        valid = [*parameters, *sorted(OPTION_NAMES)]
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f"; valid names: {', '.join(valid)}"
        raise TypeError(f"{method}() got an unexpected keyword argument {name!r}{hint}")


def _keyword_names(method: Callable[..., object]) -> list[str]:
    return [
        p.name
        for p in inspect.signature(method).parameters.values()
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]


def _check_options(resource: object, method_name: str, options: Mapping[str, object]) -> None:
    """Cheap when every key is an option; otherwise the method's own signature names the candidates."""
    if OPTION_NAMES.issuperset(options):
        return
    method = getattr(resource, method_name)
    reject_unknown_options(f"{type(resource).__name__}.{method_name}", options, _keyword_names(method))


class SyncResource:
    """A group of operations bound to a sync client; also offers ``*_async`` twins."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def _call(self, op: Operation, body: Mapping[str, Any], options: RequestOptions, cast_to: type[T]) -> T:
        _check_options(self, op.method_name, options)
        return self._client._request(op, body, options, cast_to)  # type: ignore[no-any-return]

    async def _call_async(
        self, op: Operation, body: Mapping[str, Any], options: RequestOptions, cast_to: type[T]
    ) -> T:
        _check_options(self, f"{op.method_name}_async", options)
        return await self._client._request_async(op, body, options, cast_to)  # type: ignore[no-any-return]

    def _paginate(
        self, op: Operation, body: Mapping[str, Any], options: RequestOptions, item_type: type[T]
    ) -> Iterator[T]:
        _check_options(self, "list_all", options)
        return self._client._paginate(op, body, options, item_type)  # type: ignore[no-any-return]

    def _paginate_async(
        self, op: Operation, body: Mapping[str, Any], options: RequestOptions, item_type: type[T]
    ) -> AsyncIterator[T]:
        _check_options(self, "list_all_async", options)
        return self._client._paginate_async(op, body, options, item_type)  # type: ignore[no-any-return]


class AsyncResource:
    """A group of operations bound to an async client; methods are awaited without a suffix."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def _call(
        self, op: Operation, body: Mapping[str, Any], options: RequestOptions, cast_to: type[T]
    ) -> T:
        _check_options(self, op.method_name, options)
        return await self._client._request_async(op, body, options, cast_to)  # type: ignore[no-any-return]

    def _paginate(
        self, op: Operation, body: Mapping[str, Any], options: RequestOptions, item_type: type[T]
    ) -> AsyncIterator[T]:
        _check_options(self, "list_all", options)
        return self._client._paginate_async(op, body, options, item_type)  # type: ignore[no-any-return]
