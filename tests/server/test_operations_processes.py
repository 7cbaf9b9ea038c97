"""``autumn-server`` as an operator runs it: real processes on real PostgreSQL and Redis.

Several processes started at once on a fresh database (migrations once, no crash), ``--workers 2``
with shared metrics and JSON logs, the background jobs' lease taken over after a SIGKILL, every
start-up mistake's message and exit status, ``--demo`` key reuse, ``keys list`` and ``--version``.
Every wait is bounded; nothing asserts on elapsed time (the takeover's figure is printed).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from reference_server.store.db import Database
from reference_server.store.schema_version import head_revision
from reference_server.testing import free_port, fresh_postgres_url, fresh_sqlite_url

from .helpers import require_postgres
from .ops_support import require_redis

REPO = Path(__file__).resolve().parents[2]
KEY = "am_sk_test_operations_suite_key"
START_DEADLINE_S = 180.0
CLEAN_EXIT = (0, -signal.SIGTERM)
"""uvicorn shuts down gracefully on SIGTERM, then re-raises it (the exit a supervisor expects)."""


@dataclass
class ServerProcess:
    """One ``python -m reference_server ...`` process, its output in files."""

    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    port: int | None
    files: tuple[IO[bytes], IO[bytes]]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        """Poll ``/readyz`` until it answers 200; fail at once if the process exits."""
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited ({self.process.returncode}):\n{self.stderr()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/readyz", timeout=5).status_code == 200:
                    return
            time.sleep(0.2)
        pytest.fail(f"the server was not ready in time:\n{self.stderr()}")

    def wait_output(self, text: str) -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        while text not in self.stdout():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"never printed {text!r} ({self.process.returncode}):\n{self.stderr()}")
            time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=30)
        for f in self.files:
            f.close()
        return code


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTUMN_", "STRIPE_", "PROMETHEUS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@contextlib.contextmanager
def servers(tmp: Path, *commands: list[str], **env: str) -> Iterator[list[ServerProcess]]:
    """Start every command at once (``{port}`` in a command becomes a free port); stop them after."""
    started: list[ServerProcess] = []
    try:
        for i, command in enumerate(commands):
            port = free_port() if "{port}" in command else None
            args = [a.replace("{port}", str(port)) for a in command]
            out, err = tmp / f"p{i}-{secrets.token_hex(3)}.out", tmp / f"p{i}-{secrets.token_hex(3)}.err"
            out_f, err_f = out.open("wb"), err.open("wb")
            process = subprocess.Popen(
                [sys.executable, "-m", "reference_server", *args],
                stdout=out_f,
                stderr=err_f,
                stdin=subprocess.DEVNULL,
                env=_env(**env),
                cwd=tmp,
            )
            started.append(ServerProcess(process, out, err, port, (out_f, err_f)))
        yield started
    finally:
        for server in started:
            if server.process.poll() is None:
                server.stop()


def _cli(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reference_server", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_env(**env),
        cwd=cwd,
    )


def _metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` parsed with ``prometheus_client.parser``: (sample name, labels) -> value."""
    response = httpx.get(url + "/metrics", timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


# -- several processes on one fresh PostgreSQL database ---------------------------------------------


@pytest.mark.parametrize("count", [2, 3])
def test_processes_started_at_once_on_a_fresh_database_migrate_it_once(count: int, tmp_path: Path) -> None:
    require_postgres()
    with fresh_postgres_url() as url:
        command = ["--port", "{port}", "--database-url", url, "--secret-key", KEY, "--no-rate-limits"]
        with servers(tmp_path, *([command] * count)) as started:
            for server in started:
                server.wait_ready()
            for server in started:  # each serves with the one key registered once
                r = httpx.post(
                    server.url + "/v1/customers.get_or_create",
                    headers={"Authorization": f"Bearer {KEY}"},
                    json={"customer_id": f"c{server.port}"},
                    timeout=30,
                )
                assert r.status_code == 200, r.text
            codes = [server.stop() for server in started]
        errors = "\n".join(server.stderr() for server in started)
        db = Database(url)
        with db.read() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
            orgs = conn.execute(sa.text("SELECT count(*) FROM organizations")).scalar_one()
            keys = conn.execute(sa.text("SELECT count(*) FROM api_keys")).scalar_one()
        db.dispose()
    assert all(code in CLEAN_EXIT for code in codes), codes
    assert errors.count("Application shutdown complete") == count
    assert "Traceback" not in errors and "UniqueViolation" not in errors
    assert versions == [head_revision()]
    assert orgs == 1 and keys == 1


def test_migrate_command_and_web_processes_that_do_not_migrate(tmp_path: Path) -> None:
    require_postgres()
    with fresh_postgres_url() as url:
        refused = _cli("--database-url", url, "--secret-key", KEY, "--no-migrate-on-start", "--port", "1")
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert "run `autumn-server migrate` first" in refused.stderr
        migrated = _cli("migrate", "--database-url", url)
        assert migrated.returncode == 0, migrated.stderr
        assert f"is at revision {head_revision()}" in migrated.stdout
        again = _cli("migrate", "--database-url", url)  # nothing to do the second time
        assert again.returncode == 0 and head_revision() in again.stdout
        web = ["--port", "{port}", "--database-url", url, "--secret-key", KEY, "--no-migrate-on-start"]
        with servers(tmp_path, web) as (server,):
            server.wait_ready()
            assert httpx.get(server.url + "/readyz", timeout=30).json()["checks"]["migrations"] == "ok"


# -- --workers 2: shared metrics, request ids in JSON logs ------------------------------------------


def test_workers_share_metrics_and_log_request_ids_as_json(tmp_path: Path) -> None:
    require_postgres()
    require_redis()
    request_id = "ops-" + secrets.token_hex(6)
    with fresh_postgres_url() as url:
        command = [
            "--workers", "2", "--port", "{port}", "--database-url", url, "--secret-key", KEY,
            "--redis-url", "redis://127.0.0.1:6379/0", "--log-format", "json",
            "--rate-limit-overrides", '{"other": "3/minute"}',
        ]  # fmt: skip
        with servers(tmp_path, command) as (server,):
            server.wait_ready()
            assert "(2 workers)" in server.stdout()
            headers = {"Authorization": f"Bearer {KEY}"}
            body = {"customer_id": "w1", "feature_id": "nothing"}
            answers = [
                httpx.post(server.url + "/v1/balances.check", headers=headers, json=body, timeout=30)
                for _ in range(4)
            ]
            tagged = httpx.post(
                server.url + "/v1/balances.check",
                headers={**headers, "x-request-id": request_id},
                json=body,
                timeout=30,
            )
            assert tagged.headers["x-request-id"] == request_id
            assert all(a.headers["x-request-id"].startswith("req_") for a in answers)
            listed = [
                httpx.post(server.url + "/v1/features.list", headers=headers, json={}, timeout=30).status_code
                for _ in range(6)
            ]
            assert listed == [200, 200, 200, 429, 429, 429]  # one limit for both workers, through Redis
            metrics = _metrics(server.url)
            checks = sum(
                value
                for (name, labels), value in metrics.items()
                if name == "autumn_requests_total" and ("operation", "check") in labels
            )
            assert checks == 5  # counted in whichever worker served each, added up by the scrape
            leaders = metrics[("autumn_background_jobs_leader", ())]
            assert leaders == 1  # one of the two workers runs the background jobs
            assert any(name == "autumn_request_duration_seconds_bucket" for name, _ in metrics)
            assert server.stop() in CLEAN_EXIT
        records = [json.loads(line) for line in server.stderr().splitlines() if line.startswith("{")]
    access = [r for r in records if r.get("request_id") == request_id]
    assert access and access[0]["path"] == "/v1/balances.check" and access[0]["status"] == 404
    assert "Traceback" not in server.stderr()


# -- the background jobs' lease: one holder, taken over after a SIGKILL ------------------------------


class _HangingReceiver:
    """A webhook receiver whose first request hangs until released (as a slow receiver's does)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.arrived = threading.Condition()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                with receiver.arrived:
                    receiver.ids.append(self.headers["webhook-id"])
                    first = len(receiver.ids) == 1
                    receiver.arrived.notify_all()
                if first:
                    receiver.release.wait(60)
                with contextlib.suppress(OSError):  # the first caller is dead by then
                    self.send_response(204)
                    self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def wait_for(self, count: int) -> list[str]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.ids) >= count, 90)
            return list(self.ids)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _lease_holder_pid(db: Database) -> int | None:
    with db.read() as conn:
        holder = conn.execute(sa.text("SELECT holder FROM leases WHERE name = 'background-jobs'")).scalar()
    return None if holder is None else int(str(holder).split(":")[1])


def _delivery(db: Database) -> Any:
    with db.read() as conn:
        return conn.execute(
            sa.text("SELECT status, attempts, claimed_until, delivered_at FROM webhook_deliveries")
        ).one()


def test_a_webhook_delivery_is_claimed_once_and_taken_over_after_sigkill(tmp_path: Path) -> None:
    require_postgres()
    receiver = _HangingReceiver()
    lease = ["--job-lease-seconds", "2"]
    with fresh_postgres_url() as url:
        web = ["--port", "{port}", "--database-url", url, "--secret-key", KEY, "--no-rate-limits", *lease]
        worker = ["worker", "--database-url", url, "--worker-metrics-port", "{port}", *lease]
        db = Database(url)
        try:
            bystander = [*web, "--no-background-jobs"]  # serves the API, never runs the jobs
            with servers(tmp_path, web, worker, bystander) as (api, jobs, other):
                api.wait_ready()
                other.wait_ready()
                jobs.wait_output("Autumn background worker on")
                http = httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
                feature = {"feature_id": "m", "name": "M", "type": "metered", "consumable": True}
                item = {"feature_id": "m", "included": 1}
                plan = {"plan_id": "free", "name": "Free", "auto_enable": True, "items": [item]}
                for op, body in [
                    ("webhooks.create_endpoint", {"url": receiver.url}),
                    ("features.create", feature),
                    ("plans.create", plan),
                    ("customers.get_or_create", {"customer_id": "u1"}),
                    ("balances.track", {"customer_id": "u1", "feature_id": "m", "value": 1}),
                ]:
                    assert http.post(f"/v1/{op}", json=body).status_code == 200, op
                http.close()
                (message_id,) = receiver.wait_for(1)  # the lease holder is delivering: it hangs
                claim = _delivery(db)
                holder = _lease_holder_pid(db)
                by_pid = {api.process.pid: api, jobs.process.pid: jobs}
                assert claim.status == "pending" and claim.claimed_until is not None
                assert holder in by_pid
                worker_metrics = _metrics(jobs.url)  # the worker's own: is it the holder?
                leading = worker_metrics[("autumn_background_jobs_leader", ())]
                assert leading == (1 if holder == jobs.process.pid else 0)
                killed_at_ms = int(time.time() * 1000)
                by_pid[holder].process.send_signal(signal.SIGKILL)
                survivor = next(p for pid, p in by_pid.items() if pid != holder)
                ids = receiver.wait_for(2)  # the survivor takes the lease over and delivers again
                deadline = time.monotonic() + 60
                while _delivery(db).status != "delivered" and time.monotonic() < deadline:
                    time.sleep(0.1)
                done = _delivery(db)
                new_holder = _lease_holder_pid(db)
                assert survivor.process.poll() is None and other.process.poll() is None
        finally:
            receiver.close()
            db.dispose()
    assert ids == [message_id, message_id]  # the same message, never delivered by two at once
    assert done.status == "delivered" and done.attempts == 1
    assert new_holder == survivor.process.pid  # not the process started with --no-background-jobs
    # The survivor did not wait for the dead holder's claim to run out: it freed it on taking over.
    assert done.delivered_at < claim.claimed_until
    print(f"takeover after SIGKILL: delivered {(done.delivered_at - killed_at_ms) / 1000:.1f} s later")


# -- start-up mistakes, keys, version --------------------------------------------------------------


STARTUP_MISTAKES = {
    "mysql": (["--database-url", "mysql://u@127.0.0.1/db"], {}, "mysql:// is not supported", 2),
    "short key": (["--secret-key", "mykey"], {}, "a secret key starts with am_sk_test_", 2),
    "stripe without key": (
        [],
        {"AUTUMN_PAYMENT_PROCESSOR": "stripe"},
        "AUTUMN_PAYMENT_PROCESSOR=stripe needs the platform's Stripe key: set STRIPE_SECRET_KEY",
        2,
    ),
    "bad port": (["--port", "http"], {}, "--port / AUTUMN_PORT 'http': Input should be a valid integer", 2),
    "workers without redis": (["--workers", "2"], {}, "set AUTUMN_REDIS_URL=redis://", 2),
    "redis unreachable": (
        ["--redis-url", "redis://127.0.0.1:1/0"],
        {},
        "cannot reach Redis at redis://127.0.0.1:1/0",
        2,
    ),
    "public url": (["--public-url", "billing.example.com"], {}, "use an http:// or https:// URL", 2),
    "rate limit group": (
        ["--rate-limit-overrides", '{"attach": "1/second"}'],
        {},
        "unknown group 'attach' (one of check, track, billing, events, entity_get, list, other)",
        2,
    ),
    "sqlite folder": (
        ["--database-url", "sqlite:////nonexistent-autumn-dir/autumn.db"],
        {},
        "cannot open the SQLite database /nonexistent-autumn-dir/autumn.db",
        1,
    ),
}


@pytest.mark.parametrize("case", sorted(STARTUP_MISTAKES))
def test_startup_mistakes_are_one_or_two_lines(case: str, tmp_path: Path) -> None:
    args, env, message, code = STARTUP_MISTAKES[case]
    if "--database-url" not in args:
        args = [*args, "--database-url", f"sqlite:///{tmp_path / 'autumn.db'}"]
    if "--port" not in args:
        args = [*args, "--port", str(free_port())]
    result = _cli(*args, cwd=tmp_path, **env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert 1 <= len(lines) <= 2 and all(line.startswith("autumn-server: ") for line in lines)


def test_a_port_in_use_is_refused_before_anything_else(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _cli("--port", str(port), "--database-url", f"sqlite:///{tmp_path / 'a.db'}", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"cannot listen on 127.0.0.1:{port} (Address already in use)" in result.stderr
    assert not (tmp_path / "a.db").exists()  # refused before migrating anything


def test_a_missing_postgres_database_says_how_to_create_it() -> None:
    require_postgres()
    with fresh_postgres_url() as url:
        missing = url.rsplit("/", 1)[0] + "/autumn_missing_" + secrets.token_hex(4)
    result = _cli("--database-url", missing, "--port", str(free_port()))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    name = missing.rsplit("/", 1)[1]
    assert f'PostgreSQL database "{name}" does not exist on ' in result.stderr
    assert f"createdb -h 127.0.0.1 -p 5432 {name}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 2
    debug = _cli("--database-url", missing, "--port", str(free_port()), "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr  # --debug shows it


def test_demo_key_is_reused_across_restarts_and_keys_list_has_a_header(tmp_path: Path) -> None:
    with fresh_sqlite_url() as url:
        command = ["--demo", "--port", "{port}", "--database-url", url]
        printed = []
        for _ in range(2):
            with servers(tmp_path, command) as (server,):
                server.wait_ready()
                (line,) = [ln for ln in server.stdout().splitlines() if ln.startswith("Secret key: ")]
                printed.append(line.removeprefix("Secret key: "))
                key = printed[-1].split()[0]
                check = httpx.post(
                    server.url + "/v1/balances.check",
                    headers={"Authorization": f"Bearer {key}"},
                    json={"customer_id": "demo_customer", "feature_id": "messages"},
                    timeout=30,
                )
                assert check.status_code == 200 and check.json()["allowed"] is True
                assert server.stop() in CLEAN_EXIT
        listed = _cli("--database-url", url, "keys", "list")
        key_file = Path(url.removeprefix("sqlite:///") + ".secret-key")
        mode = key_file.stat().st_mode & 0o777
    first, second = printed
    assert first.endswith(" (new)") and second == first.removesuffix(" (new)")
    rows = [line.split("\t") for line in listed.stdout.strip().splitlines()]
    assert rows[0] == ["id", "org", "env", "prefix", "state", "name"]
    assert [r[5] for r in rows[1:]] == ["generated at start"]  # one key, not one per start
    assert mode == 0o600


def test_version() -> None:
    from reference_server.app import API_VERSION, _version

    result = _cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"autumn-server {_version()} (Autumn API {API_VERSION})"
