"""CORS for a front end served from another origin than the handler.

autumn-js leaves CORS to the app, and every hook request is a JSON ``POST``, so the browser sends a
preflight ``OPTIONS`` first. With credentials on (``includeCredentials``), ``*`` is not accepted by
browsers: the exact origin must be echoed, together with ``Access-Control-Allow-Credentials``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .responses import HandlerResponse, error_response

__all__ = ["CORSConfig"]


@dataclass(frozen=True)
class CORSConfig:
    """Which origins may call the handler from a browser, and with which request headers."""

    allow_origins: Sequence[str]
    """Exact origins (``"http://localhost:5173"``); ``"*"`` allows any origin (it is echoed back)."""
    allow_credentials: bool = True
    """Send ``Access-Control-Allow-Credentials: true`` (needed for ``includeCredentials``)."""
    allow_headers: Sequence[str] = ("content-type", "authorization")
    """Request headers the page may send (lower case); add any custom ``headers`` of the provider."""
    max_age: int = 600
    """Seconds a browser may cache a preflight answer."""

    def origin_allowed(self, origin: str | None) -> bool:
        if not origin:
            return False
        return "*" in self.allow_origins or origin in self.allow_origins

    def response_headers(self, origin: str | None) -> dict[str, str]:
        """Headers for an actual (non-preflight) response; empty for a foreign origin."""
        if origin is None or not self.origin_allowed(origin):
            return {"Vary": "Origin"} if origin else {}
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if self.allow_credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    def preflight(self, headers: Mapping[str, str]) -> HandlerResponse:
        """Answer an ``OPTIONS`` preflight; ``headers`` are the request headers, any key case."""
        lowered = {key.lower(): value for key, value in headers.items()}
        origin = lowered.get("origin")
        if origin is None or not self.origin_allowed(origin):
            return error_response(403, f"Origin {origin!r} is not allowed", "cors_origin_not_allowed")
        requested_method = lowered.get("access-control-request-method", "POST").upper()
        if requested_method not in ("POST", "OPTIONS"):
            return error_response(403, f"Method {requested_method} is not allowed", "cors_method_not_allowed")
        allowed = {name.lower() for name in self.allow_headers}
        requested = [
            name.strip().lower()
            for name in lowered.get("access-control-request-headers", "").split(",")
            if name.strip()
        ]
        refused = [name for name in requested if name not in allowed]
        if refused:
            return error_response(
                403, f"Request headers not allowed: {', '.join(refused)}", "cors_header_not_allowed"
            )
        reply = {
            **self.response_headers(origin),
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ", ".join(sorted(allowed)),
            "Access-Control-Max-Age": str(self.max_age),
        }
        return HandlerResponse(status=204, headers=reply)
