"""Scale-out figures: ``autumn-server`` on PostgreSQL with one and two workers, limits in Redis.

    .venv/bin/python bench/bench_scale_out.py [--seconds 3] [--connections 16]

Each configuration is a real ``autumn-server`` process (``--workers N``) on a fresh PostgreSQL
database; the load generator of ``bench_check_track.py`` keeps ``--connections`` keep-alive
connections busy for a bounded time.  Three loads per configuration: ``check`` spread over 200
customers, ``track`` spread over 200 customers, and ``track`` on ONE customer (every request
updates the same balance row, the "hot row").  Ratios are against the first configuration's
spread ``check`` in the same run, so they survive a change of machine; absolute numbers do not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_check_track import CUSTOMERS, KEY, _request, load, seed  # noqa: E402

from reference_server.testing import free_port, fresh_postgres_url  # noqa: E402

REDIS = "redis://127.0.0.1:6379/0"


@contextlib.contextmanager
def autumn_server(database_url: str, *flags: str) -> Iterator[int]:
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "reference_server", "--port", str(port), "--database-url", database_url]
    proc = subprocess.Popen(
        [*command, "--secret-key", KEY, "--log-level", "warning", *flags],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("autumn-server did not start")
            time.sleep(0.2)
        if "--workers" in flags:  # every worker answers before the clock starts
            for _ in range(50):
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=60)


CONFIGS = [
    ("1 worker, no rate limits", ("--no-rate-limits",)),
    ("1 worker, limits in Redis", ("--redis-url", REDIS)),
    ("2 workers, limits in Redis", ("--workers", "2", "--redis-url", REDIS)),
]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--connections", type=int, default=16)
    args = p.parse_args()
    checks = [
        _request("/v1/balances.check", {"customer_id": f"c{i}", "feature_id": "messages"})
        for i in range(CUSTOMERS)
    ]
    tracks = [
        _request("/v1/balances.track", {"customer_id": f"c{i}", "feature_id": "messages"})
        for i in range(CUSTOMERS)
    ]
    hot = [_request("/v1/balances.track", {"customer_id": "c0", "feature_id": "messages"})]
    rows: list[tuple[str, float, float, float, int]] = []
    for name, flags in CONFIGS:
        with fresh_postgres_url() as url, autumn_server(url, *flags) as port:
            seed(port)
            asyncio.run(load(port, checks, 0.5, args.connections))  # warm-up
            check_rps, e1 = asyncio.run(load(port, checks, args.seconds, args.connections))
            track_rps, e2 = asyncio.run(load(port, tracks, args.seconds, args.connections))
            hot_rps, e3 = asyncio.run(load(port, hot, args.seconds, args.connections))
        rows.append((name, check_rps, track_rps, hot_rps, e1 + e2 + e3))
    base = rows[0][1]
    print(f"PostgreSQL, {args.connections} connections, {args.seconds:.1f} s per load, {os.cpu_count()} CPUs")
    print(f"{'configuration':28} {'check':>16} {'track (spread)':>18} {'track (1 customer)':>20} errors")
    for name, check_rps, track_rps, hot_rps, errors in rows:
        check = f"{check_rps:7.0f}/s ({check_rps / base:4.2f})"
        track = f"{track_rps:9.0f}/s ({track_rps / base:4.2f})"
        print(f"{name:28} {check} {track} {hot_rps:11.0f}/s ({hot_rps / base:4.2f}) {errors:6d}")


if __name__ == "__main__":
    main()
