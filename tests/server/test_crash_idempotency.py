"""A server killed with SIGKILL while keyed requests are in flight loses no key and applies none twice.

The server runs as a real subprocess (``python -m reference_server``); threads send tracks and free
add-on attaches, each with its own ``Idempotency-Key`` header; the process is killed mid-load and
restarted on the same database; every request is then retried with its key.  Each retry answers
success (replayed when the first attempt had committed, fresh when it had not) and each key applies
exactly once: the final usage is the number of distinct track keys, each customer holds its add-on once.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from reference_server.testing import DEFAULT_TEST_ENCRYPTION_KEY, free_port, fresh_database_url

from .helpers import DB_KINDS, require_postgres

KEY = "am_sk_test_crash_idempotency_key"
TRACK_THREADS = 4
ATTACH_CUSTOMERS = 12
LOAD_SECONDS = 1.5


@contextmanager
def server_process(database_url: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``python -m reference_server`` on a free port; yields the process and its URL once it answers."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "reference_server",
        "--database-url",
        database_url,
        "--secret-key",
        KEY,
        "--port",
        str(port),
        "--no-rate-limits",
        "--log-level",
        "warning",
    ]
    env = {**os.environ, "AUTUMN_ENCRYPTION_KEYS": DEFAULT_TEST_ENCRYPTION_KEY}
    env.pop("AUTUMN_PAYMENT_PROCESSOR", None)
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (process.stderr.read() if process.stderr else b"").decode()
            try:
                if httpx.get(url + "/openapi.json", timeout=2).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield process, url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)
        if process.stderr is not None:
            process.stderr.close()


@dataclass
class Sent:
    """Every keyed request sent before the kill (path, body), and the keys answered with success."""

    requests: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    acknowledged: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _send(client: httpx.Client, sent: Sent, key: str, path: str, body: dict[str, Any]) -> None:
    with sent.lock:
        sent.requests[key] = (path, body)
    try:
        response = client.post(path, json=body, headers={"Idempotency-Key": key})
    except httpx.TransportError:
        return  # killed meanwhile: applied or not, the retry tells
    if response.status_code == 200:
        with sent.lock:
            sent.acknowledged.add(key)


def _load(url: str, sent: Sent, stop: threading.Event, attach_customers: list[str]) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}

    def tracks() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
            for _ in range(2_000):
                if stop.is_set():
                    return
                body = {"customer_id": "heavy", "feature_id": "messages", "value": 1}
                _send(client, sent, "trk_" + secrets.token_hex(8), "/v1/balances.track", body)

    def attaches() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
            for customer_id in attach_customers:
                if stop.is_set():
                    return
                body = {"customer_id": customer_id, "plan_id": "extra"}
                _send(client, sent, "att_" + secrets.token_hex(8), "/v1/billing.attach", body)
                time.sleep(LOAD_SECONDS / (2 * ATTACH_CUSTOMERS))

    with ThreadPoolExecutor(TRACK_THREADS + 1) as pool:
        futures = [pool.submit(tracks) for _ in range(TRACK_THREADS)] + [pool.submit(attaches)]
        for future in futures:
            future.result()


@pytest.mark.parametrize("kind", DB_KINDS)
def test_sigkill_mid_load_then_retries_apply_every_key_exactly_once(kind: str) -> None:
    if kind == "postgres":
        require_postgres()
    attach_customers = [f"att_{i}" for i in range(ATTACH_CUSTOMERS)]
    sent = Sent()
    with fresh_database_url(kind) as database_url:
        with server_process(database_url) as (process, url):
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as api:
                for op, body in (
                    ("features.create", {"feature_id": "messages", "name": "Messages", "type": "metered"}),
                    (
                        "plans.create",
                        {
                            "plan_id": "free",
                            "name": "Free",
                            "auto_enable": True,
                            "items": [{"feature_id": "messages", "included": 1_000_000}],
                        },
                    ),
                    (
                        "plans.create",
                        {
                            "plan_id": "extra",
                            "name": "Extra",
                            "add_on": True,
                            "items": [{"feature_id": "messages", "included": 10}],
                        },
                    ),
                ):
                    assert api.post(f"/v1/{op}", json={"consumable": True, **body} if op[0] == "f" else body)
                for customer_id in ["heavy", *attach_customers]:
                    created = api.post("/v1/customers.get_or_create", json={"customer_id": customer_id})
                    assert created.status_code == 200, created.text
            stop = threading.Event()
            loader = threading.Thread(target=_load, args=(url, sent, stop, attach_customers))
            loader.start()
            time.sleep(LOAD_SECONDS)
            process.send_signal(signal.SIGKILL)  # mid-load: requests are in flight
            process.wait(30)
            stop.set()
            loader.join(60)
            assert not loader.is_alive()
        assert sent.requests, "no request was sent before the kill"
        with (
            server_process(database_url) as (_process, url),
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as api,
        ):
            replayed = 0
            for key, (path, body) in sent.requests.items():
                retry = api.post(path, json=body, headers={"Idempotency-Key": key})
                assert retry.status_code == 200, (key, retry.text)
                if retry.headers.get("idempotent-replayed") == "true":
                    replayed += 1
                elif key in sent.acknowledged:
                    raise AssertionError(f"{key} was acknowledged, yet its retry ran again")
            tracks = [k for k, (path, _) in sent.requests.items() if path.endswith("track")]
            heavy = api.post("/v1/customers.get", json={"customer_id": "heavy"}).json()
            assert heavy["balances"]["messages"]["usage"] == len(tracks)
            attached = {
                body["customer_id"] for path, body in sent.requests.values() if path.endswith("attach")
            }
            for customer_id in attach_customers:
                subs = api.post("/v1/customers.get", json={"customer_id": customer_id}).json()[
                    "subscriptions"
                ]
                extras = [s for s in subs if s["plan_id"] == "extra"]
                assert len(extras) == (1 if customer_id in attached else 0), (customer_id, subs)
            print(
                f"{kind}: {len(sent.requests)} keyed requests sent, {len(sent.acknowledged)} acknowledged "
                f"before SIGKILL, {replayed} retries replayed, {len(sent.requests) - replayed} applied afresh"
            )
