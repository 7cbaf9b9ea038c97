"""Load generators, always in a process of their own: ``wrk`` when installed, else a Python one.

:func:`run_load` keeps ``connections`` keep-alive connections busy for ``seconds`` with POSTs
cycling through ``requests`` and answers throughput, non-200 count and latency percentiles.  With
``keyed`` every request carries a fresh ``Idempotency-Key`` (as the SDK sends on every call).

``python -m bench.loadgen`` (a JSON spec on stdin) is the Python generator: asyncio over raw
sockets, one process, printing one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.serve import KEY

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Load:
    rps: float
    errors: int
    p50_ms: float
    p99_ms: float


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def _wrk_script(requests: list[tuple[str, str]], keyed: bool) -> str:
    paths = ",".join(_lua_string(p) for p, _ in requests)
    bodies = ",".join(_lua_string(b) for _, b in requests)
    prefix = secrets.token_hex(6)
    return f"""
local paths = {{{paths}}}
local bodies = {{{bodies}}}
local keyed = {"true" if keyed else "false"}
local counter = 0
local threads = {{}}
local i = 0
tid = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end
function init(args)
  i = math.random(1, #bodies)
end
function request()
  i = i + 1
  local n = (i % #bodies) + 1
  local headers = {{}}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer {KEY}"
  if keyed then headers["Idempotency-Key"] = "{prefix}-" .. tid .. "-" .. i end
  return wrk.format("POST", paths[n], headers, bodies[n])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\nBENCH {{"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%f,"p99_us":%f}}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _run_wrk(
    port: int, requests: list[tuple[str, str]], seconds: float, connections: int, keyed: bool
) -> Load:
    wrk = wrk_path()
    assert wrk is not None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_wrk_script(requests, keyed))
        script = f.name
    try:
        threads = max(1, min(2, connections))
        done = subprocess.run(
            [
                *(
                    wrk,
                    f"-t{threads}",
                    f"-c{connections}",
                    f"-d{max(1, round(seconds))}s",
                    "--timeout",
                    "10s",
                ),
                *("-s", script, f"http://127.0.0.1:{port}"),
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    finally:
        os.unlink(script)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    r = json.loads(line[6:])
    return Load(
        rps=r["requests"] / (r["duration_us"] / 1e6),
        errors=int(r["errors"]),
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
    )


def _run_python(
    port: int, requests: list[tuple[str, str]], seconds: float, connections: int, keyed: bool
) -> Load:
    spec = {
        "port": port,
        "requests": requests,
        "seconds": seconds,
        "connections": connections,
        "keyed": keyed,
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr[-2000:]}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    return Load(rps=r["rps"], errors=r["errors"], p50_ms=r["p50_ms"], p99_ms=r["p99_ms"])


GENERATOR = "wrk" if wrk_path() else "python"


def run_load(
    port: int, requests: list[tuple[str, str]], seconds: float, connections: int = 16, keyed: bool = False
) -> Load:
    """One bounded load against 127.0.0.1:``port``; ``requests`` are (path, JSON body) pairs."""
    if GENERATOR == "wrk":
        return _run_wrk(port, requests, seconds, connections, keyed)
    return _run_python(port, requests, seconds, connections, keyed)


# ------------------------------------------------------------------ the Python generator (child process)


def _raw(path: str, body: str, key: str | None) -> bytes:
    data = body.encode()
    extra = f"Idempotency-Key: {key}\r\n" if key else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n{extra}"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode() + data


async def _connection(
    n: int, spec: dict[str, object], deadline: float, latencies: list[float], errors: list[int]
) -> None:
    requests = spec["requests"]
    assert isinstance(requests, list)
    prefix = secrets.token_hex(6)
    port = spec["port"]
    assert isinstance(port, int)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = n * 7919
    try:
        while time.monotonic() < deadline:
            path, body = requests[i % len(requests)]
            i += 1
            key = f"{prefix}-{n}-{i}" if spec["keyed"] else None
            started = time.perf_counter()
            writer.write(_raw(path, body, key))
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if int(head[9:12]) != 200:
                errors[0] += 1
    finally:
        writer.close()


async def _generate(spec: dict[str, object]) -> dict[str, float]:
    latencies: list[float] = []
    errors = [0]
    seconds = spec["seconds"]
    connections = spec["connections"]
    assert isinstance(seconds, (int, float)) and isinstance(connections, int)
    start = time.monotonic()
    deadline = start + seconds
    await asyncio.gather(*[_connection(n, spec, deadline, latencies, errors) for n in range(connections)])
    elapsed = time.monotonic() - start
    ordered = sorted(latencies) or [0.0]
    return {
        "rps": len(latencies) / elapsed,
        "errors": errors[0],
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


def main() -> None:
    spec = json.loads(sys.stdin.read())
    print(json.dumps(asyncio.run(_generate(spec))))


if __name__ == "__main__":
    main()
