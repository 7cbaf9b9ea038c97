"""How a result came to be: a normal answer, a degraded (202) answer, or a fail-open default.

The SDK's results are plain models, so the provenance is kept beside them, in a table keyed by
object identity whose entries vanish with the result. It is not a model attribute: it must not
change equality, ``model_dump()`` or ``repr`` of the models the rest of the kit compares and
serialises. Read it with :func:`is_fail_open` / :func:`is_degraded`.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ResponseInfo:
    """Provenance of one SDK result."""

    status_code: int | None
    """The HTTP status that produced it; ``None`` for a fail-open default (no usable response)."""
    fail_open_cause: str | None = None
    """Why the SDK failed open (e.g. ``"APITimeoutError: ..."``); ``None`` for real answers."""


_infos: dict[int, ResponseInfo] = {}


def attach_response_info(result: Any, info: ResponseInfo) -> None:
    """Record ``info`` for ``result`` for as long as ``result`` lives."""
    key = id(result)
    try:
        weakref.finalize(result, _infos.pop, key, None)
    except TypeError:  # not weak-referenceable (never the case for generated models)
        return
    _infos[key] = info


def response_info(result: Any) -> ResponseInfo | None:
    """The provenance recorded for ``result``, if any."""
    return _infos.get(id(result))


def is_fail_open(result: Any) -> bool:
    """True when ``result`` is a safe default returned because Autumn was unreachable or failing."""
    info = response_info(result)
    return info is not None and info.fail_open_cause is not None


def is_degraded(result: Any) -> bool:
    """True when Autumn answered ``202``: it served the call in degraded mode (allowed fail-open)."""
    info = response_info(result)
    return info is not None and info.status_code == 202
