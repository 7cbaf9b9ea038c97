"""The framework-free autumnHandler pipeline, written once for sync and async frameworks.

:meth:`HandlerCore.pipeline` is a generator that performs no I/O: it *yields* what it needs done
(:class:`NeedIdentity`: call the app's ``identify``; :class:`CallAutumn`: perform one SDK operation)
and receives the outcome (or has the exception thrown back in). The runners in
:mod:`autumn_handlers.runners` drive it with a sync ``Autumn`` client (Flask) or an ``AsyncAutumn``
client (Starlette, Litestar), so the contract lives in one place.

The order of the steps follows autumn-js: preflight (when CORS is on), secret key, route match,
``identify`` once, customer requirement, protected-field cleanup, ``customer_id`` injection, SDK call,
camelCase answer. Unlike autumn-js, the body is checked (size, media type, strict JSON: see
:mod:`autumn_handlers.inputs`) before ``identify`` runs, and a bad body or a schema violation is the
browser's 4xx, not a 500.

No exception's text ever reaches the browser: a failing ``identify``, an unexpected error, an
unreachable Autumn or an unreadable answer from it is logged on the ``autumn_handlers`` logger (with
the traceback where there is one) and answered with a fixed message; only Autumn's own JSON error
messages for 4xx answers are passed on, as autumn-js does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from autumn_sdk import fail_open_default, fail_open_enabled
from autumn_sdk._operation import Operation
from autumn_sdk.errors import (
    APIConnectionError,
    APITimeoutError,
    AutumnError,
    PoolTimeoutError,
    ResponseValidationError,
)

from .casing import browser_to_api, model_to_browser, server_to_api
from .cors import CORSConfig
from .identity import CUSTOMER_DATA_FIELDS, Identity, normalize_identity
from .inputs import (
    DEFAULT_MAX_BODY_BYTES,
    INVALID_INPUTS,
    InvalidInput,
    check_api_values,
    describe_validation_error,
    parse_body,
)
from .responses import NETWORK_FAILURE_STATUS, HandlerResponse, error_response, json_response, no_content
from .routes import GET_OR_CREATE_CUSTOMER, HandlerRoute, match_route

__all__ = [
    "DEFAULT_PATH_PREFIX",
    "CallAutumn",
    "Effect",
    "HandlerCore",
    "HandlerSettings",
    "IncomingRequest",
    "NeedIdentity",
    "Pipeline",
]

logger = logging.getLogger("autumn_handlers")

DEFAULT_PATH_PREFIX = "/api/autumn"
FORCED_CUSTOMER_EXPAND = "balances.feature"
"""The hooks' local ``check()`` needs each balance's feature, so it is always expanded."""

MISSING_SECRET_KEY_MESSAGE = "Autumn secret key not found in ENV variables or passed into autumnHandler"

# The fixed messages of failures whose details stay in the server log (never an exception's text).
IDENTIFY_FAILED = "identify_failed"
IDENTIFY_FAILED_MESSAGE = "The app's identify function failed; the details are in the server log"
INTERNAL_ERROR = "internal_error"
INTERNAL_ERROR_MESSAGE = "Internal server error; the details are in the server log"
AUTUMN_API_ERROR = "autumn_api_error"
UNREACHABLE_MESSAGE = "Could not reach Autumn"
TIMEOUT_MESSAGE = "Autumn did not answer in time"
CLIENT_BUSY = "client_busy"
CLIENT_BUSY_MESSAGE = "Too many calls to Autumn are waiting; try again shortly"
UNREADABLE_ANSWER_MESSAGE = "Autumn's answer could not be read; the details are in the server log"


@dataclass(frozen=True)
class HandlerSettings:
    """Options shared by every adapter."""

    secret_key: str | None = None
    """Autumn secret key; ``None`` reads env ``AUTUMN_SECRET_KEY`` on each request."""
    autumn_url: str | None = None
    """Origin of the Autumn API (a self-hosted or reference server), without ``/v1``."""
    path_prefix: str = DEFAULT_PATH_PREFIX
    cors: CORSConfig | None = None
    fail_open: bool | None = None
    """Answer ``getOrCreateCustomer``/``getEntity`` with an empty object during an outage;
    ``None`` reads env ``AUTUMN_FAIL_OPEN`` (or ``FAIL_OPEN``) as the SDK does (default on)."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Larger request bodies are answered 413 without being parsed (adapters read at most one byte more)."""

    @property
    def normalized_prefix(self) -> str:
        """``/api/autumn`` form: one leading slash, no trailing slash (``""`` for the root)."""
        stripped = self.path_prefix.strip("/")
        return f"/{stripped}" if stripped else ""


@dataclass(frozen=True)
class IncomingRequest:
    """The parts of an HTTP request the pipeline reads; adapters fill it from their request."""

    method: str
    subpath: str
    """The path after the handler's prefix, e.g. ``"/attach"``."""
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    """Request headers; keys in any case."""

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True)
class NeedIdentity:
    """Effect: call the app's ``identify(request)`` and send back what it returned."""


@dataclass(frozen=True)
class CallAutumn:
    """Effect: perform ``operation`` with the snake_case API ``body`` and send back the result."""

    operation: Operation
    body: dict[str, Any]


Effect = NeedIdentity | CallAutumn
Pipeline = Generator[Effect, Any, HandlerResponse]


def _without_protected(body: Mapping[str, Any], protected: frozenset[str]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in protected}


def _js_string(value: str | None) -> str:
    """How a JavaScript template literal prints the id (``null`` for a missing one)."""
    return "null" if value is None else value


class HandlerCore:
    """The contract of autumn-js's ``autumnHandler``, independent of any web framework."""

    def __init__(self, settings: HandlerSettings, *, has_injected_client: bool = False) -> None:
        self.settings = settings
        self._has_injected_client = has_injected_client

    def secret_key(self) -> str | None:
        """The key for a new client: the setting, else env ``AUTUMN_SECRET_KEY`` (read per request)."""
        key = self.settings.secret_key or os.environ.get("AUTUMN_SECRET_KEY", "")
        return key.strip() or None

    def _cors_headers(self, request: IncomingRequest) -> dict[str, str]:
        cors = self.settings.cors
        return cors.response_headers(request.header("origin")) if cors is not None else {}

    def pipeline(self, request: IncomingRequest) -> Pipeline:
        """Handle one request; yields effects, returns the response (CORS headers included)."""
        cors = self.settings.cors
        if cors is not None and request.method.upper() == "OPTIONS":
            return cors.preflight(request.headers)
        try:
            response = yield from self._handle(request)
        except Exception:
            # A bug here or in the SDK's conversions: logged, never shown to the browser.
            logger.exception("autumn_handlers: unexpected error on %s %r", request.method, request.subpath)
            response = error_response(500, INTERNAL_ERROR_MESSAGE, INTERNAL_ERROR)
        return response.with_headers(self._cors_headers(request))

    def _handle(self, request: IncomingRequest) -> Pipeline:
        if not self._has_injected_client and self.secret_key() is None:
            return error_response(500, MISSING_SECRET_KEY_MESSAGE, "no_secret_key")

        route = match_route(request.subpath)
        if route is None or request.method.upper() != "POST":
            return error_response(404, "Not found", "not_found")

        try:
            body = parse_body(
                request.body,
                content_type=request.header("content-type"),
                content_length=request.header("content-length"),
                max_bytes=self.settings.max_body_bytes,
            )
        except InvalidInput as invalid:
            return error_response(invalid.status, invalid.message, invalid.code)

        try:
            identity = normalize_identity((yield NeedIdentity()))
        except Exception:
            logger.exception("autumn_handlers: identify failed on %s", route.name)
            return error_response(500, IDENTIFY_FAILED_MESSAGE, IDENTIFY_FAILED)

        if route.name == GET_OR_CREATE_CUSTOMER:
            prepared = self._prepare_get_or_create(route, body, identity)
        else:
            prepared = self._prepare(route, body, identity)
        if isinstance(prepared, HandlerResponse):
            return prepared

        try:
            result = yield CallAutumn(route.operation, prepared)
        except AutumnError as exc:
            return self._upstream_failure(route, exc)
        except Exception:
            logger.exception("autumn_handlers: %s failed", route.name)
            return error_response(500, INTERNAL_ERROR_MESSAGE, INTERNAL_ERROR)
        answer = self._to_browser(result)
        try:
            return json_response(answer)
        except ValueError:
            logger.exception("autumn_handlers: %s: Autumn's answer is not strict JSON", route.name)
            return error_response(502, UNREADABLE_ANSWER_MESSAGE, AUTUMN_API_ERROR)

    def _prepare(
        self, route: HandlerRoute, body: Mapping[str, Any], identity: Identity
    ) -> dict[str, Any] | HandlerResponse:
        if route.requires_customer and not identity.is_known:
            return error_response(
                401,
                f"customerId returned from identify function is {_js_string(identity.customer_id)}",
                "no_customer_id",
            )
        args = _without_protected(body, route.protected_fields)
        if identity.is_known:
            args["customerId"] = identity.customer_id
        return self._browser_args(route, args)

    def _prepare_get_or_create(
        self, route: HandlerRoute, body: Mapping[str, Any], identity: Identity
    ) -> dict[str, Any] | HandlerResponse:
        args = _without_protected(body, route.protected_fields)
        if not identity.is_known:
            if args.get("errorOnNotFound") is False:
                return no_content()
            return error_response(401, "customerId not found", "no_customer_id")
        requested = args.get("expand")
        expand = (
            [item for item in requested if item != FORCED_CUSTOMER_EXPAND]
            if isinstance(requested, list)
            else []
        )
        args["expand"] = [*expand, FORCED_CUSTOMER_EXPAND]
        args["customerId"] = identity.customer_id
        from_browser = self._browser_args(route, args)
        if isinstance(from_browser, HandlerResponse):
            return from_browser
        from_identify = self._customer_data(route, identity)
        if isinstance(from_identify, HandlerResponse):
            return from_identify
        # The browser's values win on overlap, as in autumn-js (protected keys are already gone).
        return {**from_identify, **from_browser}

    def _customer_data(self, route: HandlerRoute, identity: Identity) -> dict[str, Any] | HandlerResponse:
        model = route.operation.params_model
        if model is None or not identity.customer_data:
            return {}
        try:
            converted = server_to_api(model, {**identity.customer_data, "customer_id": identity.customer_id})
        except ValidationError as exc:
            logger.error("autumn_handlers: the customer data identify returned is invalid: %s", exc)
            return error_response(500, IDENTIFY_FAILED_MESSAGE, IDENTIFY_FAILED)
        return {key: value for key, value in converted.items() if key in CUSTOMER_DATA_FIELDS}

    def _browser_args(self, route: HandlerRoute, args: Mapping[str, Any]) -> dict[str, Any] | HandlerResponse:
        model = route.operation.params_model
        if model is None:
            return {}
        try:
            converted = browser_to_api(model, args)
            check_api_values(converted)
        except ValidationError as exc:
            return error_response(400, describe_validation_error(exc), INVALID_INPUTS)
        except InvalidInput as invalid:
            return error_response(invalid.status, invalid.message, invalid.code)
        return converted

    def _to_browser(self, result: object) -> Any:
        if isinstance(result, BaseModel):
            return model_to_browser(result)
        return to_jsonable_python(result)

    def _upstream_failure(self, route: HandlerRoute, exc: AutumnError) -> HandlerResponse:
        """The browser's answer to a failed SDK call; the SDK's own message (URL, host, raw body)
        is logged, and only Autumn's JSON message of a 4xx is passed on, as autumn-js does."""
        if isinstance(exc, ResponseValidationError):
            logger.error("autumn_handlers: %s: %s", route.name, exc, exc_info=exc)
            return error_response(502, UNREADABLE_ANSWER_MESSAGE, AUTUMN_API_ERROR)
        outage = isinstance(exc, APIConnectionError) or (exc.status_code or 0) >= 500
        if outage and route.fail_open and fail_open_enabled(self.settings.fail_open):
            logger.warning("autumn_handlers: %s failed open after: %s", route.name, exc)
            return json_response(self._empty_answer(route))
        if isinstance(exc, APIConnectionError):
            logger.warning("autumn_handlers: %s: %s", route.name, exc)
            failure = TIMEOUT_MESSAGE if isinstance(exc, APITimeoutError) else UNREACHABLE_MESSAGE
            return error_response(NETWORK_FAILURE_STATUS, failure, AUTUMN_API_ERROR)
        if isinstance(exc, PoolTimeoutError):  # this app's own client saturated, not Autumn down
            logger.warning("autumn_handlers: %s: %s", route.name, exc)
            return error_response(503, CLIENT_BUSY_MESSAGE, CLIENT_BUSY)
        if exc.status_code is None:
            logger.error("autumn_handlers: %s failed: %s", route.name, exc, exc_info=exc)
            return error_response(500, INTERNAL_ERROR_MESSAGE, INTERNAL_ERROR)
        status = exc.status_code if exc.status_code >= 400 else 502
        body = exc.body if isinstance(exc.body, Mapping) else {}
        message = body.get("message") if isinstance(body.get("message"), str) else None
        code = body.get("code") if isinstance(body.get("code"), str) else None
        if status >= 500 or not message:
            logger.warning("autumn_handlers: %s: %s", route.name, exc)
            message = f"Autumn answered HTTP {exc.status_code}"
        return error_response(status, message, code or AUTUMN_API_ERROR)

    def _empty_answer(self, route: HandlerRoute) -> Any:
        # autumn-js answers with the same sentinel objects the SDK returns when it fails open.
        empty = fail_open_default(route.operation.qualified_name)
        model = route.operation.response_model
        if model is None:
            return empty
        return model_to_browser(model.model_validate(empty))
