"""Child-process probes of ``bench``: ``python -m bench.probes KIND ...`` prints one JSON line.

* ``sqlite-floor PATH SECONDS``: a Python loop running the transaction a ``track`` does on SQLite
  (``BEGIN IMMEDIATE``, a SELECT of the subject, the balance UPDATE, the event INSERT, ``COMMIT``) on
  a table of its own, WAL with ``synchronous=NORMAL``; answers transactions per second.
* ``clients URL SECONDS CONCURRENCY CUSTOMERS``: ``AsyncAutumn`` with CONCURRENCY concurrent ``check``s
  against raw ``httpx.AsyncClient`` posting the same body, and, when ``httpx-aiohttp`` is installed,
  ``AsyncAutumn(http_client=DefaultAioHttpClient())`` and a raw ``aiohttp.ClientSession``; then the
  sync ``Autumn`` against a raw ``httpx.Client`` (one at a time); answers calls per second
  of each, and for the async ones the client's CPU microseconds per call (``*_cpu_us``).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable

import httpx

from bench.serve import KEY


def sqlite_floor(path: str, seconds: float) -> dict[str, float]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS balances (customer_id TEXT PRIMARY KEY, balance REAL NOT NULL)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS events (pk INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL,"
        " customer_id TEXT, feature_id TEXT, value REAL, properties TEXT, timestamp INTEGER)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS ix_events_customer_ts ON events (customer_id, timestamp)")
    db.executemany("INSERT OR IGNORE INTO balances VALUES (?, 1e12)", [(f"c{i}",) for i in range(200)])
    done = 0
    start = time.monotonic()
    deadline = start + seconds
    while time.monotonic() < deadline:
        customer = f"c{done % 200}"
        db.execute("BEGIN IMMEDIATE")
        db.execute("SELECT customer_id, balance FROM balances WHERE customer_id = ?", (customer,)).fetchone()
        db.execute("UPDATE balances SET balance = balance - 1 WHERE customer_id = ?", (customer,))
        db.execute(
            "INSERT INTO events (id, customer_id, feature_id, value, properties, timestamp)"
            " VALUES (?, ?, 'messages', 1, '{}', ?)",
            (f"evt_{start}_{done}", customer, int(time.time() * 1000)),
        )
        db.execute("COMMIT")
        done += 1
    db.close()
    return {"tps": done / (time.monotonic() - start)}


async def _crowd(seconds: float, concurrency: int, call: Callable[[int], Awaitable[object]]) -> float:
    """Calls per second of ``concurrency`` coroutines calling ``call`` in a loop for ``seconds``."""
    count = 0
    deadline = time.monotonic() + seconds

    async def worker(n: int) -> None:
        nonlocal count
        i = n
        while time.monotonic() < deadline:
            await call(i)
            i += concurrency
            count += 1

    start = time.monotonic()
    await asyncio.gather(*[worker(n) for n in range(concurrency)])
    return count / (time.monotonic() - start)


async def _measure(
    result: dict[str, float],
    name: str,
    seconds: float,
    concurrency: int,
    call: Callable[[int], Awaitable[object]],
) -> None:
    """Warm up, then ``result[name]`` = calls/s and ``result[name + "_cpu_us"]`` = this process's
    CPU per call (the server runs elsewhere, so this is the client's own cost, which survives a
    machine loaded by other work far better than calls/s)."""
    await _crowd(0.2, concurrency, call)
    cpu = time.process_time()
    wall = time.monotonic()
    rate = await _crowd(seconds, concurrency, call)
    calls = rate * (time.monotonic() - wall)
    result[name] = rate
    result[name + "_cpu_us"] = (time.process_time() - cpu) / max(calls, 1) * 1e6


async def _async_clients(url: str, seconds: float, concurrency: int, customers: int) -> dict[str, float]:
    from autumn_sdk import AsyncAutumn, DefaultAioHttpClient
    from autumn_sdk._aiohttp import aiohttp_available

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as raw:

        async def raw_check(i: int) -> object:
            r = await raw.post(
                "/v1/balances.check", json={"customer_id": f"c{i % customers}", "feature_id": "messages"}
            )
            r.raise_for_status()
            return r.json()

        result: dict[str, float] = {}
        await _measure(result, "async_httpx", seconds, concurrency, raw_check)
    async with AsyncAutumn(KEY, server_url=url) as autumn:

        async def sdk_check(i: int) -> object:
            return await autumn.check(customer_id=f"c{i % customers}", feature_id="messages")

        await _measure(result, "async_sdk", seconds, concurrency, sdk_check)
    if aiohttp_available():
        async with AsyncAutumn(KEY, server_url=url, http_client=DefaultAioHttpClient()) as fast:

            async def fast_check(i: int) -> object:
                return await fast.check(customer_id=f"c{i % customers}", feature_id="messages")

            await _measure(result, "async_sdk_aiohttp", seconds, concurrency, fast_check)
        await _raw_aiohttp(result, url, seconds, concurrency, customers)
    return result


async def _raw_aiohttp(
    result: dict[str, float], url: str, seconds: float, concurrency: int, customers: int
) -> None:
    """The floor of the aiohttp path: a bare ``aiohttp.ClientSession`` posting the same body."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession(url, connector=connector, headers=headers) as session:

        async def raw_check(i: int) -> object:
            body = {"customer_id": f"c{i % customers}", "feature_id": "messages"}
            async with session.post("/v1/balances.check", json=body) as r:
                r.raise_for_status()
                return await r.json()

        await _measure(result, "async_aiohttp", seconds, concurrency, raw_check)


def _sync_rate(seconds: float, call: Callable[[int], object]) -> float:
    count = 0
    start = time.monotonic()
    while time.monotonic() < start + seconds:
        call(count)
        count += 1
    return count / (time.monotonic() - start)


def clients(url: str, seconds: float, concurrency: int, customers: int) -> dict[str, float]:
    from autumn_sdk import Autumn

    result = asyncio.run(_async_clients(url, seconds, concurrency, customers))
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as raw:

        def raw_check(i: int) -> object:
            r = raw.post(
                "/v1/balances.check", json={"customer_id": f"c{i % customers}", "feature_id": "messages"}
            )
            r.raise_for_status()
            return r.json()

        result["sync_httpx"] = _sync_rate(seconds, raw_check)
    with Autumn(KEY, server_url=url) as autumn:
        result["sync_sdk"] = _sync_rate(
            seconds, lambda i: autumn.check(customer_id=f"c{i % customers}", feature_id="messages")
        )
    return result


def main() -> None:
    kind, *args = sys.argv[1:]
    if kind == "sqlite-floor":
        print(json.dumps(sqlite_floor(args[0], float(args[1]))))
    elif kind == "clients":
        print(json.dumps(clients(args[0], float(args[1]), int(args[2]), int(args[3]))))
    else:
        raise SystemExit(f"unknown probe {kind!r}")


if __name__ == "__main__":
    main()
