"""A request's values from the wire: the body read within its size limit (the rest is never read),
then a JSON object (or an array, for the operations that take one) or the query parameters, checked by
:mod:`~reference_server.api.request_guard` before anything else looks at them."""

from __future__ import annotations

from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import Receive

from reference_server.api import request_guard
from reference_server.api.endpoints import ITEMS_KEY
from reference_server.errors import ApiError


async def read_body(receive: Receive, content_length: str | None, limit: int) -> bytes | None:
    """The request body, or None once it grows past ``limit`` bytes (the rest is not read)."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def request_values(
    data: bytes | None, query: dict[str, str] | None, limit: int, items: bool = False
) -> dict[str, Any]:
    """The values of a POST body (``data``) or of a GET's ``query``.

    An array body (``items``) is carried as ``{"items": [...]}`` from here on.
    """
    if query is not None:
        raw: Any = query
    elif data is None or not data.strip():
        raw = {}
    else:
        if len(data) > limit:
            raise request_guard.body_too_large(limit)
        raw = request_guard.parse_json_body(data)
        if items:
            if not isinstance(raw, list):
                raise ApiError(400, "invalid_inputs", "Request body must be a JSON array")
            raw = {ITEMS_KEY: raw}
        elif not isinstance(raw, dict):
            raise ApiError(400, "invalid_inputs", "Request body must be a JSON object")
    request_guard.check_values(raw)
    return dict(raw)
