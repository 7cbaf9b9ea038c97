"""The processes a benchmark measures: ``python -m bench.serve KIND --port N [...]``.

Kinds:

* ``baseline``: a bare Starlette POST endpoint that validates the body with the generated
  ``CheckParams`` model and answers a small JSON (the framework floor every ratio is taken against);
* ``server``: the reference server (``create_app``) on ``--database-url``;
* ``handler``: ``autumn_handlers.starlette.autumn_app`` mounted at ``/api/autumn``, talking to the
  reference server at ``--autumn-url``, identifying every caller as customer ``c<n>``;
* ``sdk``: a Starlette endpoint at the same path that calls ``AsyncAutumn.customers.get_or_create``
  directly (what the handler does, minus the handler);
* ``answer``: a bare Starlette POST endpoint at ``/v1/customers.list`` that answers the JSON of
  ``--answer-file`` (decoded once at start), encoding it on every request with the server's encoder
  (pydantic-core's ``to_json``): the floor of any server sending that answer on this stack.

Every kind runs on the HTTP stack ``autumn-server`` runs by default (``--http httptools --loop uvloop``,
falling back to ``h11``/``asyncio`` when not installed), so ratios compare like with like; ``--http h11
--loop asyncio`` measures the pure-Python stack.

``--reuse-port`` binds with ``SO_REUSEPORT`` so that several processes share one port (the kernel
spreads connections between them), which is how ``bench`` measures 2 server processes against 1.
"""

from __future__ import annotations

import argparse
import itertools
import json
import socket
import sys
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reference_server.settings import server_stack

KEY = "am_sk_test_bench_key"


def baseline_app() -> Starlette:
    from autumn_sdk._generated.models import CheckParams

    async def check(request: Request) -> Response:
        params = CheckParams.model_validate_json(await request.body())
        body = {
            "allowed": True,
            "customer_id": params.customer_id,
            "required_balance": 1,
            "balance": None,
            "flag": None,
        }
        return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")

    return Starlette(
        routes=[
            Route("/v1/balances.check", check, methods=["POST"]),
            Route("/v1/balances.track", check, methods=["POST"]),
        ]
    )


def _customer_ids(customers: int) -> itertools.cycle[str]:
    return itertools.cycle([f"c{i}" for i in range(customers)])


def handler_app(autumn_url: str, customers: int) -> Starlette:
    from starlette.routing import Mount

    from autumn_handlers import Identity
    from autumn_handlers.starlette import autumn_app
    from autumn_sdk import AsyncAutumn

    ids = _customer_ids(customers)

    def identify(request: Request) -> Identity:
        return Identity(customer_id=next(ids))

    client = AsyncAutumn(KEY, server_url=autumn_url)
    return Starlette(routes=[Mount("/api/autumn", app=autumn_app(identify, client=client))])


def sdk_app(autumn_url: str, customers: int) -> Starlette:
    from autumn_sdk import AsyncAutumn

    ids = _customer_ids(customers)
    client = AsyncAutumn(KEY, server_url=autumn_url)

    async def get_or_create(request: Request) -> Response:
        await request.body()
        customer = await client.customers.get_or_create(customer_id=next(ids))
        return Response(customer.model_dump_json(by_alias=True), media_type="application/json")

    return Starlette(routes=[Route("/api/autumn/getOrCreateCustomer", get_or_create, methods=["POST"])])


def answer_app(path: str) -> Starlette:
    from pydantic_core import to_json

    with open(path, "rb") as f:
        answer = json.load(f)

    async def answer_it(request: Request) -> Response:
        await request.body()
        return Response(to_json(answer), media_type="application/json")

    return Starlette(routes=[Route("/v1/customers.list", answer_it, methods=["POST"])])


def build(kind: str, database_url: str, autumn_url: str, customers: int, answer_file: str = "") -> Any:
    if kind == "baseline":
        return baseline_app()
    if kind == "server":
        from reference_server.app import create_app

        return create_app(database_url, secret_key=KEY, rate_limits=False)
    if kind == "handler":
        return handler_app(autumn_url, customers)
    if kind == "sdk":
        return sdk_app(autumn_url, customers)
    if kind == "answer":
        return answer_app(answer_file)
    raise SystemExit(f"unknown kind {kind!r}")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.serve")
    p.add_argument("kind", choices=("baseline", "server", "handler", "sdk", "answer"))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--database-url", default="")
    p.add_argument("--autumn-url", default="")
    p.add_argument("--customers", type=int, default=200, help="handler/sdk: identify callers as c0..c<n-1>")
    p.add_argument("--answer-file", default="", help="answer: the JSON answer it sends")
    p.add_argument(
        "--http", choices=("httptools", "h11"), default="httptools", help="as autumn-server's --http"
    )
    p.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default="uvloop", help="as autumn-server's --loop"
    )
    p.add_argument("--reuse-port", action="store_true")
    args = p.parse_args()
    app = build(args.kind, args.database_url, args.autumn_url, args.customers, args.answer_file)
    stack = server_stack(args.http, args.loop)  # what autumn-server would run (h11/asyncio if not installed)
    for fallback in stack.fallbacks:
        print(f"bench.serve {args.kind}: {fallback}", file=sys.stderr, flush=True)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        http=stack.http,
        loop=stack.loop,
    )
    server = uvicorn.Server(config)
    if args.reuse_port:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", args.port))
        sock.listen(2048)
        server.run(sockets=[sock])
    else:
        server.run()


if __name__ == "__main__":
    main()
