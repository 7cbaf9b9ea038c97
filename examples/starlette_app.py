"""Starlette (or FastAPI) + autumn-js: the handler mount, a demo sign-in, and the React page.

    cd examples/web && npm install && npm run build && cd ../..
    export AUTUMN_URL=http://127.0.0.1:8080                # your Autumn server (the default)
    AUTUMN_SECRET_KEY=am_sk_test_... python examples/starlette_app.py    # http://127.0.0.1:8000

In FastAPI the same handler is ``app.mount("/api/autumn", autumn_app(identify, autumn_url=...))``.
The handler calls the Autumn at ``AUTUMN_URL``, by default the local reference server
(``autumn-server``); for Autumn's cloud set ``AUTUMN_URL=https://api.useautumn.com``.
"""

from __future__ import annotations

import os
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from autumn_handlers import Identity
from autumn_handlers.starlette import AutumnMount

WEB_DIST = Path(__file__).parent / "web" / "dist"
LOCAL_AUTUMN = "http://127.0.0.1:8080"
"""The reference server (``autumn-server``): the Autumn this demo calls unless ``AUTUMN_URL`` names
another (Autumn's cloud is ``https://api.useautumn.com``)."""


async def identify(request: Request) -> Identity | None:
    """The customer behind a hook request: here, whoever the demo cookie names."""
    user = request.cookies.get("demo_user")
    if not user:
        return None
    return Identity(customer_id=user, customer_data={"name": user.replace("-", " ").title()})


async def login(request: Request) -> RedirectResponse:
    form = await request.form()
    response = RedirectResponse("/", status_code=303)
    response.set_cookie("demo_user", str(form.get("user") or "demo-customer"), httponly=True)
    return response


def create_app() -> Starlette:
    return Starlette(
        routes=[
            AutumnMount(identify, autumn_url=os.environ.get("AUTUMN_URL", LOCAL_AUTUMN)),
            Route("/login", login, methods=["POST"]),
            Mount("/", app=StaticFiles(directory=WEB_DIST, html=True, check_dir=False)),
        ]
    )


if __name__ == "__main__":
    uvicorn.run(create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
