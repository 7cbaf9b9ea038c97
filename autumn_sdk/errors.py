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
    "RateLimitError",
    "ResponseValidationError",
    "WebhookVerificationError",
]


class AutumnError(Exception):
    """Base of every SDK error; HTTP details are ``None`` when no response arrived."""

    message: str
    status_code: int | None
    code: str | None
    body: Any
    """The parsed JSON error body, the raw text when it is not JSON, or ``None``."""
    request: httpx.Request | None
    response: httpx.Response | None
    headers: Mapping[str, str]

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

    @property
    def raw_response(self) -> httpx.Response | None:
        """The official SDK's name for :attr:`response`."""
        return self.response

    def __str__(self) -> str:
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
    """409: the resource already exists, or the idempotency key was reused with another body."""


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
