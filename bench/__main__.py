"""``python -m bench``: every measurement of issue 13, each against a baseline measured in the same run.

    python -m bench                                  # every scenario, SQLite and PostgreSQL
    python -m bench --only check_track --duration 5  # one scenario, 5 s per load
    python -m bench --db sqlite --runs 1 --tiny      # seconds, for a smoke run

Every figure is the median of ``--runs`` runs; every ratio is the median of the per-run ratios of
the figure to its baseline (taken inside the same run, so it survives a change of machine where the
absolute figures do not).  Nothing here asserts a time: it prints.  Targets run in their own
processes (``bench.serve``) and the load comes from ``wrk`` or ``bench.loadgen``, in its own process.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import requires
from pathlib import Path
from typing import Any

import httpx

from bench import loadgen
from bench.serve import KEY

ROOT = Path(__file__).resolve().parent.parent
CUSTOMERS = 200


# ------------------------------------------------------------------ options, rows, medians


@dataclass
class Options:
    duration: float
    runs: int
    connections: int
    dbs: list[str]
    events: int
    customers: int
    features: int
    official_python: str | None
    seeded: int = CUSTOMERS
    sdk_python: str | None = None


@dataclass
class Row:
    scenario: str
    what: str
    figure: str
    baseline: str
    ratio: str

    def line(self) -> str:
        return f"| {self.scenario} | {self.what} | {self.figure} | {self.baseline} | {self.ratio} |"


@dataclass
class Runs:
    """Figures collected run by run; medians and per-run ratios at the end."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)

    def median(self, name: str) -> float:
        return statistics.median(self.values[name])

    def ratio(self, name: str, baseline: str) -> float:
        pairs = zip(self.values[name], self.values[baseline], strict=True)
        return statistics.median(v / b if b else float("inf") for v, b in pairs)


def _fmt(value: float, unit: str) -> str:
    if unit == "req/s" or unit == "calls/s" or unit == "tx/s":
        return f"{value / 1000:.2f}k {unit}" if value >= 1000 else f"{value:.0f} {unit}"
    if unit == "ms":
        return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:.1f} {unit}"


def row(
    scenario: str, runs: Runs, name: str, unit: str, baseline: str | None, label: str = "", suffix: str = ""
) -> Row:
    figure = _fmt(runs.median(name), unit) + suffix
    if baseline is None:
        return Row(scenario, name, figure, "", "")
    ratio = runs.ratio(name, baseline)
    text = f"{ratio:.2f}" if ratio < 10 else f"{ratio:.0f}x"
    return Row(scenario, name, figure, f"{label or baseline}: {_fmt(runs.median(baseline), unit)}", text)


# ------------------------------------------------------------------ processes under test


def _free_port() -> int:
    from reference_server.testing import free_port

    return free_port()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Proc:
    port: int
    popen: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu(self) -> float:
        return _cpu_seconds(self.popen.pid)


@contextlib.contextmanager
def serve(kind: str, *args: str, port: int | None = None) -> Iterator[Proc]:
    """``python -m bench.serve KIND`` in a child process; yields once it answers HTTP."""
    port = port or _free_port()
    from reference_server.testing import DEFAULT_TEST_ENCRYPTION_KEY

    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTUMN_ENCRYPTION_KEYS": DEFAULT_TEST_ENCRYPTION_KEY}
    popen = subprocess.Popen(
        [sys.executable, "-m", "bench.serve", kind, "--port", str(port), *args], env=env, cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=2)  # any answer: the server is up
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or popen.poll() is not None:
                    raise RuntimeError(f"{kind} server did not start") from None
                time.sleep(0.1)
        yield Proc(port, popen)
    finally:
        popen.terminate()
        try:
            popen.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a stuck target must not hide the error that got us here
            popen.kill()
            popen.wait(timeout=30)


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh scratch database (SQLite file, or ``CREATE DATABASE autumn_test_<random>``), dropped after."""
    from reference_server.testing import fresh_database_url

    with fresh_database_url(kind) as url:
        yield url


def api(proc: Proc) -> httpx.Client:
    return httpx.Client(base_url=proc.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120)


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.url.path}: {response.status_code} {response.text[:500]}")
    return response.json()


def seed(proc: Proc, customers: int = CUSTOMERS, features: int = 1, threads: int = 8) -> None:
    """Features ``messages`` (+ ``f1``..), a free auto-enabled plan holding them, ``customers`` customers."""
    with api(proc) as c:
        ids = ["messages", *[f"f{i}" for i in range(1, features)]]
        for fid in ids:
            _ok(
                c.post(
                    "/v1/features.create",
                    json={"feature_id": fid, "name": fid, "type": "metered", "consumable": True},
                )
            )
        items = [{"feature_id": fid, "included": 10**9, "reset": {"interval": "month"}} for fid in ids]
        _ok(
            c.post(
                "/v1/plans.create",
                json={"plan_id": "free", "name": "Free", "auto_enable": True, "items": items},
            )
        )

        def create(i: int) -> None:
            _ok(c.post("/v1/customers.get_or_create", json={"customer_id": f"c{i}"}))

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(create, range(customers)))


def _body(**fields: Any) -> str:
    return json.dumps(fields, separators=(",", ":"))


def spread(o: Options, path: str) -> list[tuple[str, str]]:
    """One request per seeded customer, the load cycling through them."""
    return [(path, _body(customer_id=f"c{i}", feature_id="messages")) for i in range(o.seeded)]


def checks(o: Options) -> list[tuple[str, str]]:
    return spread(o, "/v1/balances.check")


def tracks(o: Options) -> list[tuple[str, str]]:
    return spread(o, "/v1/balances.track")


HOT = [("/v1/balances.track", _body(customer_id="c0", feature_id="messages"))]


def load(proc: Proc, requests: list[tuple[str, str]], o: Options, keyed: bool = False) -> loadgen.Load:
    result = loadgen.run_load(proc.port, requests, o.duration, o.connections, keyed)
    if result.errors:
        print(f"  (note: {result.errors} non-200 answers or socket errors during this load)", file=sys.stderr)
    return result


def warm(proc: Proc, requests: list[tuple[str, str]], o: Options) -> None:
    loadgen.run_load(proc.port, requests, min(o.duration, 0.5), o.connections)


# ------------------------------------------------------------------ scenarios


def check_track(o: Options) -> list[Row]:
    """check / track req/s at ``--connections`` on each database vs the bare Starlette + pydantic endpoint."""
    runs = Runs()
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(serve("baseline"))
        servers = {}
        for db in o.dbs:
            servers[db] = stack.enter_context(
                serve("server", "--database-url", stack.enter_context(database(db)))
            )
            seed(servers[db], o.seeded)
            warm(servers[db], checks(o), o)
        warm(base, checks(o), o)
        for _ in range(o.runs):
            runs.add("bare endpoint", load(base, checks(o), o).rps)
            for db, proc in servers.items():
                runs.add(f"{db} check, c{o.connections}", load(proc, checks(o), o).rps)
                runs.add(f"{db} track, c{o.connections}", load(proc, tracks(o), o).rps)
    rows = [row("check_track", runs, "bare endpoint", "req/s", None)]
    for db in o.dbs:
        for op in ("check", "track"):
            rows.append(row("check_track", runs, f"{db} {op}, c{o.connections}", "req/s", "bare endpoint"))
    return rows


def keyed_track(o: Options) -> list[Row]:
    """track with a fresh Idempotency-Key on every call (what the SDK sends) vs the same without a key."""
    runs = Runs()
    rows = []
    for db in o.dbs:
        with database(db) as url, serve("server", "--database-url", url) as proc:
            seed(proc, o.seeded)
            warm(proc, tracks(o), o)
            for _ in range(o.runs):
                runs.add(f"{db} track, keyless", load(proc, tracks(o), o).rps)
                runs.add(f"{db} track, Idempotency-Key", load(proc, tracks(o), o, keyed=True).rps)
        rows.append(row("keyed_track", runs, f"{db} track, Idempotency-Key", "req/s", f"{db} track, keyless"))
    return rows


PG_TRACK_SCRIPT = """\\set c random(0, 199)
BEGIN;
SELECT customer_id, balance FROM bench_balances WHERE customer_id = 'c' || :c;
UPDATE bench_balances SET balance = balance - 1 WHERE customer_id = 'c' || :c;
INSERT INTO bench_events (id, customer_id, feature_id, value, properties, timestamp)
  VALUES (md5(random()::text || clock_timestamp()::text), 'c' || :c, 'messages', 1, '{}', 0);
COMMIT;
"""
PG_HOT_SCRIPT = "UPDATE bench_hot SET n = n + 1 WHERE id = 1;\n"
PG_FLOOR_SCHEMA = """
CREATE TABLE bench_balances (customer_id text PRIMARY KEY, balance double precision NOT NULL);
INSERT INTO bench_balances SELECT 'c' || g, 1e12 FROM generate_series(0, 199) g;
CREATE TABLE bench_events (pk bigserial PRIMARY KEY, id text UNIQUE NOT NULL,
  customer_id text NOT NULL, feature_id text NOT NULL, value double precision NOT NULL,
  properties jsonb NOT NULL, timestamp bigint NOT NULL);
CREATE INDEX ix_bench_events_customer_ts ON bench_events (customer_id, timestamp);
CREATE TABLE bench_hot (id int PRIMARY KEY, n bigint NOT NULL);
INSERT INTO bench_hot VALUES (1, 0);
"""


@contextlib.contextmanager
def pg_floor_db() -> Iterator[str]:
    """A scratch database holding the floor's own tables (never the server's)."""
    import psycopg

    with database("postgres") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(PG_FLOOR_SCHEMA)  # type-checked as a plain literal query
        yield url


def pgbench(url: str, script: str, o: Options) -> float:
    """Transactions per second of ``script`` under pgbench at ``--connections`` clients."""
    from urllib.parse import urlparse

    exe = shutil.which("pgbench")
    if exe is None:
        raise RuntimeError("pgbench is not installed")
    u = urlparse(url)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    try:
        done = subprocess.run(
            [
                *(exe, "-n", "-c", str(o.connections), "-j", "2", "-T", str(max(1, round(o.duration)))),
                *("-f", f.name, "-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432)),
                *("-U", u.username or "postgres", u.path.lstrip("/")),
            ],
            capture_output=True,
            text=True,
            timeout=o.duration + 60,
        )
    finally:
        os.unlink(f.name)
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    if m is None:
        raise RuntimeError(f"pgbench failed: {done.stdout[-1000:]} {done.stderr[-1000:]}")
    return float(m.group(1))


def floors(o: Options) -> list[Row]:
    """track vs the database doing the same transaction: pgbench (PostgreSQL), a Python loop (SQLite)."""
    runs = Runs()
    rows = []
    if "postgres" in o.dbs:
        with (
            pg_floor_db() as floor,
            database("postgres") as url,
            serve("server", "--database-url", url) as proc,
        ):
            seed(proc, o.seeded)
            warm(proc, tracks(o), o)
            for _ in range(o.runs):
                runs.add("pgbench, the same 5 statements", pgbench(floor, PG_TRACK_SCRIPT, o))
                runs.add(f"postgres track, c{o.connections}", load(proc, tracks(o), o).rps)
        rows.append(
            row("floors", runs, f"postgres track, c{o.connections}", "tx/s", "pgbench, the same 5 statements")
        )
    if "sqlite" in o.dbs:
        with (
            tempfile.TemporaryDirectory(prefix="autumn-bench-") as tmp,
            database("sqlite") as url,
            serve("server", "--database-url", url) as proc,
        ):
            seed(proc, o.seeded)
            warm(proc, tracks(o), o)
            for _ in range(o.runs):
                done = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.probes",
                        "sqlite-floor",
                        f"{tmp}/floor.db",
                        str(o.duration),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=ROOT,
                )
                runs.add("Python loop, same transaction", json.loads(done.stdout)["tps"])
                runs.add(f"sqlite track, c{o.connections}", load(proc, tracks(o), o).rps)
        rows.append(
            row("floors", runs, f"sqlite track, c{o.connections}", "tx/s", "Python loop, same transaction")
        )
    return rows


def hot_row(o: Options) -> list[Row]:
    """All tracks on ONE customer (PostgreSQL) vs pgbench incrementing one row."""
    if "postgres" not in o.dbs:
        return []
    runs = Runs()
    with pg_floor_db() as floor, database("postgres") as url, serve("server", "--database-url", url) as proc:
        seed(proc, o.seeded)
        warm(proc, HOT, o)
        for _ in range(o.runs):
            runs.add("pgbench hot-row UPDATE", pgbench(floor, PG_HOT_SCRIPT, o))
            result = load(proc, HOT, o)
            runs.add("postgres track, one customer", result.rps)
            runs.add("p99", result.p99_ms)
    p99 = f", p99 {runs.median('p99'):.0f} ms"
    return [
        row("hot_row", runs, "postgres track, one customer", "tx/s", "pgbench hot-row UPDATE", suffix=p99)
    ]


def scale_out(o: Options) -> list[Row]:
    """2 server processes sharing one port (SO_REUSEPORT) on one PostgreSQL vs 1, same load generator."""
    if "postgres" not in o.dbs:
        return []
    runs = Runs()
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(database("postgres"))
        one = stack.enter_context(serve("server", "--database-url", url, "--reuse-port"))
        seed(one, o.seeded)
        two_port = _free_port()
        two = stack.enter_context(serve("server", "--database-url", url, "--reuse-port", port=two_port))
        stack.enter_context(serve("server", "--database-url", url, "--reuse-port", port=two_port))
        warm(one, checks(o), o)
        warm(two, checks(o), o)
        for _ in range(o.runs):
            runs.add("1 process check", load(one, checks(o), o).rps)
            runs.add("2 processes check", load(two, checks(o), o).rps)
            runs.add("1 process track", load(one, tracks(o), o).rps)
            runs.add("2 processes track", load(two, tracks(o), o).rps)
    return [
        row("scale_out", runs, "2 processes check", "req/s", "1 process check"),
        row("scale_out", runs, "2 processes track", "req/s", "1 process track"),
    ]


def _seed_events(proc: Proc, customer: str, count: int) -> None:
    """``count`` events for ``customer`` through ``balances.batch_track``, 1,000 a call, one call at a time.

    One customer's batches serialize on its balance anyway; parallel ones only queue for the pool.
    """
    with api(proc) as c:
        _ok(c.post("/v1/customers.get_or_create", json={"customer_id": customer}))
        sizes = [min(1000, count - start) for start in range(0, count, 1000)]

        def batch(size: int) -> None:
            items = [{"customer_id": customer, "feature_id": "messages", "value": 1} for _ in range(size)]
            r = c.post("/v1/balances.batch_track", json=items)
            if r.status_code >= 400:
                raise RuntimeError(f"batch_track: {r.status_code} {r.text[:300]}")

        for size in sizes:
            batch(size)


def _aggregate_ms(c: httpx.Client, customer: str) -> float:
    started = time.perf_counter()
    _ok(
        c.post(
            "/v1/events.aggregate", json={"customer_id": customer, "feature_id": "messages", "range": "30d"}
        )
    )
    return (time.perf_counter() - started) * 1000


def aggregate(o: Options) -> list[Row]:
    """events.aggregate over a customer's ``--events`` events vs none; check p99 while it runs vs alone."""
    runs = Runs()
    rows = []
    n = f"{o.events:,}"
    for db in o.dbs:
        with database(db) as url, serve("server", "--database-url", url) as proc, api(proc) as c:
            seed(proc, o.seeded)
            _seed_events(proc, "heavy", o.events)
            _ok(c.post("/v1/customers.get_or_create", json={"customer_id": "idle"}))
            warm(proc, checks(o), o)
            for _ in range(o.runs):
                runs.add(
                    f"{db} aggregate, no events",
                    statistics.median(_aggregate_ms(c, "idle") for _ in range(5)),
                )
                runs.add(
                    f"{db} aggregate, {n} events",
                    statistics.median(_aggregate_ms(c, "heavy") for _ in range(3)),
                )
                alone = load(proc, checks(o), o)
                runs.add(f"{db} check p99 alone", alone.p99_ms)
                runs.add(f"{db} check alone, req/s", alone.rps)
                stop = threading.Event()

                def hammer(stop: threading.Event = stop) -> None:
                    with api(proc) as busy:
                        while not stop.is_set():
                            _aggregate_ms(busy, "heavy")

                thread = threading.Thread(target=hammer)
                thread.start()
                try:
                    during = load(proc, checks(o), o)
                    runs.add(f"{db} check p99 during aggregates", during.p99_ms)
                    runs.add(f"{db} check during aggregates, req/s", during.rps)
                finally:
                    stop.set()
                    thread.join()
        rows.append(row("aggregate", runs, f"{db} aggregate, {n} events", "ms", f"{db} aggregate, no events"))
        rows.append(
            row(
                "aggregate",
                runs,
                f"{db} check p99 during aggregates",
                "ms",
                f"{db} check p99 alone",
                # p99 counts only the checks that finished: their rate shows a stall p99 alone would hide
                suffix=f" ({runs.median(f'{db} check during aggregates, req/s'):.0f} req/s,"
                f" alone {runs.median(f'{db} check alone, req/s'):.0f})",
            )
        )
    return rows


def _list_ms(c: httpx.Client) -> float:
    """One ``customers.list`` until its whole body is read (not decoded: the client's JSON parse
    would add the same milliseconds to every figure and hide part of what the server costs)."""
    started = time.perf_counter()
    response = c.post("/v1/customers.list", json={})
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code >= 400:
        raise RuntimeError(f"customers.list: {response.status_code} {response.text[:500]}")
    return elapsed


def customers_list(o: Options) -> list[Row]:
    """customers.list with ``--customers`` customers / ``--features`` features vs 10 customers, 5 features,
    and the ``--features`` page vs its floor: the same answer sent by a bare endpoint (``bench.serve
    answer``) that encodes it on every request with the server's encoder, on the same HTTP stack."""
    runs = Runs()
    rows = []
    wide = f"10 customers, {o.features} features"
    shapes = {
        "10 customers, 5 features": (10, 5),
        f"{o.customers:,} customers, 5 features": (o.customers, 5),
        wide: (10, o.features),
    }
    for db in o.dbs:
        floor = f"{db} the same answer, bare endpoint"
        with contextlib.ExitStack() as stack:
            clients = {}
            for shape, (customers, features) in shapes.items():
                proc = stack.enter_context(
                    serve("server", "--database-url", stack.enter_context(database(db)))
                )
                seed(proc, customers=customers, features=features)
                clients[f"{db} list, {shape}"] = stack.enter_context(api(proc))
                _list_ms(clients[f"{db} list, {shape}"])
            answer = clients[f"{db} list, {wide}"].post("/v1/customers.list", json={}).content
            answer_file = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "answer.json"
            answer_file.write_bytes(answer)
            clients[floor] = stack.enter_context(
                api(stack.enter_context(serve("answer", "--answer-file", str(answer_file))))
            )
            if clients[floor].post("/v1/customers.list", json={}).content != answer:
                raise RuntimeError("the bare endpoint does not send the list's answer byte for byte")
            for _ in range(o.runs):
                for name, c in clients.items():
                    runs.add(name, statistics.median(_list_ms(c) for _ in range(7)))
        base = f"{db} list, 10 customers, 5 features"
        rows.append(row("customers_list", runs, base, "ms", None))
        rows.append(
            row("customers_list", runs, f"{db} list, {o.customers:,} customers, 5 features", "ms", base)
        )
        rows.append(row("customers_list", runs, f"{db} list, {wide}", "ms", base))
        rows.append(
            row(
                "customers_list",
                runs,
                f"{db} list, {wide}",
                "ms",
                floor,
                suffix=f" ({len(answer) / 1e6:.2f} MB)",
            )
        )
    return rows


GET_OR_CREATE = [("/api/autumn/getOrCreateCustomer", "{}")]


def handler(o: Options) -> list[Row]:
    """POST /api/autumn/getOrCreateCustomer via the Starlette adapter vs a bare endpoint calling the SDK."""
    runs = Runs()
    db = o.dbs[0]
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(serve("server", "--database-url", stack.enter_context(database(db))))
        seed(server, o.seeded)
        apps = {
            "handler": stack.enter_context(
                serve("handler", "--autumn-url", server.url, "--customers", str(o.seeded))
            ),
            "SDK directly": stack.enter_context(
                serve("sdk", "--autumn-url", server.url, "--customers", str(o.seeded))
            ),
        }
        for proc in apps.values():
            warm(proc, GET_OR_CREATE, o)
        for _ in range(o.runs):
            for name, proc in apps.items():
                cpu = proc.cpu()
                result = load(proc, GET_OR_CREATE, o)
                requests = result.rps * o.duration
                runs.add(f"{name}, c{o.connections}", result.rps)
                runs.add(f"{name} CPU per request", (proc.cpu() - cpu) * 1000 / max(requests, 1))
    return [
        row("handler", runs, f"handler, c{o.connections}", "req/s", f"SDK directly, c{o.connections}"),
        row("handler", runs, "handler CPU per request", "ms", "SDK directly CPU per request"),
    ]


def _clients_probe(url: str, o: Options) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.probes", "clients", url, str(o.duration), "50", str(o.seeded)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


ASYNC_SDK = "AsyncAutumn, 50 concurrent check"
ASYNC_RAW = "raw httpx async, 50 concurrent"
ASYNC_AIO = "AsyncAutumn(http_client=DefaultAioHttpClient()), 50 concurrent"
RAW_AIO = "raw aiohttp, 50 concurrent"
ON_BARE = " (bare endpoint)"
CPU = ", client CPU per call"


def sdk_client(o: Options) -> list[Row]:
    """AsyncAutumn, 50 concurrent checks, over httpx and over aiohttp (``DefaultAioHttpClient``) vs
    raw httpx async and raw aiohttp; sync Autumn vs raw httpx sync. Against the reference server,
    then against the bare endpoint (``bench.serve baseline``), which isolates what the client costs;
    there, also the client process's CPU per call (steadier than calls/s on a loaded machine)."""
    runs = Runs()
    db = o.dbs[0]
    with database(db) as url, serve("server", "--database-url", url) as server, serve("baseline") as bare:
        seed(server, o.seeded)
        for _ in range(o.runs):
            for target, suffix in ((server, ""), (bare, ON_BARE)):
                result = _clients_probe(target.url, o)
                for name, key in (
                    (ASYNC_SDK, "async_sdk"),
                    (ASYNC_RAW, "async_httpx"),
                    (ASYNC_AIO, "async_sdk_aiohttp"),
                    (RAW_AIO, "async_aiohttp"),
                ):
                    if key in result:  # the aiohttp ones need httpx-aiohttp
                        runs.add(name + suffix, result[key])
                        runs.add(name + suffix + CPU, result[key + "_cpu_us"])
                if not suffix:
                    runs.add("Autumn (sync), one at a time", result["sync_sdk"])
                    runs.add("raw httpx sync", result["sync_httpx"])
    rows: list[Row] = []
    for suffix in ("", ON_BARE):
        rows.append(row("sdk_client", runs, ASYNC_SDK + suffix, "calls/s", ASYNC_RAW + suffix))
        if ASYNC_AIO + suffix in runs.values:
            rows.append(row("sdk_client", runs, ASYNC_AIO + suffix, "calls/s", ASYNC_SDK + suffix))
            rows.append(row("sdk_client", runs, ASYNC_AIO + suffix, "calls/s", RAW_AIO + suffix))
    # client CPU per call at the bare endpoint: what the client itself costs, whatever the load
    for name, baseline in ((ASYNC_SDK, ASYNC_RAW), (ASYNC_AIO, ASYNC_SDK), (ASYNC_AIO, RAW_AIO)):
        if name + ON_BARE + CPU in runs.values:
            rows.append(row("sdk_client", runs, name + ON_BARE + CPU, "µs", baseline + ON_BARE + CPU))
    if ASYNC_AIO not in runs.values:
        print("  (sdk_client: httpx-aiohttp is not installed: no aiohttp rows)", file=sys.stderr)
    rows.append(row("sdk_client", runs, "Autumn (sync), one at a time", "calls/s", "raw httpx sync"))
    return rows


# Peak RSS from VmHWM: ru_maxrss of a child carries its forking parent's high-water mark over exec.
PEAK = "print([ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM:')][0])"
COLD = f"""
import sys
from autumn_sdk import Autumn
with Autumn(sys.argv[1], server_url=sys.argv[2]) as autumn:
    autumn.check(customer_id="c0", feature_id="messages")
{PEAK}
"""
OFFICIAL_COLD = f"""
import sys
from autumn_sdk import Autumn
with Autumn(secret_key=sys.argv[1], server_url=sys.argv[2]) as autumn:
    autumn.check(customer_id="c0", feature_id="messages")
{PEAK}
"""
BARE = PEAK
# The floor of any client on this stack: httpx and pydantic imported, a client built (its TLS
# context included, as every httpx client has one), one POST, its answer validated by one model.
STACK_FLOOR = f"""
import sys
import httpx
from pydantic import BaseModel
class Answer(BaseModel):
    allowed: bool
with httpx.Client(base_url=sys.argv[2], headers={{"Authorization": "Bearer " + sys.argv[1]}}) as http:
    body = {{"customer_id": "c0", "feature_id": "messages"}}
    Answer.model_validate(http.post("/v1/balances.check", json=body).json())
{PEAK}
"""


# Bytecode for the project's modules, as an installed package has it (pip compiles on install):
# without it a PYTHONDONTWRITEBYTECODE shell would time the compiling of our sources too.
PYCACHE = Path(tempfile.gettempdir()) / "autumn-bench-pycache"


@dataclass
class ColdRun:
    wall_s: float
    cpu_s: float
    """User + system time of the interpreter: steadier than wall time on a busy machine."""
    peak_mib: float


def _cold(python: str, code: str, *args: str, isolated: bool = False) -> ColdRun:
    """Wall and CPU seconds and peak RSS of a fresh interpreter running ``code``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONPYCACHEPREFIX": str(PYCACHE)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [python, *(["-I"] if isolated else []), "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return ColdRun(wall, cpu, int(done.stdout.split()[-1]) / 1024)


OURS = "import + first check"
OFFICIAL = "official SDK import + first check"
SDK_VENV = Path(tempfile.gettempdir()) / "autumn-bench-sdk-venv"


def _sdk_python() -> str:
    """An interpreter with the SDK's own dependencies and nothing else, as ``pip install autumn-kit`` gives.

    The development environment is not what a user imports from: with ``click`` and ``rich``
    installed (the CLI's extras), ``import httpx`` also loads its command line, some 0.3 s. The
    virtualenv is built once under the temp dir (pip, from the package index) and reused while the
    dependencies stay the same; the project's own code comes from the checkout (``PYTHONPATH``).
    """

    needed = sorted(r for r in requires("autumn-kit") or [] if "extra ==" not in r)
    python = SDK_VENV / "bin" / "python"
    stamp = SDK_VENV / "requirements.txt"
    if python.exists() and stamp.exists() and stamp.read_text().split("\n") == needed:
        return str(python)
    shutil.rmtree(SDK_VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(SDK_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *needed], check=True, capture_output=True)
    stamp.write_text("\n".join(needed))
    return str(python)


def cold_import(o: Options) -> list[Row]:
    """A fresh interpreter: import the SDK, build a client, one check; vs a bare interpreter."""
    runs = Runs()
    db = o.dbs[0]
    python = o.sdk_python or sys.executable
    if python == "auto":
        try:
            python = _sdk_python()
        except subprocess.CalledProcessError as exc:
            print(
                f"  (cold_import: no SDK-only virtualenv ({exc}); measuring {sys.executable})",
                file=sys.stderr,
            )
            python = sys.executable
    print(f"  (cold_import: the SDK imported by {python})", file=sys.stderr)
    with database(db) as url, serve("server", "--database-url", url) as server:
        seed(server, customers=1)
        _cold(python, COLD, KEY, server.url)  # writes the bytecode; not counted
        if o.official_python:
            _cold(o.official_python, OFFICIAL_COLD, KEY, server.url, isolated=True)
        for _ in range(o.runs):
            bare = _cold(python, BARE)
            floor = _cold(python, STACK_FLOOR, KEY, server.url)
            ours = _cold(python, COLD, KEY, server.url)
            for name, run in (("bare interpreter", bare), ("httpx + pydantic floor", floor), (OURS, ours)):
                runs.add(name, run.wall_s)
                runs.add(f"{name}, CPU", run.cpu_s)
                runs.add(f"{name}, peak RSS", run.peak_mib)
            runs.add(f"{OURS}, above bare", ours.wall_s - bare.wall_s)
            runs.add(f"{OURS}, CPU above bare", ours.cpu_s - bare.cpu_s)
            runs.add(f"{OURS}, peak RSS above bare", ours.peak_mib - bare.peak_mib)
            if o.official_python:
                official = _cold(o.official_python, OFFICIAL_COLD, KEY, server.url, isolated=True)
                runs.add(OFFICIAL, official.wall_s)
                runs.add(f"{OFFICIAL}, CPU", official.cpu_s)
                runs.add(f"{OFFICIAL}, peak RSS", official.peak_mib)
    rows = [
        row("cold_import", runs, OURS, "s", "bare interpreter"),
        row("cold_import", runs, f"{OURS}, above bare", "s", None),
        row("cold_import", runs, f"{OURS}, CPU above bare", "s", None),
        row("cold_import", runs, OURS, "s", "httpx + pydantic floor"),
        row("cold_import", runs, f"{OURS}, CPU", "s", "httpx + pydantic floor, CPU"),
        row("cold_import", runs, f"{OURS}, peak RSS", "MiB", "bare interpreter, peak RSS"),
        row("cold_import", runs, f"{OURS}, peak RSS above bare", "MiB", None),
        row("cold_import", runs, f"{OURS}, peak RSS", "MiB", "httpx + pydantic floor, peak RSS"),
    ]
    if o.official_python:
        rows.append(row("cold_import", runs, OURS, "s", OFFICIAL))
        rows.append(row("cold_import", runs, f"{OURS}, CPU", "s", f"{OFFICIAL}, CPU"))
        rows.append(row("cold_import", runs, f"{OURS}, peak RSS", "MiB", f"{OFFICIAL}, peak RSS"))
    return rows


def http_stack(o: Options) -> list[Row]:
    """The bare endpoint on uvicorn's h11 + asyncio vs httptools + uvloop (when both are installed)."""
    import importlib.util

    if importlib.util.find_spec("httptools") is None or importlib.util.find_spec("uvloop") is None:
        return [Row("http_stack", "bare endpoint, httptools + uvloop", "not installed", "", "")]
    runs = Runs()
    with (
        serve("baseline", "--http", "h11", "--loop", "asyncio") as slow,
        serve("baseline", "--http", "httptools", "--loop", "uvloop") as fast,
    ):
        warm(slow, checks(o), o)
        warm(fast, checks(o), o)
        for _ in range(o.runs):
            runs.add("bare endpoint, h11 + asyncio", load(slow, checks(o), o).rps)
            runs.add("bare endpoint, httptools + uvloop", load(fast, checks(o), o).rps)
    return [
        row("http_stack", runs, "bare endpoint, h11 + asyncio", "req/s", "bare endpoint, httptools + uvloop")
    ]


CPU_REQUESTS = 2000


def _send(proc: Proc, requests: list[tuple[str, str]], n: int, keyed: bool, threads: int = 4) -> None:
    """Exactly ``n`` POSTs cycling through ``requests`` over ``threads`` keep-alive clients."""
    import secrets

    def worker(k: int) -> None:
        with api(proc) as c:
            for i in range(k, n, threads):
                path, body = requests[i % len(requests)]
                headers = {"Content-Type": "application/json"}
                if keyed:
                    headers["Idempotency-Key"] = secrets.token_hex(16)
                _ok(c.post(path, content=body, headers=headers))

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))


def cpu_per_request(o: Options) -> list[Row]:
    """The server process's CPU per check / keyed track (``/proc/<pid>/stat``, exactly N requests over 4
    connections) vs the bare endpoint's, measured the same way: load-independent, unlike req/s."""
    runs = Runs()
    n = 1000 if o.duration < 1 else CPU_REQUESTS  # enough 10 ms clock ticks even for the bare endpoint
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(serve("baseline"))
        servers = {}
        for db in o.dbs:
            servers[db] = stack.enter_context(
                serve("server", "--database-url", stack.enter_context(database(db)))
            )
            seed(servers[db], o.seeded)
        cases = [("bare endpoint", base, checks(o), False)]
        for db, proc in servers.items():
            cases += [
                (f"{db} check", proc, checks(o), False),
                (f"{db} track, Idempotency-Key", proc, tracks(o), True),
            ]
        for _, proc, requests, keyed in cases:
            _send(proc, requests, n // 4, keyed)
        for _ in range(o.runs):
            for name, proc, requests, keyed in cases:
                cpu = proc.cpu()
                _send(proc, requests, n, keyed)
                runs.add(f"{name}, CPU per request", (proc.cpu() - cpu) * 1e6 / n)
    rows = [row("cpu_per_request", runs, "bare endpoint, CPU per request", "µs", None)]
    for name, *_ in cases[1:]:
        rows.append(
            row("cpu_per_request", runs, f"{name}, CPU per request", "µs", "bare endpoint, CPU per request")
        )
    return rows


SCENARIOS: dict[str, Callable[[Options], list[Row]]] = {
    "check_track": check_track,
    "keyed_track": keyed_track,
    "cpu_per_request": cpu_per_request,
    "floors": floors,
    "hot_row": hot_row,
    "scale_out": scale_out,
    "aggregate": aggregate,
    "customers_list": customers_list,
    "handler": handler,
    "sdk_client": sdk_client,
    "cold_import": cold_import,
    "http_stack": http_stack,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.split("\n")[0] if __doc__ else None
    )
    p.add_argument("--only", default="", help="comma-separated scenarios: " + ", ".join(SCENARIOS))
    p.add_argument("--duration", type=float, default=2.0, help="seconds per load (default 2)")
    p.add_argument("--runs", type=int, default=3, help="runs per figure; the median is printed (default 3)")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--events", type=int, default=100_000, help="events of the aggregate scenario")
    p.add_argument("--customers", type=int, default=10_000, help="customers of the customers_list scenario")
    p.add_argument("--features", type=int, default=200, help="features of the customers_list scenario")
    p.add_argument("--generator", choices=("wrk", "python"), default=loadgen.GENERATOR)
    p.add_argument("--official-python", help="interpreter of a virtualenv holding the official autumn-sdk")
    p.add_argument(
        "--sdk-python",
        help="interpreter the cold_import scenario imports the SDK with (default auto: a virtualenv holding"
        " only the SDK's dependencies, built once with pip; the tiny run uses the running interpreter)",
    )
    p.add_argument("--tiny", action="store_true", help="a smoke run: 0.2 s loads, 1 run, small data sets")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    if "postgres" in dbs:
        from reference_server.testing import postgres_available

        if not postgres_available():
            print("PostgreSQL is not reachable on 127.0.0.1:5432: SQLite only", file=sys.stderr)
            dbs = [d for d in dbs if d != "postgres"] or ["sqlite"]
    o = Options(
        args.duration,
        args.runs,
        args.connections,
        dbs,
        args.events,
        args.customers,
        args.features,
        args.official_python,
        sdk_python=args.sdk_python or "auto",
    )
    if args.tiny:
        o = Options(
            0.2,
            1,
            min(args.connections, 4),
            dbs,
            300,
            30,
            8,
            args.official_python,
            seeded=10,
            sdk_python=args.sdk_python or sys.executable,
        )
        args.generator = "python"
    loadgen.GENERATOR = args.generator
    print(
        f"# python -m bench: {os.cpu_count()} CPUs, load generator {loadgen.GENERATOR},"
        f" {o.duration:g} s per load, median of {o.runs} run(s), {o.connections} connections,"
        f" databases {', '.join(dbs)}"
    )
    print("| scenario | what | figure | baseline (same run) | ratio |")
    print("|---|---|---|---|---|")
    sys.stdout.flush()
    for name in names:
        started = time.monotonic()
        for r in SCENARIOS[name](o):
            print(r.line(), flush=True)
        print(f"  ({name}: {time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
