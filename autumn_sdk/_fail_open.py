"""Fail-open: safe defaults for the calls that gate a product, when Autumn cannot answer.

Autumn sits on the request path of its customers' apps. If ``check`` raised during an Autumn outage,
the app would lock its users out, so for a small set of operations the SDK returns a permissive
default instead (after retries), logs a WARNING on the ``autumn_sdk`` logger and marks the result
(:func:`autumn_sdk.is_fail_open`). The set is Autumn's documented one (``check``, ``track``,
``customers.get_or_create``, ``entities.get``) plus ``plans.list``, which the official SDK also covers.
Only connection errors, timeouts and 5xx fail open; 4xx always raise (they are integration bugs), and
so does running out of time while waiting for a connection of the client's own pool
(``PoolTimeoutError``: nothing was sent, Autumn is not known to be down).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from ._config import resolve_fail_open
from ._meta import ResponseInfo, attach_response_info
from ._operation import Operation

T = TypeVar("T", bound=BaseModel)

logger = logging.getLogger("autumn_sdk")

FAIL_OPEN_DOCS = "https://docs.useautumn.com/documentation/fail-open"


def _check_default(params: Mapping[str, Any]) -> dict[str, Any]:
    default: dict[str, Any] = {
        "allowed": True,
        "customer_id": params.get("customer_id", ""),
        "balance": None,
        "flag": None,
    }
    if params.get("entity_id") is not None:
        default["entity_id"] = params["entity_id"]
    return default


def _track_default(params: Mapping[str, Any]) -> dict[str, Any]:
    default: dict[str, Any] = {"customer_id": params.get("customer_id", ""), "value": 0, "balance": None}
    if params.get("entity_id") is not None:
        default["entity_id"] = params["entity_id"]
    return default


def _customer_default(params: Mapping[str, Any]) -> dict[str, Any]:
    """Autumn's documented sentinel customer: ``id`` is ``None`` so callers can tell it apart."""
    return {
        "id": None,
        "name": None,
        "email": None,
        "created_at": 0,
        "fingerprint": None,
        "stripe_id": None,
        "env": "live",
        "metadata": {},
        "send_email_receipts": False,
        "billing_controls": {},
        "subscriptions": [],
        "purchases": [],
        "balances": {},
        "flags": {},
        "licenses": [],
    }


def _entity_default(params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": None,
        "name": None,
        "customer_id": None,
        "feature_id": None,
        "created_at": 0,
        "env": "live",
        "subscriptions": [],
        "purchases": [],
        "balances": {},
        "flags": {},
    }


def _empty_list(params: Mapping[str, Any]) -> dict[str, Any]:
    return {"list": []}


_DEFAULTS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "check": _check_default,
    "track": _track_default,
    "customers.get_or_create": _customer_default,
    "entities.get": _entity_default,
    "plans.list": _empty_list,
}

FAIL_OPEN_OPERATIONS = frozenset(_DEFAULTS)
"""Qualified names of the operations that return a safe default instead of raising on outages:
those whose ``Operation.fail_open`` is set (a test keeps the two equal)."""


def fail_open_enabled(explicit: bool | None = None) -> bool:
    """``explicit`` if given, else env ``AUTUMN_FAIL_OPEN`` / ``FAIL_OPEN`` (default on).

    Public so that code built on the SDK (the ``autumn_handlers`` adapters) reads the setting the
    same way the clients do.
    """
    return resolve_fail_open(explicit)


def fail_open_default(qualified_name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The safe default body (API snake_case) for a fail-open operation, e.g. the sentinel customer
    of ``"customers.get_or_create"``; ``params`` are the call's, which ``check``/``track`` echo."""
    if qualified_name not in _DEFAULTS:
        raise ValueError(f"{qualified_name} does not fail open (only {sorted(FAIL_OPEN_OPERATIONS)} do)")
    return _DEFAULTS[qualified_name](params or {})


def supports_fail_open(op: Operation) -> bool:
    """The operation's declared policy (``op.fail_open``); ``_DEFAULTS`` holds each one's default."""
    return op.fail_open


def fail_open_result(op: Operation, params: Mapping[str, Any], cast_to: type[T], cause: BaseException) -> T:
    """The safe default for ``op``, marked as fail-open, with a loud warning naming op and cause."""
    reason = f"{type(cause).__name__}: {cause}"
    logger.warning(
        "Autumn request failed, failing open: operation=%s cause=%s. Returning a safe default "
        "(autumn_sdk.is_fail_open(result) is True). See %s",
        op.qualified_name,
        reason,
        FAIL_OPEN_DOCS,
    )
    result = cast_to.model_validate(fail_open_default(op.qualified_name, params))
    attach_response_info(result, ResponseInfo(status_code=None, fail_open_cause=reason))
    return result
