"""Process-level behaviour: rate limits with Retry-After, the CLI's key commands, migrations, demo data."""

from __future__ import annotations

import subprocess
import sys

import httpx
import sqlalchemy as sa

from reference_server.api.ratelimit import Limit, RateLimiter
from reference_server.store.db import Database
from reference_server.testing import fresh_sqlite_url, run_server


def test_rate_limit_answers_429_with_retry_after() -> None:
    # A frozen limiter clock keeps every request in one window: no dependence on wall time.
    limiter = RateLimiter(clock=lambda: 1_000.5)
    limiter.limits["other"] = Limit(3, 60.0, False)
    with run_server(rate_limits=limiter) as srv:
        codes = [httpx.post(srv.url + "/v1/features.list", headers=srv.headers, json={}) for _ in range(5)]
        assert [r.status_code for r in codes] == [200, 200, 200, 429, 429]
        limited = codes[-1]
        assert limited.json()["code"] == "rate_limit_exceeded" and limited.json()["env"] == "sandbox"
        assert limited.headers["Retry-After"] == "20"  # the window [960, 1020) ends 19.5 s after 1000.5


def test_default_rate_limits_are_per_customer_for_events() -> None:
    with run_server(rate_limits=RateLimiter(clock=lambda: 2_000.5)) as srv:
        httpx.post(srv.url + "/v1/customers.get_or_create", headers=srv.headers, json={"customer_id": "a"})
        httpx.post(srv.url + "/v1/customers.get_or_create", headers=srv.headers, json={"customer_id": "b"})
        statuses_a = [
            httpx.post(
                srv.url + "/v1/events.list", headers=srv.headers, json={"customer_id": "a"}
            ).status_code
            for _ in range(7)
        ]
        status_b = httpx.post(
            srv.url + "/v1/events.list", headers=srv.headers, json={"customer_id": "b"}
        ).status_code
        assert 429 in statuses_a and status_b == 200


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reference_server", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_keys_create_list_revoke() -> None:
    with fresh_sqlite_url() as url:
        created = _cli("--database-url", url, "keys", "create", "--env", "live", "--name", "ci")
        assert created.returncode == 0, created.stderr
        key_id, key = created.stdout.split()
        assert key.startswith("am_sk_live_")
        listed = _cli("--database-url", url, "keys", "list")
        assert key_id in listed.stdout and key not in listed.stdout and "active" in listed.stdout
        db = Database(url)
        with db.read() as conn:
            stored = conn.execute(sa.text("select key_hash from api_keys")).scalars().all()
        db.dispose()
        assert key not in stored and len(stored[0]) == 64  # only the sha256 is kept
        with run_server(url, secret_key="am_sk_test_other", auth_cache_ttl=0) as srv:
            ok = httpx.post(
                srv.url + "/v1/customers.get_or_create",
                headers={"Authorization": f"Bearer {key}"},
                json={"customer_id": "x"},
            )
            assert ok.status_code == 200 and ok.json()["env"] == "live"
            assert _cli("--database-url", url, "keys", "revoke", key_id).returncode == 0
            denied = httpx.post(
                srv.url + "/v1/features.list", headers={"Authorization": f"Bearer {key}"}, json={}
            )
            assert denied.status_code == 401 and denied.json()["code"] == "invalid_secret_key"


def test_migrations_and_demo_seed() -> None:
    with fresh_sqlite_url() as url, run_server(url, demo=True) as srv:
        db = Database(url)
        with db.read() as conn:
            versions = conn.execute(sa.text("select version_num from alembic_version")).scalars().all()
        db.dispose()
        assert versions and versions[0].startswith("0")
        cust = httpx.post(
            srv.url + "/v1/customers.get", headers=srv.headers, json={"customer_id": "demo_customer"}
        ).json()
        assert cust["subscriptions"][0]["plan_id"] == "free" and "messages" in cust["balances"]
        check = httpx.post(
            srv.url + "/v1/balances.check",
            headers=srv.headers,
            json={"customer_id": "demo_customer", "feature_id": "messages"},
        ).json()
        assert check["allowed"] is True
        legacy = httpx.post(
            srv.url + "/v1/check",
            headers=srv.headers,
            json={"customer_id": "demo_customer", "feature_id": "messages"},
        )
        assert legacy.status_code == 200 and legacy.json()["allowed"] is True
