"""Flask adapter: a blueprint serving the autumn-js routes under the path prefix.

from autumn_handlers.flask import autumn_blueprint

def identify(request: flask.Request):
    user = current_user()
    return Identity(user.id, {"name": user.name, "email": user.email}) if user else None

app.register_blueprint(autumn_blueprint(identify=identify, autumn_url="http://127.0.0.1:8080"))
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from flask import Blueprint, Request, Response, request
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import PathConverter

from autumn_sdk import Autumn

from .core import DEFAULT_PATH_PREFIX, HandlerSettings, IncomingRequest
from .cors import CORSConfig
from .identity import IdentifyResult
from .inputs import DEFAULT_MAX_BODY_BYTES
from .runners import SyncHandler

__all__ = ["autumn_blueprint"]

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class _AnyPathConverter(PathConverter):
    """Like ``path`` but also matches leading and doubled slashes, which autumn-js tolerates."""

    regex = ".*"
    part_isolating = False


def _register_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("autumn_subpath", _AnyPathConverter)


def _read_body(max_bytes: int) -> bytes:
    """At most ``max_bytes + 1`` bytes, enough for the pipeline to tell an oversized body (413).

    With a ``Content-Length`` the body is read through Flask's cache (``identify`` may read it
    again); a chunked body is read from the stream, never past the limit.
    """
    declared = request.content_length
    if declared is not None:
        return b"" if declared > max_bytes else request.get_data(cache=True)
    return request.stream.read(max_bytes + 1)


def autumn_blueprint(
    identify: Callable[[Request], IdentifyResult | Awaitable[IdentifyResult]],
    *,
    secret_key: str | None = None,
    autumn_url: str | None = None,
    path_prefix: str = DEFAULT_PATH_PREFIX,
    client: Autumn | None = None,
    cors: CORSConfig | None = None,
    fail_open: bool | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    name: str = "autumn",
) -> Blueprint:
    """A blueprint answering ``POST {path_prefix}/<route>`` for the React hooks.

    ``identify`` receives ``flask.request`` (it may also be ``async``); ``client`` replaces the
    ``Autumn`` client built from ``secret_key`` (default env ``AUTUMN_SECRET_KEY``) and
    ``autumn_url``. Every method is routed here so that unknown routes and methods get autumn-js's
    JSON ``not_found`` instead of Flask's HTML pages. Bodies over ``max_body_bytes`` are answered 413.
    """
    settings = HandlerSettings(
        secret_key=secret_key,
        autumn_url=autumn_url,
        path_prefix=path_prefix,
        cors=cors,
        fail_open=fail_open,
        max_body_bytes=max_body_bytes,
    )
    handler: SyncHandler[Request] = SyncHandler(identify, settings, client)
    prefix = settings.normalized_prefix
    blueprint = Blueprint(name, __name__, url_prefix=prefix or None)

    def serve(subpath: str = "") -> Response:
        incoming = IncomingRequest(
            method=request.method,
            subpath=subpath,
            body=_read_body(max_body_bytes),
            headers=dict(request.headers),
        )
        answer = handler.handle(request._get_current_object(), incoming)  # type: ignore[attr-defined]
        response = Response(answer.content, status=answer.status, headers=dict(answer.headers))
        if answer.media_type is None:
            del response.headers["Content-Type"]
        else:
            response.mimetype = answer.media_type
        return response

    blueprint.record_once(_register_converter)
    for rule in ("/", "/<autumn_subpath:subpath>"):
        blueprint.add_url_rule(
            rule,
            endpoint="serve" if rule == "/" else "serve_subpath",
            view_func=serve,
            methods=_ALL_METHODS,
            provide_automatic_options=False,
            strict_slashes=False,
            merge_slashes=False,
        )
    return blueprint
