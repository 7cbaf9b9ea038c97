"""Flask + autumn-js: the handler blueprint, a demo sign-in, and the React page from examples/web.

    cd examples/web && npm install && npm run build && cd ../..
    export AUTUMN_URL=http://127.0.0.1:8080                # your Autumn server (the default)
    AUTUMN_SECRET_KEY=am_sk_test_... python examples/flask_app.py      # http://127.0.0.1:8000

The handler calls the Autumn at ``AUTUMN_URL``, by default the local reference server
(``autumn-server``); for Autumn's cloud set ``AUTUMN_URL=https://api.useautumn.com``. The demo
"session" is a plain cookie; a real app returns its signed-in user from ``identify``.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Request, Response, redirect, request, send_from_directory
from werkzeug.wrappers import Response as BaseResponse

from autumn_handlers import Identity
from autumn_handlers.flask import autumn_blueprint

WEB_DIST = Path(__file__).parent / "web" / "dist"
LOCAL_AUTUMN = "http://127.0.0.1:8080"
"""The reference server (``autumn-server``): the Autumn this demo calls unless ``AUTUMN_URL`` names
another (Autumn's cloud is ``https://api.useautumn.com``)."""


def identify(req: Request) -> Identity | None:
    """The customer behind a hook request: here, whoever the demo cookie names."""
    user = req.cookies.get("demo_user")
    if not user:
        return None
    return Identity(customer_id=user, customer_data={"name": user.replace("-", " ").title()})


def create_app() -> Flask:
    app = Flask(__name__, static_folder=None)
    app.register_blueprint(autumn_blueprint(identify, autumn_url=os.environ.get("AUTUMN_URL", LOCAL_AUTUMN)))

    @app.post("/login")
    def login() -> BaseResponse:
        response = redirect("/", code=303)
        response.set_cookie("demo_user", request.form.get("user", "demo-customer"), httponly=True)
        return response

    @app.get("/")
    def index() -> Response:
        return send_from_directory(WEB_DIST, "index.html")

    @app.get("/assets/<path:name>")
    def assets(name: str) -> Response:
        return send_from_directory(WEB_DIST / "assets", name)

    return app


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
