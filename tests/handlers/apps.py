"""Small apps, one per framework, that mount the handler the way a user would.

``identify`` reads the ``x-test-customer`` header (what the browser test page sends through the
provider's ``headers``), plus optional ``x-test-name``/``x-test-email`` as the customer data; with no
header it returns ``None``; it raises when ``x-test-identify-error`` is sent. The browser tests reuse
these apps and add the built test page as static files on the same origin.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import flask
from litestar import Litestar
from litestar import Request as LitestarRequest
from litestar.static_files import create_static_files_router
from litestar.testing import TestClient as LitestarTestClient
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.testclient import TestClient as StarletteTestClient

from autumn_handlers import CORSConfig, Identity
from autumn_handlers.flask import autumn_blueprint
from autumn_handlers.inputs import DEFAULT_MAX_BODY_BYTES
from autumn_handlers.litestar import autumn_router
from autumn_handlers.starlette import AutumnMount

FRAMEWORKS = ("flask", "starlette", "litestar")
CUSTOMER_HEADER = "x-test-customer"


IDENTIFY_ERROR_HEADER = "x-test-identify-error"
"""When sent, ``identify`` raises ``RuntimeError`` with its value (a failing session store)."""


def identity_from_headers(headers: Mapping[str, str]) -> Identity | None:
    failure = headers.get(IDENTIFY_ERROR_HEADER)
    if failure:
        raise RuntimeError(failure)
    customer_id = headers.get(CUSTOMER_HEADER)
    if not customer_id:
        return None
    data = {key: headers[f"x-test-{key}"] for key in ("name", "email") if headers.get(f"x-test-{key}")}
    return Identity(customer_id, data)


def flask_identify(request: flask.Request) -> Identity | None:
    # werkzeug's Headers is case-insensitive but not a Mapping: copy it with lower-cased keys.
    return identity_from_headers({key.lower(): value for key, value in request.headers.items()})


async def starlette_identify(request: StarletteRequest) -> Identity | None:
    return identity_from_headers(request.headers)


def litestar_identify(request: LitestarRequest[Any, Any, Any]) -> dict[str, Any] | None:
    # Litestar's identify answers with the autumn-js dict shape, to cover that form too.
    identity = identity_from_headers(request.headers)
    if identity is None:
        return None
    return {"customerId": identity.customer_id, "customerData": dict(identity.customer_data)}


@dataclass(frozen=True)
class HandlerOptions:
    """Handler options shared by the three apps."""

    secret_key: str | None
    autumn_url: str | None
    cors: CORSConfig | None = None
    fail_open: bool | None = None
    path_prefix: str = "/api/autumn"
    client: Any = None
    """An SDK client to inject instead of the key and URL (``Autumn`` for Flask, else ``AsyncAutumn``)."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def adapter_kwargs(self) -> dict[str, Any]:
        """The keyword arguments every adapter takes under the same names (the prefix's name varies)."""
        return {
            "client": self.client,
            "secret_key": self.secret_key,
            "autumn_url": self.autumn_url,
            "cors": self.cors,
            "fail_open": self.fail_open,
            "max_body_bytes": self.max_body_bytes,
        }


def make_flask_app(options: HandlerOptions, static_dir: Path | None = None) -> flask.Flask:
    app = flask.Flask(__name__, static_folder=None)
    app.register_blueprint(
        autumn_blueprint(flask_identify, path_prefix=options.path_prefix, **options.adapter_kwargs())
    )
    if static_dir is not None:
        root = static_dir

        @app.get("/")
        def index() -> flask.Response:
            return flask.send_from_directory(root, "index.html")

        @app.get("/assets/<path:name>")
        def assets(name: str) -> flask.Response:
            return flask.send_from_directory(root / "assets", name)

    return app


def make_starlette_app(options: HandlerOptions, static_dir: Path | None = None) -> Starlette:
    routes: list[BaseRoute] = [
        AutumnMount(starlette_identify, path=options.path_prefix, **options.adapter_kwargs())
    ]
    if static_dir is not None:
        routes.append(Mount("/", app=StaticFiles(directory=static_dir, html=True)))
    return Starlette(routes=routes)


def make_litestar_app(options: HandlerOptions, static_dir: Path | None = None) -> Litestar:
    handlers: list[Any] = [
        autumn_router(litestar_identify, path_prefix=options.path_prefix, **options.adapter_kwargs())
    ]
    if static_dir is not None:
        handlers.append(create_static_files_router(path="/", directories=[static_dir], html_mode=True))
    return Litestar(route_handlers=handlers)


def make_app(framework: str, options: HandlerOptions, static_dir: Path | None = None) -> Any:
    """The framework's app: a WSGI app for Flask, an ASGI app for the others."""
    if framework == "flask":
        return make_flask_app(options, static_dir)
    if framework == "starlette":
        return make_starlette_app(options, static_dir)
    if framework == "litestar":
        return make_litestar_app(options, static_dir)
    raise ValueError(framework)


@dataclass(frozen=True)
class Reply:
    status: int
    json: Any
    headers: Mapping[str, str]
    text: str


class HandlerClient(Protocol):
    def request(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> Reply: ...

    def send(self, path: str, content: bytes, headers: Mapping[str, str], *, chunked: bool = False) -> Reply:
        """POST raw bytes; ``chunked`` sends them without a ``Content-Length``."""
        ...


class _FlaskClient:
    def __init__(self, app: flask.Flask) -> None:
        self._client = app.test_client()

    def request(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> Reply:
        response = self._client.open(path, method=method, json=body, headers=dict(headers or {}))
        text = response.get_data(as_text=True)
        headers = {key.lower(): value for key, value in response.headers.items()}
        return Reply(response.status_code, response.get_json(silent=True), headers, text)

    def send(self, path: str, content: bytes, headers: Mapping[str, str], *, chunked: bool = False) -> Reply:
        if chunked:
            # What a WSGI server passes for a chunked body: no length, the input marked as terminated.
            response = self._client.open(
                path,
                method="POST",
                input_stream=io.BytesIO(content),
                headers={**headers, "Transfer-Encoding": "chunked"},
                environ_overrides={"wsgi.input_terminated": True},
            )
        else:
            response = self._client.open(path, method="POST", data=content, headers=dict(headers))
        text = response.get_data(as_text=True)
        reply_headers = {key.lower(): value for key, value in response.headers.items()}
        return Reply(response.status_code, response.get_json(silent=True), reply_headers, text)


class _HttpxLikeClient:
    """Starlette's and Litestar's test clients are both httpx clients."""

    def __init__(self, client: StarletteTestClient | LitestarTestClient[Any]) -> None:
        self._client = client

    def request(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> Reply:
        response = self._client.request(method, path, json=body, headers=dict(headers or {}))
        try:
            payload = response.json()
        except ValueError:
            payload = None
        headers = {key.lower(): value for key, value in response.headers.items()}
        return Reply(response.status_code, payload, headers, response.text)

    def send(self, path: str, content: bytes, headers: Mapping[str, str], *, chunked: bool = False) -> Reply:
        body: bytes | Iterator[bytes] = iter([content[:1000], content[1000:]]) if chunked else content
        response = self._client.request("POST", path, content=body, headers=dict(headers))
        try:
            payload = response.json()
        except ValueError:
            payload = None
        reply_headers = {key.lower(): value for key, value in response.headers.items()}
        return Reply(response.status_code, payload, reply_headers, response.text)


@contextmanager
def handler_client(framework: str, options: HandlerOptions) -> Iterator[HandlerClient]:
    """The framework's own test client around its app."""
    app = make_app(framework, options)
    if framework == "flask":
        yield _FlaskClient(app)
    elif framework == "starlette":
        with StarletteTestClient(app) as client:
            yield _HttpxLikeClient(client)
    else:
        with LitestarTestClient(app) as litestar_client:
            yield _HttpxLikeClient(litestar_client)
