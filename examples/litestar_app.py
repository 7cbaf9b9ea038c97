"""Litestar + autumn-js: the handler router, a demo sign-in, and the React page.

    cd examples/web && npm install && npm run build && cd ../..
    export AUTUMN_URL=http://127.0.0.1:8080                # your Autumn server (the default)
    AUTUMN_SECRET_KEY=am_sk_test_... python examples/litestar_app.py     # http://127.0.0.1:8000

The handler calls the Autumn at ``AUTUMN_URL``, by default the local reference server
(``autumn-server``); for Autumn's cloud set ``AUTUMN_URL=https://api.useautumn.com``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from litestar import Litestar, Request, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from autumn_handlers import Identity
from autumn_handlers.litestar import autumn_router

WEB_DIST = Path(__file__).parent / "web" / "dist"
LOCAL_AUTUMN = "http://127.0.0.1:8080"
"""The reference server (``autumn-server``): the Autumn this demo calls unless ``AUTUMN_URL`` names
another (Autumn's cloud is ``https://api.useautumn.com``)."""


async def identify(request: Request[Any, Any, Any]) -> Identity | None:
    """The customer behind a hook request: here, whoever the demo cookie names."""
    user = request.cookies.get("demo_user")
    if not user:
        return None
    return Identity(customer_id=user, customer_data={"name": user.replace("-", " ").title()})


@post("/login", status_code=303)
async def login(
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Redirect:
    response = Redirect("/", status_code=303)
    response.set_cookie("demo_user", data.get("user") or "demo-customer", httponly=True)
    return response


def create_app() -> Litestar:
    return Litestar(
        route_handlers=[
            autumn_router(identify, autumn_url=os.environ.get("AUTUMN_URL", LOCAL_AUTUMN)),
            login,
            create_static_files_router(path="/", directories=[WEB_DIST], html_mode=True),
        ]
    )


if __name__ == "__main__":
    uvicorn.run(create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
