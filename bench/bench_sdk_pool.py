"""One ``AsyncAutumn`` shared by many concurrent coroutines: pool waits, latency and fail-open counts.

    .venv/bin/python bench/bench_sdk_pool.py [--db sqlite|postgres] [--calls 500] [--connections 10,20,50,100]

Starts the reference server in this process (``reference_server.testing.run_server``, fresh
database) with 20 customers holding a metered balance, then, for each pool size, fires ``--calls``
concurrent ``check``s through ONE ``AsyncAutumn`` whose ``http_client`` has that many connections
(the last row uses the SDK's own client, i.e. its defaults). Every call keeps the SDK's default
per-attempt timeout (5 s) and total budget (10 s). Printed per row: wall time, calls per second,
latency percentiles, HTTP attempts (more than the calls means retries), real answers, fail-open
answers and errors by type. A final row gives a budget too short for the queue (``--short-budget-ms``)
to show what running out of it does: ``PoolTimeoutError`` for the calls still waiting for a
connection, never a fail-open answer.

Bounded: a fixed number of calls per row, each bounded by its total budget.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import logging
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autumn_sdk import AsyncAutumn, Autumn, is_fail_open
from reference_server.testing import RunningServer, fresh_database_url, run_server

CUSTOMERS = 20
FEATURE = "calls"


def seed(server: RunningServer) -> list[str]:
    ids = [f"crowd_{i}" for i in range(CUSTOMERS)]
    with Autumn(server.secret_key, server_url=server.url) as autumn:
        autumn.features.create(feature_id=FEATURE, name="Calls", type_="metered", consumable=True)
        for customer_id in ids:
            autumn.customers.get_or_create(customer_id=customer_id)
            autumn.balances.create(customer_id=customer_id, feature_id=FEATURE, included_grant=1_000_000)
    return ids


async def crowd(
    server: RunningServer, ids: list[str], calls: int, connections: int | None, total_timeout_ms: int | None
) -> dict[str, Any]:
    attempts = 0

    async def count(request: httpx.Request) -> None:
        nonlocal attempts
        attempts += 1

    http: httpx.AsyncClient | None = None
    if connections is not None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        http = httpx.AsyncClient(limits=limits, event_hooks={"request": [count]})
    latencies: list[float] = []
    outcomes: collections.Counter[str] = collections.Counter()
    async with AsyncAutumn(
        server.secret_key, server_url=server.url, http_client=http, total_timeout_ms=total_timeout_ms
    ) as autumn:
        if http is None:  # the SDK's own client: count through its hooks
            autumn._transport.async_client.event_hooks["request"].append(count)

        async def one(index: int) -> None:
            started = time.perf_counter()
            try:
                result = await autumn.check(
                    customer_id=ids[index % len(ids)], feature_id=FEATURE, required_balance=1
                )
            except Exception as exc:  # counted and printed, never hidden
                outcomes[type(exc).__name__] += 1
            else:
                outcomes["fail-open" if is_fail_open(result) else "real"] += 1
            latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(calls)))
        wall = time.perf_counter() - began
    if http is not None:
        await http.aclose()
    latencies.sort()
    return {
        "wall": wall,
        "rate": calls / wall,
        "p50": statistics.median(latencies),
        "p95": latencies[int(len(latencies) * 0.95) - 1],
        "max": latencies[-1],
        "attempts": attempts,
        "outcomes": dict(outcomes),
    }


def row(label: str, stats: dict[str, Any], calls: int) -> str:
    outcomes = stats["outcomes"]
    others = {k: v for k, v in outcomes.items() if k not in ("real", "fail-open")}
    return (
        f"{label:<22} {stats['wall']:6.2f} s {stats['rate']:7.0f}/s  p50 {stats['p50'] * 1000:6.0f} ms  "
        f"p95 {stats['p95'] * 1000:6.0f} ms  max {stats['max'] * 1000:6.0f} ms  "
        f"attempts {stats['attempts']:4d}/{calls}  real {outcomes.get('real', 0):4d}  "
        f"fail-open {outcomes.get('fail-open', 0):3d}  errors {others or 0}"
    )


@contextlib.contextmanager
def server_on(db: str) -> Iterator[RunningServer]:
    with fresh_database_url(db) as url, run_server(url) as server:
        yield server


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--connections", default="10,20,50,100")
    parser.add_argument("--short-budget-ms", type=int, default=1_000)
    args = parser.parse_args()
    logging.getLogger("autumn_sdk").setLevel(logging.ERROR)  # outcomes are counted, not logged
    sizes = [int(part) for part in args.connections.split(",") if part.strip()]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{args.calls} concurrent checks through one AsyncAutumn, reference server on {args.db} "
        f"(in process), {os.cpu_count()} CPUs, load average {load:.1f}"
    )
    with server_on(args.db) as server:
        ids = seed(server)
        asyncio.run(crowd(server, ids, 50, 10, None))  # warm-up: connections, caches
        for size in sizes:
            stats = asyncio.run(crowd(server, ids, args.calls, size, None))
            print(row(f"max_connections={size}", stats, args.calls))
        stats = asyncio.run(crowd(server, ids, args.calls, None, None))
        print(row("SDK default client", stats, args.calls))
        stats = asyncio.run(crowd(server, ids, args.calls, None, args.short_budget_ms))
        print(row(f"default, {args.short_budget_ms} ms budget", stats, args.calls))


if __name__ == "__main__":
    main()
