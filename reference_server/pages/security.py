"""Security headers of every page a browser is sent to (hosted billing pages and the dashboard).

Card numbers are typed on these pages, so no page may be framed (clickjacking), cached (a shared
computer's back button), leak its URL (the session id is the credential) or run a script it did not
serve itself.  ``form-action`` admits https and http origins besides the server itself because a
completed checkout redirects to the app's own ``success_url``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: https:",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self' https: http:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}

STATIC_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=3600",
    "Cross-Origin-Resource-Policy": "same-origin",
}

Endpoint = Callable[[Request], Awaitable[Response]]


def secured(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` with :data:`SECURITY_HEADERS` on every response it gives (pages and redirects)."""

    async def wrapped(request: Request) -> Response:
        response = await endpoint(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    wrapped.__name__ = getattr(endpoint, "__name__", "page")
    wrapped.__doc__ = endpoint.__doc__
    return wrapped


class StaticHeaders:
    """ASGI wrapper giving static files (stylesheets, scripts) ``nosniff`` and a short cache."""

    def __init__(self, app: ASGIApp, headers: dict[str, str] | None = None) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in (headers or STATIC_HEADERS).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)
