"""The request pipeline, written once for sync and async (sans-IO).

:func:`plan_call` is a generator that performs one SDK call as a sequence of *steps*: it yields
:class:`SendRequest` ("send this and give me the outcome") and :class:`Sleep` ("wait this long"),
and returns the parsed result or raises the SDK error. It never touches the network or the clock's
sleep itself, so the same code serves both clients; :mod:`autumn_sdk._drivers` holds the two tiny
loops (sync and async) that execute the steps.

One call = validate the body through ``op.params_model``, build headers (auth, API version,
User-Agent, idempotency key), send, retry what is safe to retry with backoff (honouring
``Retry-After``), then parse the success body, map the error, or fail open.

The retry rules, in one place:

* retried (with backoff, up to the retry setting): connection errors and timeouts, 408, 429 and 5xx
  but 501, and only for calls that may be repeated (read-only, or carrying an idempotency key);
* never retried: every other 4xx, 409 included: a conflict is an answer (``duplicate_feature_id``,
  ``plan_already_attached``), so it surfaces with the server's own code after one attempt;
* waited for: 409 ``idempotency_key_in_flight`` (the same key's first request is still running on
  the server), retried after its ``Retry-After`` (at most :data:`IN_FLIGHT_WAIT_CAP_S`); these waits
  do not count as retries;
* a retry reuses the call's key, so a server that stores responses (the reference server) answers
  it with the first attempt's response; a server that does not (Autumn's cloud) answers 409
  ``duplicate_idempotency_key``, which, on the SDK's own key after an attempt that may have reached
  the server, raises :class:`~autumn_sdk.errors.PossiblyAppliedError`;
* everything, attempts and waits, fits in the call's total budget (``total_timeout_ms``): an attempt
  gets at most what is left of it, and a wait that would overrun it is not taken. Waiting for a free
  connection of the client's own pool counts against that budget only, never against an attempt's
  timeout, and running out of it raises :class:`~autumn_sdk.errors.PoolTimeoutError`, never a
  fail-open answer: Autumn was not even asked.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
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
from ._generated.models import non_nullable_fields
from ._meta import ResponseInfo, attach_response_info
from ._model import AutumnModel
from ._operation import Operation
from ._resource import NOT_GIVEN, RequestOptions
from ._response import current_capture
from ._retries import RetryPolicy, parse_retry_after
from .errors import (
    APIConnectionError,
    APITimeoutError,
    AutumnDefaultError,
    AutumnError,
    PoolTimeoutError,
    PossiblyAppliedError,
    RateLimitError,
    ResponseValidationError,
    error_class_for_status,
)

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")

logger = logging.getLogger("autumn_sdk")

RETRYABLE_STATUSES = frozenset({408, 429})
"""Besides every 5xx but 501. No other 4xx is retried (a 409 in flight is waited for, not retried)."""
DUPLICATE_KEY_CODE = "duplicate_idempotency_key"
IN_FLIGHT_CODE = "idempotency_key_in_flight"
IN_FLIGHT_WAIT_S = 1.0
"""Wait before asking again about a key in flight when the server's 409 names no ``Retry-After``."""
IN_FLIGHT_WAIT_CAP_S = 5.0
"""Longest wait for a key in flight, whatever ``Retry-After`` says (the total budget bounds the rest)."""
MAX_IN_FLIGHT_WAITS = 100
"""Safety bound on waits for one key in flight (the total budget ends them first in practice)."""
_MAX_MESSAGE_CHARS = 500
_NOT_SENT_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)
"""Transport errors raised before the request left this process: the server cannot have seen it."""

monotonic = time.monotonic
"""The clock budgets are measured with (a module attribute so tests can replace it)."""


class ClientState:
    """What one client remembers across calls: the servers it has already warned are unreachable."""

    def __init__(self) -> None:
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def first_unreachable(self, base_url: str) -> bool:
        """True the first time ``base_url`` is reported unreachable for this client, then False."""
        with self._lock:
            if base_url in self._warned:
                return False
            self._warned.add(base_url)
            return True


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

    The operation's declared policy (``op.read_only``, from ``codegen/policy.py``): reads such as
    ``*.get``, ``*.list*``, ``preview_*``, HTTP GET/PUT/DELETE, and ``check`` unless it sends an
    event or takes a lock (``op.writes_when``).
    """
    if not op.read_only:
        return False
    return all(params.get(name) is None or params.get(name) is False for name in op.writes_when)


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
    if op.body_style == "items":
        return {ITEMS_KEY: _encode_items(op, op.params_model, data.get(ITEMS_KEY))}
    return _encode_one(op.params_model, data)


ITEMS_KEY = "request"
"""Where an array body (``body_style == "items"``) travels inside the SDK until it goes on the wire."""


def _encode_one(model: type[BaseModel], data: Any) -> dict[str, Any]:
    params = model.model_validate(data)
    return params.model_dump(mode="json", exclude_unset=True, by_alias=False, exclude=_unsent_nulls(params))


def _encode_items(op: Operation, model: type[BaseModel], items: Any) -> list[dict[str, Any]]:
    """Each item validated like a body of its own; the count checked against the spec's bounds."""
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"{op.qualified_name}() takes request=[...], a list of items")
    if len(items) < op.min_items or (op.max_items is not None and len(items) > op.max_items):
        most = "" if op.max_items is None else f" and at most {op.max_items}"
        raise ValueError(f"{op.qualified_name}() takes at least {op.min_items}{most} items; got {len(items)}")
    return [
        _encode_one(model, item.model_dump(exclude_unset=True) if isinstance(item, BaseModel) else item)
        for item in items
    ]


def wire_body(op: Operation, params: Mapping[str, Any]) -> Any:
    """The JSON document sent for ``params``: the list itself for an array body."""
    return params[ITEMS_KEY] if op.body_style == "items" else params


def _unsent_nulls(value: Any) -> Any:
    """What ``model_dump(exclude=...)`` leaves out: ``None`` given for a field the spec does not let
    be null means "not sent", as the official SDK treats it (the server answers 400 to a ``null``
    there); ``None`` for a nullable field (``plans.update(price=None)`` removes the price) is sent.
    """
    if isinstance(value, AutumnModel):
        refused = non_nullable_fields(type(value))
        plan: dict[Any, Any] = {}
        for name in value.model_fields_set:
            field = getattr(value, name)
            nested = True if field is None and name in refused else _unsent_nulls(field)
            if nested:
                plan[name] = nested
        return plan or None
    if isinstance(value, (list, tuple, dict)):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        plan = {key: nested for key, nested in ((k, _unsent_nulls(v)) for k, v in items) if nested}
        return plan or None
    return None


def _header_lookup(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def resolve_idempotency_key(
    op: Operation, params: Mapping[str, Any], options: RequestOptions
) -> tuple[str | None, bool]:
    """The key for this call and whether the SDK generated it: the caller's (header or
    ``idempotency_key=``), else a fresh uuid4 for mutating calls, else none.

    ``idempotency_key=None`` passed explicitly opts out (and with it, out of retries).
    """
    extra = options.get("http_headers") or {}
    from_headers = _header_lookup(extra, "Idempotency-Key")
    if from_headers:
        return from_headers, False
    if "idempotency_key" in options:
        return options["idempotency_key"], False
    if is_read_only(op, params):
        return None, False
    return str(uuid.uuid4()), True


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


def connection_error(
    op: Operation, exchange: Exchange, *, budget_s: float | None = None
) -> APIConnectionError | PoolTimeoutError:
    """The SDK error for a request that got no response (:class:`PoolTimeoutError` when it never
    left the client's pool); ``budget_s`` is given when the call's total budget, not the
    per-attempt timeout, cut the attempt short."""
    error = exchange.error
    where = _describe(op, exchange.request)
    limits = exchange.request.extensions.get("timeout") or {}
    if isinstance(error, httpx.PoolTimeout):
        pool = limits.get("pool") if isinstance(limits, dict) else None
        within = f" within {pool:g} s" if isinstance(pool, (int, float)) else ""
        return PoolTimeoutError(
            f"No connection of this client's pool became free{within} (the call's total budget); "
            f"nothing was sent to Autumn. The client is saturated by its own concurrent calls: give it "
            f"more connections (http_client=httpx.AsyncClient(limits=httpx.Limits(max_connections=...))), "
            f"a larger total_timeout_ms, or make fewer calls at once ({where})",
            request=exchange.request,
        )
    if isinstance(error, httpx.TimeoutException):
        limit = limits.get("read") if isinstance(limits, dict) else None
        within = f" within {limit:g} s" if isinstance(limit, (int, float)) else ""
        spent = f"; the call's total budget of {budget_s:g} s is spent" if budget_s is not None else ""
        return APITimeoutError(
            f"Autumn did not answer{within} ({type(error).__name__}, {where}){spent}",
            request=exchange.request,
        )
    return APIConnectionError(
        f"Could not reach Autumn at {exchange.request.url.host}: {error} ({where})", request=exchange.request
    )


def is_retryable_status(error: AutumnDefaultError) -> bool:
    """Transient failures only: 408, 429 and 5xx except 501. Every other 4xx is an answer."""
    status = error.status_code
    if status == 501:  # Not Implemented: asking again cannot help
        return False
    return status in RETRYABLE_STATUSES or status >= 500


def may_have_reached_server(exchange: Exchange) -> bool:
    """Whether the attempt may have been processed although it got no usable answer: a transport
    error after the request was sent (a timeout, a lost connection) or a 5xx (a gateway may answer
    it while the work commits behind it)."""
    if exchange.response is not None:
        return exchange.response.status_code >= 500
    return not isinstance(exchange.error, _NOT_SENT_ERRORS)


def possibly_applied(
    op: Operation, conflict: AutumnDefaultError, key: str, earlier: AutumnError
) -> PossiblyAppliedError:
    """The 409 of a retry whose own key was used by an earlier attempt that may have been applied."""
    assert conflict.request is not None
    still = "is still being processed" if conflict.code == IN_FLIGHT_CODE else "was received"
    text = (
        f"{conflict.code}: an earlier attempt of this {op.qualified_name} call failed without an answer "
        f"({type(earlier).__name__}: {earlier.message}) but {still} by Autumn, which now refuses its "
        f"idempotency key {key}: the first attempt may have been applied. Check the result (e.g. read "
        f"the customer or balance) before calling again (HTTP {conflict.status_code}, "
        f"{_describe(op, conflict.request)})"
    )
    return PossiblyAppliedError(
        text,
        idempotency_key=key,
        earlier_error=earlier,
        status_code=conflict.status_code,
        code=conflict.code,
        body=conflict.body,
        request=conflict.request,
        response=conflict.response,
    )


def attempt_timeout(per_attempt: httpx.Timeout, remaining_s: float) -> httpx.Timeout:
    """One attempt's httpx timeout: each phase capped by what is left of the total budget, and the
    wait for a pooled connection bounded by that budget alone."""

    def capped(limit: float | None) -> float:
        return remaining_s if limit is None else min(limit, remaining_s)

    return httpx.Timeout(
        connect=capped(per_attempt.connect),
        read=capped(per_attempt.read),
        write=capped(per_attempt.write),
        pool=remaining_s,
    )


def _unreachable_warning(base_url: str, source: str, error: BaseException, fail_open: bool) -> None:
    consequence = (
        "Every call to it fails, and check/track/customers.get_or_create/plans.list/entities.get "
        "fail open (check answers allowed=True)."
        if fail_open
        else "Every call to it raises APIConnectionError (fail-open is off)."
    )
    logger.warning(
        "Cannot reach the Autumn server at %s (%s: %s); that URL comes from %s. %s Point the client "
        "at your Autumn server with Autumn(server_url=...) / AsyncAutumn(server_url=...) or the "
        "AUTUMN_URL environment variable. (Logged once per client.)",
        base_url,
        type(error).__name__,
        error,
        source,
        consequence,
    )


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
    state: ClientState | None = None,
) -> CallPlan[T]:
    """Perform one SDK call as steps (see module docs); returns the result or raises AutumnError.

    ``state`` is the client's memory across calls (the once-per-client unreachable warning).
    """
    capture = current_capture()
    params = encode_params(op, body)
    idempotency_key, generated_key = resolve_idempotency_key(op, params, options)
    may_repeat = idempotency_key is not None or is_read_only(op, params)
    policy = RetryPolicy.resolve(options.get("retries", config.retries))
    call_url = options.get("server_url")
    base_url = (call_url or config.base_url).rstrip("/")
    url = f"{base_url}{op.path}"
    is_query = op.http_method == "GET"
    content = None if is_query else json.dumps(wire_body(op, params), separators=(",", ":")).encode()
    per_attempt = config.timeout_for(op, options.get("timeout_ms"))
    budget_s = config.total_timeout_for(per_attempt, options.get("total_timeout_ms"))
    send = SendRequest(
        method=op.http_method,
        url=url,
        headers=build_headers(config, options, idempotency_key, has_body=not is_query),
        content=content,
        params=params if is_query and params else None,
        timeout=per_attempt,
    )
    debugging = config.debug_logger is not None or logger.isEnabledFor(logging.DEBUG)
    started = monotonic()
    deadline = started + budget_s
    retry_index = 0
    in_flight_waits = 0
    attempts = 0
    earlier: AutumnError | None = None  # an earlier attempt's failure that may have reached the server
    while True:
        remaining = deadline - monotonic()
        timeout = attempt_timeout(per_attempt, max(remaining, 0.001))
        cut_by_budget = per_attempt.read is None or timeout.read != per_attempt.read
        attempts += 1
        sent_at = monotonic()
        exchange = yield dataclasses.replace(send, timeout=timeout)
        assert exchange is not None
        elapsed_ms = (monotonic() - sent_at) * 1000
        failure: AutumnError
        retry_after: float | None = None
        if exchange.response is not None:
            response = exchange.response
            if debugging:
                _debug(
                    config,
                    f"{op.http_method} {url} -> {response.status_code} in {elapsed_ms:.1f} ms "
                    f"(attempt {attempts})",
                )
            if capture is not None:
                capture.response = response
            if response.is_success:
                return parse_success(op, exchange, cast_to)
            failure = http_error(op, exchange)
            assert isinstance(failure, AutumnDefaultError)
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if failure.status_code == 409 and failure.code == IN_FLIGHT_CODE and may_repeat:
                wait = min(IN_FLIGHT_WAIT_S if retry_after is None else retry_after, IN_FLIGHT_WAIT_CAP_S)
                if in_flight_waits < MAX_IN_FLIGHT_WAITS and monotonic() + wait < deadline:
                    logger.info(
                        "%s: idempotency key still in flight on the server; asking again in %.2f s",
                        op.qualified_name,
                        wait,
                    )
                    yield Sleep(wait)
                    in_flight_waits += 1
                    continue
            if (
                failure.status_code == 409
                and failure.code in (DUPLICATE_KEY_CODE, IN_FLIGHT_CODE)
                and generated_key
                and earlier is not None
            ):
                assert idempotency_key is not None
                raise possibly_applied(op, failure, idempotency_key, earlier)
            retryable = may_repeat and is_retryable_status(failure)
        else:
            if debugging:
                _debug(
                    config,
                    f"{op.http_method} {url} -> {type(exchange.error).__name__} in {elapsed_ms:.1f} ms "
                    f"(attempt {attempts})",
                )
            failure = connection_error(op, exchange, budget_s=budget_s if cut_by_budget else None)
            if isinstance(exchange.error, httpx.ConnectError) and (
                state is None or state.first_unreachable(base_url)
            ):
                source = "the call's server_url=" if call_url else config.base_url_source
                _unreachable_warning(base_url, source, exchange.error, config.fail_open)
            if isinstance(failure, PoolTimeoutError):
                raise failure from exchange.error  # our own saturation, not an outage: never fail open
            retryable = may_repeat and policy.retry_connection_errors
        if may_have_reached_server(exchange):
            earlier = failure
        if retryable:
            delay = policy.next_delay(retry_index, retry_after, monotonic() - started)
            if delay is not None and monotonic() + delay >= deadline:
                logger.info(
                    "Not retrying %s: a wait of %.2f s would overrun the call's total budget of %g s",
                    op.qualified_name,
                    delay,
                    budget_s,
                )
            elif delay is not None:
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
