"""check/track throughput of the reference server over real HTTP, against a same-run baseline.

    .venv/bin/python bench/bench_check_track.py [--db sqlite|postgres] [--seconds 3] [--connections 16]

Each target runs under uvicorn in its own process on 127.0.0.1 (one worker); a raw-socket asyncio
load generator in this process keeps ``--connections`` keep-alive connections busy for a bounded
time.  The baseline is a bare Starlette POST endpoint that validates the same body with the
generated ``CheckParams`` model and answers a small JSON (the framework ceiling of
performance-anchors.md §3a), so the printed ratios survive a change of machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = "am_sk_test_bench_key"
CUSTOMERS = 200


# ------------------------------------------------------------------ servers (child processes)


def baseline_app() -> object:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

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


def serve(kind: str, port: int, database_url: str) -> None:
    import uvicorn

    if kind == "baseline":
        app = baseline_app()
    else:
        from reference_server.app import create_app

        app = create_app(database_url, secret_key=KEY, rate_limits=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)  # type: ignore[arg-type]


# ------------------------------------------------------------------ load generator


async def _connection(
    port: int, requests: list[bytes], deadline: float, counts: list[int], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = random.randrange(len(requests))
    try:
        while time.monotonic() < deadline:
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            counts[0] += 1
            if status != 200:
                errors[0] += 1
    finally:
        writer.close()


def _request(path: str, body: dict[str, object]) -> bytes:
    data = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode() + data


async def load(port: int, requests: list[bytes], seconds: float, connections: int) -> tuple[float, int]:
    counts, errors = [0], [0]
    deadline = time.monotonic() + seconds
    start = time.monotonic()
    await asyncio.gather(*[_connection(port, requests, deadline, counts, errors) for _ in range(connections)])
    return counts[0] / (time.monotonic() - start), errors[0]


# ------------------------------------------------------------------ orchestration


def _free_port() -> int:
    from reference_server.testing import free_port

    return free_port()


@contextlib.contextmanager
def child_server(kind: str, database_url: str) -> Iterator[int]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port), "--database-url", database_url],
        env=env,
    )
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                # Any HTTP answer means the server is up (the baseline has no route at /).
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{kind} server did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def seed(port: int) -> None:
    import httpx

    h = {"Authorization": f"Bearer {KEY}"}
    base = f"http://127.0.0.1:{port}"
    httpx.post(
        base + "/v1/features.create",
        headers=h,
        json={"feature_id": "messages", "name": "Messages", "type": "metered", "consumable": True},
    )
    httpx.post(
        base + "/v1/plans.create",
        headers=h,
        json={
            "plan_id": "free",
            "name": "Free",
            "auto_enable": True,
            "items": [{"feature_id": "messages", "included": 10**9, "reset": {"interval": "month"}}],
        },
    )
    with httpx.Client(base_url=base, headers=h) as c:
        for i in range(CUSTOMERS):
            c.post("/v1/customers.get_or_create", json={"customer_id": f"c{i}"})


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--serve")
    p.add_argument("--port", type=int)
    p.add_argument("--database-url")
    args = p.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.database_url)
        return
    sys.path.insert(0, str(ROOT))
    from reference_server.testing import fresh_database_url

    checks = [
        _request("/v1/balances.check", {"customer_id": f"c{i}", "feature_id": "messages"})
        for i in range(CUSTOMERS)
    ]
    tracks = [
        _request("/v1/balances.track", {"customer_id": f"c{i}", "feature_id": "messages"})
        for i in range(CUSTOMERS)
    ]
    with child_server("baseline", "") as port:
        asyncio.run(load(port, checks, 0.5, args.connections))  # warm-up
        base_rps, _ = asyncio.run(load(port, checks, args.seconds, args.connections))
    with fresh_database_url(args.db) as url, child_server("server", url) as port:
        seed(port)
        asyncio.run(load(port, checks, 0.5, args.connections))
        check_rps, check_err = asyncio.run(load(port, checks, args.seconds, args.connections))
        track_rps, track_err = asyncio.run(load(port, tracks, args.seconds, args.connections))
    print(f"database: {args.db}, connections: {args.connections}, {args.seconds:.1f}s per run")
    print(f"baseline (Starlette + pydantic POST): {base_rps:8.0f} req/s")
    print(
        f"check:                                {check_rps:8.0f} req/s  ratio {check_rps / base_rps:.2f}"
        f"  errors {check_err}"
    )
    print(
        f"track:                                {track_rps:8.0f} req/s  ratio {track_rps / base_rps:.2f}"
        f"  errors {track_err}"
    )


if __name__ == "__main__":
    main()
