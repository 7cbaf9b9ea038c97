"""A refused API request in Autumn's error shape: ``{message, code, env}``, a rate limit's 429 with
``Retry-After``, and the codes the platform operations answer with.

The dispatcher, the hot paths and the app's 404/405 handler all answer refusals through here, so every
refusal names the environment of the caller's key the same way.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from reference_server.api.request_guard import platform_error_code
from reference_server.errors import ApiError
from reference_server.store.tenancy import env_of_key

Answer = tuple[int, Any, dict[str, str]]
"""(status, JSON value, extra headers): a request's answer before it is encoded."""

Sent = tuple[int, bytes, dict[str, str]]
"""(status, JSON body, extra headers): a request's answer as it is sent."""


class RateLimited(Exception):
    """The caller's rate limit is spent; ``wait`` seconds until it may try again."""

    def __init__(self, wait: float) -> None:
        self.wait = wait


def env_of_authorization(authorization: str | None) -> str:
    """The environment an error names: ``live`` for a live secret key, else ``sandbox``."""
    return "live" if env_of_key((authorization or "")[7:].strip()) == "live" else "sandbox"


def error_response(
    status: int, code: str, message: str, env: str, headers: dict[str, str] | None = None
) -> Response:
    """A Starlette response with Autumn's error body (for handlers outside the dispatcher)."""
    body = json.dumps({"message": message, "code": code, "env": env}).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def refusal(exc: RateLimited | ApiError, authorization: str | None) -> Answer:
    """A rate limit or an Autumn error as (status, body, headers)."""
    env = env_of_authorization(authorization)
    if isinstance(exc, RateLimited):
        body = {
            "message": "Rate limit exceeded, please retry later",
            "code": "rate_limit_exceeded",
            "env": env,
        }
        return 429, body, {"Retry-After": str(int(exc.wait))}
    return exc.status, {"message": exc.message, "code": exc.code, "env": env}, {}


def refused(operation: str, exc: ApiError, env: str) -> Sent:
    """An error answered before (or instead of) the work, in Autumn's shape for ``operation``."""
    code = exc.code
    if operation.startswith("platform."):
        code = platform_error_code(exc.status, code)
    return exc.status, json.dumps({"message": exc.message, "code": code, "env": env}).encode(), {}


def platform_shaped(operation: str, status: int, result: Any) -> Any:
    """An answer's body with the platform operations' own error code, for a failed ``platform.*`` call."""
    if status >= 400 and operation.startswith("platform.") and isinstance(result, dict) and "code" in result:
        return {**result, "code": platform_error_code(status, str(result["code"]))}
    return result
