"""The request pipeline, written once for sync and async (sans-IO).

:func:`plan_call` is a generator that performs one SDK call as a sequence of *steps*: it yields
:class:`SendRequest` ("send this and give me the outcome") and :class:`Sleep` ("wait this long"),
and returns the parsed result or raises the SDK error. It never touches the network or the clock's
sleep itself, so the same code serves both clients; :mod:`autumn_sdk._drivers` holds the two tiny
loops (sync and async) that execute the steps.

One call = validate the body through ``op.params_model``, build headers (auth, API version,
User-Agent, idempotency key), send, retry what is safe to retry with backoff (honouring
``Retry-After``), then parse the success body, map the error, or fail open.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_snake

from ._config import ClientConfig
from ._fail_open import fail_open_result, supports_fail_open
from ._meta import ResponseInfo, attach_response_info
from ._operation import Operation
from ._resource import NOT_GIVEN, RequestOptions
from ._response import current_capture
from ._retries import RetryPolicy, parse_retry_after
from .errors import (
    APIConnectionError,
    APITimeoutError,
    AutumnDefaultError,
    AutumnError,
    RateLimitError,
    ResponseValidationError,
    error_class_for_status,
)

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")

logger = logging.getLogger("autumn_sdk")

RETRYABLE_STATUSES = frozenset({408, 409, 429})
"""Besides every 5xx but 501. A 409 is retried only when it is not ``duplicate_idempotency_key``."""
_MAX_MESSAGE_CHARS = 500


@dataclass(frozen=True, slots=True)
class SendRequest:
    """Step: send this request and resume the plan with an :class:`Exchange`."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None
    params: dict[str, Any] | None
    timeout: httpx.Timeout


@dataclass(frozen=True, slots=True)
class Sleep:
    """Step: wait ``seconds`` and resume the plan with ``None``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Exchange:
    """What a driver reports back after a :class:`SendRequest`: a response, or the transport error."""

    request: httpx.Request
    response: httpx.Response | None = None
    error: httpx.RequestError | None = None


Step = SendRequest | Sleep
CallPlan = Generator[Step, Exchange | None, R]


def is_read_only(op: Operation, params: Mapping[str, Any]) -> bool:
    """Whether the call cannot change state, so repeating it is always safe.

    Reads are ``*.get``, ``*.list*``, ``preview_*``, ``events.aggregate``, HTTP GET/PUT/DELETE
    (idempotent by definition) and ``check`` unless it sends an event or takes a lock.
    """
    if op.http_method in ("GET", "PUT", "DELETE"):
        return True
    if op.group is None and op.name == "check":
        return not params.get("send_event") and params.get("lock") is None
    name = op.name
    return (
        name in ("get", "list", "aggregate")
        or name.startswith(("list_", "preview_"))
        or (name.startswith("get_") and name != "get_or_create")
    )


def encode_params(op: Operation, body: Mapping[str, Any] | BaseModel | None) -> dict[str, Any]:
    """Validate the caller's arguments through ``op.params_model``; return the JSON-ready wire dict.

    Accepts generated models or plain mappings at any depth; ``NOT_GIVEN`` entries are dropped and
    only the fields the caller set are sent. Invalid input raises ``pydantic.ValidationError`` here,
    before anything goes on the wire.
    """
    if body is None:
        data: dict[str, Any] = {}
    elif isinstance(body, BaseModel):
        data = body.model_dump(exclude_unset=True, by_alias=False)
    else:
        data = {key: value for key, value in body.items() if value is not NOT_GIVEN}
    if op.params_model is None:
        return data
    return op.params_model.model_validate(data).model_dump(mode="json", exclude_unset=True, by_alias=False)


def _header_lookup(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def resolve_idempotency_key(
    op: Operation, params: Mapping[str, Any], options: RequestOptions
) -> str | None:
    """The key for this call: the caller's, else a fresh uuid4 for mutating calls, else none.

    ``idempotency_key=None`` passed explicitly opts out (and with it, out of retries).
    """
    extra = options.get("http_headers") or {}
    from_headers = _header_lookup(extra, "Idempotency-Key")
    if from_headers:
        return from_headers
    if "idempotency_key" in options:
        return options["idempotency_key"]
    if is_read_only(op, params):
        return None
    return str(uuid.uuid4())


def build_headers(
    config: ClientConfig, options: RequestOptions, idempotency_key: str | None, *, has_body: bool = True
) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {config.bearer_token()}",
        "x-api-version": config.api_version,
        "User-Agent": config.user_agent,
        "Accept": "application/json",
    }
    if has_body:
        headers["Content-Type"] = "application/json"
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    extra: dict[str, str] = {**config.default_headers, **(options.get("http_headers") or {})}
    if extra:
        lowered = {key.lower(): key for key in headers}
        for key, value in extra.items():
            headers.pop(lowered.get(key.lower(), key), None)
            headers[key] = value
    return headers


def _describe(op: Operation, request: httpx.Request) -> str:
    return f"{request.method} {request.url.path}"


def _parse_body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text


def http_error(op: Operation, exchange: Exchange) -> AutumnDefaultError:
    """Map an error response to the most specific :class:`AutumnDefaultError` subclass."""
    response = exchange.response
    assert response is not None
    body = _parse_body(response)
    code: str | None = None
    message: str | None = None
    if isinstance(body, dict):
        raw_code = body.get("code")
        code = str(raw_code) if raw_code is not None else None
        raw_message = body.get("message")
        message = str(raw_message) if raw_message is not None else None
    elif isinstance(body, str) and body.strip():
        message = body.strip()[:_MAX_MESSAGE_CHARS]
    if not message:
        message = response.reason_phrase or "HTTP error"
    prefix = f"{code}: " if code else ""
    text = f"{prefix}{message} (HTTP {response.status_code}, {_describe(op, exchange.request)})"
    error_class = error_class_for_status(response.status_code)
    fields: dict[str, Any] = {
        "status_code": response.status_code,
        "code": code,
        "body": body,
        "request": exchange.request,
        "response": response,
    }
    if error_class is RateLimitError:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return RateLimitError(text, retry_after=retry_after, **fields)
    return error_class(text, **fields)


def connection_error(op: Operation, exchange: Exchange) -> APIConnectionError:
    error = exchange.error
    where = _describe(op, exchange.request)
    if isinstance(error, httpx.TimeoutException):
        limits = exchange.request.extensions.get("timeout") or {}
        limit = limits.get("read") if isinstance(limits, dict) else None
        within = f" within {limit:g} s" if isinstance(limit, (int, float)) else ""
        return APITimeoutError(
            f"Autumn did not answer{within} ({type(error).__name__}, {where})", request=exchange.request
        )
    return APIConnectionError(
        f"Could not reach Autumn at {exchange.request.url.host}: {error} ({where})", request=exchange.request
    )


def is_retryable_status(error: AutumnDefaultError) -> bool:
    """Transient failures only: 408/429, 409 unless the idempotency key was reused, 5xx except 501."""
    status = error.status_code
    if status == 409:
        return error.code != "duplicate_idempotency_key"
    if status == 501:  # Not Implemented: asking again cannot help
        return False
    return status in RETRYABLE_STATUSES or status >= 500


def parse_success(op: Operation, exchange: Exchange, cast_to: type[T]) -> T:
    response = exchange.response
    assert response is not None
    try:
        data = response.json() if response.content else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResponseValidationError(
            f"Autumn answered {op.qualified_name} with a body that is not JSON "
            f"(HTTP {response.status_code}, {_describe(op, exchange.request)})",
            status_code=response.status_code,
            body=response.text,
            request=exchange.request,
            response=response,
        ) from exc
    try:
        result = cast_to.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(to_snake(part) if isinstance(part, str) else str(part) for part in first["loc"])
        raise ResponseValidationError(
            f"Autumn's answer to {op.qualified_name} does not match {cast_to.__name__}: "
            f"{exc.error_count()} error(s), first at {where or '<root>'}: {first['msg']} "
            f"(HTTP {response.status_code}, {_describe(op, exchange.request)})",
            status_code=response.status_code,
            body=data,
            request=exchange.request,
            response=response,
        ) from exc
    if response.status_code == 202:
        attach_response_info(result, ResponseInfo(status_code=202))
    return result


def _debug(config: ClientConfig, message: str) -> None:
    logger.debug(message)
    if config.debug_logger is not None:
        config.debug_logger.debug(message)


def plan_call(
    config: ClientConfig,
    op: Operation,
    body: Mapping[str, Any] | BaseModel | None,
    options: RequestOptions,
    cast_to: type[T],
) -> CallPlan[T]:
    """Perform one SDK call as steps (see module docs); returns the result or raises AutumnError."""
    capture = current_capture()
    params = encode_params(op, body)
    idempotency_key = resolve_idempotency_key(op, params, options)
    may_repeat = idempotency_key is not None or is_read_only(op, params)
    policy = RetryPolicy.resolve(options.get("retries", config.retries))
    base_url = (options.get("server_url") or config.base_url).rstrip("/")
    url = f"{base_url}{op.path}"
    is_query = op.http_method == "GET"
    content = None if is_query else json.dumps(params, separators=(",", ":")).encode()
    send = SendRequest(
        method=op.http_method,
        url=url,
        headers=build_headers(config, options, idempotency_key, has_body=not is_query),
        content=content,
        params=params if is_query and params else None,
        timeout=config.timeout_for(op, options.get("timeout_ms")),
    )
    debugging = config.debug_logger is not None or logger.isEnabledFor(logging.DEBUG)
    started = time.monotonic()
    retry_index = 0
    while True:
        sent_at = time.monotonic()
        exchange = yield send
        assert exchange is not None
        elapsed_ms = (time.monotonic() - sent_at) * 1000
        failure: AutumnError
        retry_after: float | None = None
        if exchange.response is not None:
            response = exchange.response
            if debugging:
                _debug(
                    config,
                    f"{op.http_method} {url} -> {response.status_code} in {elapsed_ms:.1f} ms "
                    f"(attempt {retry_index + 1})",
                )
            if capture is not None:
                capture.response = response
            if response.is_success:
                return parse_success(op, exchange, cast_to)
            failure = http_error(op, exchange)
            assert isinstance(failure, AutumnDefaultError)
            retryable = may_repeat and is_retryable_status(failure)
            retry_after = parse_retry_after(response.headers.get("retry-after"))
        else:
            if debugging:
                _debug(
                    config,
                    f"{op.http_method} {url} -> {type(exchange.error).__name__} in {elapsed_ms:.1f} ms "
                    f"(attempt {retry_index + 1})",
                )
            failure = connection_error(op, exchange)
            retryable = may_repeat and policy.retry_connection_errors
        if retryable:
            delay = policy.next_delay(retry_index, retry_after, time.monotonic() - started)
            if delay is not None:
                logger.info(
                    "Retrying %s in %.2f s after %s (retry %d)",
                    op.qualified_name,
                    delay,
                    failure.status_code or type(failure).__name__,
                    retry_index + 1,
                )
                yield Sleep(delay)
                retry_index += 1
                continue
        cause: BaseException | None = exchange.error
        outage = exchange.response is None or (failure.status_code or 0) >= 500
        if outage and config.fail_open and capture is None and supports_fail_open(op):
            if cause is not None:
                failure.__cause__ = cause
            return fail_open_result(op, params, cast_to, failure)
        raise failure from cause
