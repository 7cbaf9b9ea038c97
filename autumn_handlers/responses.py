"""What the handler answers: a status and an optional JSON body, plus the error bodies autumn-js reads.

The React client uses an error body as-is only when it carries all three of ``message``, ``code``
and ``statusCode``, so every error built here has them, and the HTTP status always equals
``statusCode``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "NETWORK_FAILURE_STATUS",
    "HandlerResponse",
    "error_response",
    "json_response",
    "no_content",
]

NETWORK_FAILURE_STATUS = 555
"""Status autumn-js gives a request whose upstream call never got an answer."""


@dataclass(frozen=True)
class HandlerResponse:
    """A framework-neutral response; adapters copy it into their own response type."""

    status: int
    body: Any = None
    """JSON-able data, or ``None`` for an empty body (only with 204)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    encoded: bytes | None = field(default=None, repr=False, compare=False)
    """``body`` already encoded (by :func:`json_response`)."""

    @property
    def content(self) -> bytes:
        """The encoded body (empty for 204)."""
        if self.encoded is not None:
            return self.encoded
        if self.body is None and self.status == 204:
            return b""
        return encode_json(self.body)

    @property
    def media_type(self) -> str | None:
        return None if self.status == 204 else "application/json"

    def with_headers(self, extra: Mapping[str, str]) -> HandlerResponse:
        """The same response with more headers (CORS)."""
        if not extra:
            return self
        return HandlerResponse(self.status, self.body, {**self.headers, **extra}, self.encoded)


def encode_json(body: Any) -> bytes:
    """Strict JSON (``ValueError`` for NaN or Infinity, which the hooks' ``response.json()`` refuses)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def json_response(body: Any, status: int = 200) -> HandlerResponse:
    """Encoded at once, so a body strict JSON cannot hold raises ``ValueError`` here, not in an adapter."""
    return HandlerResponse(status=status, body=body, encoded=encode_json(body))


def no_content() -> HandlerResponse:
    return HandlerResponse(status=204)


def error_response(status: int, message: str, code: str) -> HandlerResponse:
    """``{message, code, statusCode}`` with the HTTP status set to ``statusCode``."""
    return HandlerResponse(
        status=status,
        body={"message": message or "Internal server error", "code": code, "statusCode": status},
    )
