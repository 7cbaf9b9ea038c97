"""The HTTP stack ``autumn-server`` runs: httptools + uvloop by default, h11 + asyncio on request.

The processes' own memory maps prove which implementation runs (uvicorn imports only the parser and
loop it was given), and the tests' in-process servers run the same stack without touching the test
process's event-loop policy (pytest-asyncio shares it).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from reference_server.settings import load_settings, server_stack
from reference_server.testing import free_port, fresh_sqlite_url, serve_app

REPO = Path(__file__).resolve().parents[2]
KEY = "am_sk_test_http_stack_suite_key"
FAST = importlib.util.find_spec("httptools") is not None and importlib.util.find_spec("uvloop") is not None
needs_fast = pytest.mark.skipif(not FAST, reason="uvicorn[standard] (httptools, uvloop) is not installed")
needs_proc = pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/<pid>/maps")


def _loaded(pid: int) -> set[str]:
    """Which of httptools and uvloop the process has loaded (their C extensions in its memory map)."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {name for name in ("httptools", "uvloop") if f"/{name}/" in maps}


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


@contextlib.contextmanager
def autumn_server(tmp: Path, *args: str, **env: str) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """``python -m reference_server ARGS`` on a fresh SQLite file; yields (process, url, stdout file)."""
    port = free_port()
    out = tmp / f"server-{port}.out"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AUTUMN_", "STRIPE_", "PROMETHEUS_"))}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), clean.get("PYTHONPATH")]))
    with fresh_sqlite_url() as db, out.open("wb") as out_f:
        process = subprocess.Popen(
            [sys.executable, "-m", "reference_server", "--port", str(port), "--database-url", db, *args],
            stdout=out_f,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**clean, "AUTUMN_SECRET_KEY": KEY, **env},
            cwd=tmp,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                if process.poll() is not None:
                    pytest.fail(f"autumn-server exited ({process.returncode}):\n{out.read_text()}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    pytest.fail(f"autumn-server was not ready in time:\n{out.read_text()}")
                time.sleep(0.2)
            yield process, url, out
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def _serves(url: str) -> None:
    """A real call through the whole stack: a customer created, then checked."""
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        created = client.post("/v1/customers.get_or_create", json={"customer_id": "stack_customer"})
        assert created.status_code == 200, created.text
        body = {"customer_id": "stack_customer", "feature_id": "none"}
        check = client.post("/v1/balances.check", json=body)
        assert check.status_code in (200, 404), check.text


@needs_fast
@needs_proc
def test_autumn_server_runs_httptools_and_uvloop_by_default(tmp_path: Path) -> None:
    with autumn_server(tmp_path, "--no-rate-limits") as (process, url, out):
        _serves(url)
        assert "HTTP: uvicorn, httptools + uvloop" in out.read_text().splitlines()
        assert _loaded(process.pid) == {"httptools", "uvloop"}


@needs_fast
@needs_proc
def test_every_worker_runs_httptools_and_uvloop(tmp_path: Path) -> None:
    with autumn_server(tmp_path, "--workers", "2", "--no-rate-limits") as (process, url, out):
        _serves(url)
        assert "HTTP: uvicorn, httptools + uvloop" in out.read_text().splitlines()
        # uvicorn's worker processes (the main one only supervises them); each loads its stack as it starts
        deadline = time.monotonic() + 60
        while True:
            stacks = [_loaded(pid) for pid in _children(process.pid)]
            if stacks.count({"httptools", "uvloop"}) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert stacks.count({"httptools", "uvloop"}) == 2, (stacks, out.read_text())


@needs_proc
@pytest.mark.parametrize("how", ["flags", "variables"])
def test_h11_and_asyncio_on_request(tmp_path: Path, how: str) -> None:
    args, env = (
        (("--http", "h11", "--loop", "asyncio"), {})
        if how == "flags"
        else ((), {"AUTUMN_HTTP": "h11", "AUTUMN_LOOP": "asyncio"})
    )
    with autumn_server(tmp_path, "--no-rate-limits", *args, **env) as (process, url, out):
        _serves(url)
        assert "HTTP: uvicorn, h11 + asyncio" in out.read_text().splitlines()
        assert _loaded(process.pid) == set()


def test_a_bad_choice_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reference_server", "--http", "wsgi"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("autumn-server: --http / AUTUMN_HTTP 'wsgi': "), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_missing_extras_fall_back_to_the_pure_python_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    stack = load_settings({}).server_stack()
    assert (stack.http, stack.loop) == ("h11", "asyncio")
    assert stack.fallbacks == (
        "httptools is not installed: h11 instead",
        "uvloop is not installed: asyncio instead",
    )
    assert server_stack("h11", "asyncio").fallbacks == ()


@needs_fast
def test_in_process_servers_run_uvloop_without_a_global_policy() -> None:
    async def which(request: Request) -> JSONResponse:
        return JSONResponse({"loop": type(asyncio.get_running_loop()).__module__})

    policy = asyncio.get_event_loop_policy()
    with serve_app(Starlette(routes=[Route("/loop", which)])) as url:
        served = httpx.get(url + "/loop", timeout=10).json()
    assert served["loop"].startswith("uvloop")
    assert asyncio.get_event_loop_policy() is policy
    assert not type(policy).__module__.startswith("uvloop")
