"""Typed Python SDK for the Autumn billing API.

    from autumn_sdk import Autumn

    autumn = Autumn("am_sk_...", server_url="http://127.0.0.1:8080")  # or AUTUMN_SECRET_KEY / AUTUMN_URL
    if autumn.check(customer_id="cus_123", feature_id="messages").allowed:
        autumn.track(customer_id="cus_123", feature_id="messages", value=1)

Exports are resolved lazily (PEP 562): ``import autumn_sdk`` loads neither httpx nor the models;
they are imported the first time a name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from autumn_kit import refuse_mixed_install

from ._version import __version__

refuse_mixed_install()  # before anything of autumn_sdk is used

if TYPE_CHECKING:
    from . import errors, models, webhooks
    from ._aiohttp import DefaultAioHttpClient
    from ._client import AsyncAutumn, Autumn
    from ._fail_open import FAIL_OPEN_OPERATIONS, fail_open_default, fail_open_enabled
    from ._meta import is_degraded, is_fail_open
    from ._resource import NOT_GIVEN, NotGiven, RequestOptions
    from ._response import RawResponse
    from ._retries import BackoffStrategy, RetryConfig
    from .errors import (
        APIConnectionError,
        APITimeoutError,
        AuthenticationError,
        AutumnDefaultError,
        AutumnError,
        BadRequestError,
        ConflictError,
        InternalServerError,
        MissingSecretKeyError,
        NotFoundError,
        PermissionDeniedError,
        PoolTimeoutError,
        PossiblyAppliedError,
        RateLimitError,
        ResponseValidationError,
        WebhookVerificationError,
    )
    from .webhooks import Webhook

_EXPORTS: dict[str, str] = {
    "Autumn": "._client",
    "AsyncAutumn": "._client",
    "RetryConfig": "._retries",
    "BackoffStrategy": "._retries",
    "RawResponse": "._response",
    "DefaultAioHttpClient": "._aiohttp",
    "is_fail_open": "._meta",
    "is_degraded": "._meta",
    "FAIL_OPEN_OPERATIONS": "._fail_open",
    "fail_open_default": "._fail_open",
    "fail_open_enabled": "._fail_open",
    "NOT_GIVEN": "._resource",
    "NotGiven": "._resource",
    "RequestOptions": "._resource",
    "Webhook": ".webhooks",
    "APIConnectionError": ".errors",
    "APITimeoutError": ".errors",
    "AuthenticationError": ".errors",
    "AutumnDefaultError": ".errors",
    "AutumnError": ".errors",
    "BadRequestError": ".errors",
    "ConflictError": ".errors",
    "InternalServerError": ".errors",
    "MissingSecretKeyError": ".errors",
    "NotFoundError": ".errors",
    "PermissionDeniedError": ".errors",
    "PoolTimeoutError": ".errors",
    "PossiblyAppliedError": ".errors",
    "RateLimitError": ".errors",
    "ResponseValidationError": ".errors",
    "WebhookVerificationError": ".errors",
}
_SUBMODULES = frozenset({"errors", "models", "webhooks", "utils"})

__all__ = [
    "FAIL_OPEN_OPERATIONS",
    "NOT_GIVEN",
    "APIConnectionError",
    "APITimeoutError",
    "AsyncAutumn",
    "AuthenticationError",
    "Autumn",
    "AutumnDefaultError",
    "AutumnError",
    "BackoffStrategy",
    "BadRequestError",
    "ConflictError",
    "DefaultAioHttpClient",
    "InternalServerError",
    "MissingSecretKeyError",
    "NotFoundError",
    "NotGiven",
    "PermissionDeniedError",
    "PoolTimeoutError",
    "PossiblyAppliedError",
    "RateLimitError",
    "RawResponse",
    "RequestOptions",
    "ResponseValidationError",
    "RetryConfig",
    "Webhook",
    "WebhookVerificationError",
    "__version__",
    "errors",
    "fail_open_default",
    "fail_open_enabled",
    "is_degraded",
    "is_fail_open",
    "models",
    "webhooks",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
