"""Exceptions raised by the SDK.

Every exception is an :class:`AutumnError`. Every HTTP error response is an
:class:`AutumnDefaultError` (the official SDK's only HTTP error class, kept so existing
``except AutumnDefaultError`` code works) and, on top of that, a subclass named after the cause
(``NotFoundError``, ``RateLimitError``, ...) with Autumn's parsed ``code``. Network failures are
:class:`APIConnectionError` / :class:`APITimeoutError` with the ``httpx`` exception as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AuthenticationError",
    "AutumnDefaultError",
    "AutumnError",
    "BadRequestError",
    "ConflictError",
    "InternalServerError",
    "MissingSecretKeyError",
    "NotFoundError",
    "PermissionDeniedError",
    "PoolTimeoutError",
    "PossiblyAppliedError",
    "RateLimitError",
    "ResponseValidationError",
    "WebhookVerificationError",
]


REQUEST_ID_HEADER = "x-request-id"


class AutumnError(Exception):
    """Base of every SDK error; HTTP details are ``None`` when no response arrived.

    ``request_id`` is the server's ``x-request-id`` for the response (quote it when asking Autumn
    for help); it is part of ``str(error)`` whenever the server sent one.
    """

    message: str
    status_code: int | None
    code: str | None
    body: Any
    """The parsed JSON error body, the raw text when it is not JSON, or ``None``."""
    request: httpx.Request | None
    response: httpx.Response | None
    headers: Mapping[str, str]
    request_id: str | None

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        body: Any = None,
        request: httpx.Request | None = None,
        response: httpx.Response | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.body = body
        self.request = request
        self.response = response
        if headers is None:
            headers = response.headers if response is not None else {}
        self.headers = headers
        if request_id is None and response is not None:
            request_id = response.headers.get(REQUEST_ID_HEADER) or None
        self.request_id = request_id

    @property
    def raw_response(self) -> httpx.Response | None:
        """The official SDK's name for :attr:`response`."""
        return self.response

    def __str__(self) -> str:
        if self.request_id and self.request_id not in self.message:
            return f"{self.message} [request_id {self.request_id}]"
        return self.message


class MissingSecretKeyError(AutumnError):
    """No secret key was passed and ``AUTUMN_SECRET_KEY`` is not set."""


class AutumnDefaultError(AutumnError):
    """The API answered with an HTTP error status (4xx/5xx)."""

    status_code: int


class BadRequestError(AutumnDefaultError):
    """400 or 422: the request was rejected as invalid."""


class AuthenticationError(AutumnDefaultError):
    """401: the secret key is missing, malformed or revoked."""


class PermissionDeniedError(AutumnDefaultError):
    """403: the key may not perform this operation."""


class NotFoundError(AutumnDefaultError):
    """404: the customer, plan, feature or entity does not exist."""


class ConflictError(AutumnDefaultError):
    """409: the resource already exists (``duplicate_feature_id``, ``plan_already_attached``...), or
    the idempotency key was already used (``duplicate_idempotency_key``)."""


class PossiblyAppliedError(ConflictError):
    """An earlier attempt of this call may have been applied; check before calling again.

    Raised instead of a plain 409 ``duplicate_idempotency_key`` when the SDK's own generated
    ``Idempotency-Key`` is refused as already used after an earlier attempt of the same call failed
    without a usable answer (a timeout, a connection lost after the request was sent, a 5xx from a
    gateway). The only request that can have used that key is that earlier attempt, so the server
    received it and may have done the work; a server that replays stored responses (the reference
    server) answers the retry with the first attempt's response instead. ``code`` stays the
    server's (``duplicate_idempotency_key``); ``earlier_error`` is what the earlier attempt got.
    """

    def __init__(
        self,
        message: str,
        *,
        idempotency_key: str,
        earlier_error: AutumnError,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.idempotency_key = idempotency_key
        self.earlier_error = earlier_error


class RateLimitError(AutumnDefaultError):
    """429: too many requests; ``retry_after`` is the wait the server asked for, in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InternalServerError(AutumnDefaultError):
    """5xx: Autumn failed; the call was retried according to the retry settings first."""


class APIConnectionError(AutumnError):
    """The request never got a response (DNS, refused, reset); ``__cause__`` is the httpx error."""


class APITimeoutError(APIConnectionError):
    """The request timed out; ``__cause__`` is the ``httpx.TimeoutException``."""


class PoolTimeoutError(AutumnError):
    """No connection of this client's own pool became free within the call's total time budget.

    Nothing was sent and Autumn is not known to be down: the client is saturated by its own
    concurrent calls. So it is deliberately not an :class:`APIConnectionError` (code that treats
    those as an outage, as fail-open does, never mistakes it for one) and it never fails open. Give
    the client more connections (an ``httpx.AsyncClient(limits=httpx.Limits(max_connections=...))``
    as ``http_client=``), a larger ``total_timeout_ms``, or make fewer calls at once.
    ``__cause__`` is the ``httpx.PoolTimeout``.
    """


class ResponseValidationError(AutumnError):
    """A success response did not match the operation's model; ``__cause__`` is the pydantic error."""

    @property
    def cause(self) -> BaseException | None:
        """The official SDK's name for the underlying validation error."""
        return self.__cause__


class WebhookVerificationError(AutumnError):
    """A webhook's signature, timestamp or payload could not be verified."""


_STATUS_CLASSES: dict[int, type[AutumnDefaultError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
}


def error_class_for_status(status_code: int) -> type[AutumnDefaultError]:
    """The most specific exception class for an HTTP error status."""
    if status_code >= 500:
        return InternalServerError
    return _STATUS_CLASSES.get(status_code, AutumnDefaultError)
