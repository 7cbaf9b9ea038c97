"""Operating the server in process: settings, health and readiness, metrics, request ids, shared
rate limits, the background jobs' lease and the public URL (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from starlette.requests import Request
from starlette.routing import Route

from reference_server.api.ratelimit import Limit, RateLimiter, SharedRateLimiter
from reference_server.cli import _parser
from reference_server.processors.local.processor import LocalProcessor
from reference_server.processors.registration import Registration, Setting, SingleAccount
from reference_server.processors.registry import (
    PROCESSORS,
    Processors,
    ProcessorSettings,
    processor_variables,
)
from reference_server.settings import (
    PROCESSORS_BLOCK,
    ServerSettings,
    describe_errors,
    env_name,
    flag_name,
    load_settings,
    processor_settings_declared,
)
from reference_server.store import leases
from reference_server.store.db import Database
from reference_server.store.schema_version import head_revision
from reference_server.testing import RunningServer, fresh_database_url, fresh_sqlite_url, run_server

from .helpers import DB_KINDS, require_postgres
from .ops_support import REDIS_URL, require_redis

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(params=DB_KINDS)
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "postgres":
        require_postgres()
    with fresh_database_url(str(request.param)) as url:
        yield url


# -- settings ---------------------------------------------------------------------------------------


def _readme_settings() -> dict[str, tuple[str, str]]:
    """The README's settings table: variable -> (flag, default)."""
    rows: dict[str, tuple[str, str]] = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith(("`AUTUMN_", "`STRIPE_")):
            rows[cells[0].strip("`")] = (cells[1].replace("`", ""), cells[2].replace("`", ""))
    return rows


def _settings_rows() -> dict[str, tuple[str, str]]:
    """What the settings object reads: variable -> (flag, default), every registration's included."""
    expected = {}
    for name, field in ServerSettings.model_fields.items():
        if name == PROCESSORS_BLOCK:
            continue
        default = field.get_default(call_default_factory=True)
        shown = (
            "none" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
        )
        flag = (
            flag_name(name)
            if field.annotation is not bool
            else f"{flag_name(name)}, --no-{flag_name(name)[2:]}"
        )
        expected[env_name(name, field.validation_alias)] = (flag, shown)
    for _, setting in processor_settings_declared():
        expected[setting.variable] = (flag_name(setting.name), "none")
    return expected


def test_readme_lists_every_setting_with_its_flag_and_default() -> None:
    """The README's table lists exactly the variables the settings object reads, those of every
    registered processor included (each registration's settings)."""
    assert _readme_settings() == _settings_rows()


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTUMN_PORT", "9000")
    monkeypatch.setenv("AUTUMN_RATE_LIMITS", "false")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_from_environment")
    from_env = load_settings(vars(_parser().parse_args([])))
    assert from_env.port == 9000 and from_env.rate_limits is False
    assert from_env.processors == {"stripe": {"STRIPE_SECRET_KEY": "sk_test_from_environment"}}
    assert "sk_test_from_environment" not in repr(from_env)
    flags = vars(_parser().parse_args(["--port", "9001", "--rate-limits", "migrate"]))
    assert load_settings(flags).port == 9001 and load_settings(flags).rate_limits is True
    exported = load_settings(flags).env()  # what worker processes rebuild the settings from
    assert exported["AUTUMN_PORT"] == "9001" and exported["STRIPE_SECRET_KEY"] == "sk_test_from_environment"


def test_settings_are_validated_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTUMN_WORKERS", "0")
    with pytest.raises(ValidationError) as caught:
        load_settings()
    assert caught.value.errors()[0]["loc"] == ("workers",)


def test_each_processors_settings_are_server_settings_its_registration_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A registered processor's variables are settings (flags, README rows); only they reach it."""
    assert (
        set(processor_variables()) <= set(_settings_rows()) and "STRIPE_SECRET_KEY" in processor_variables()
    )
    monkeypatch.setenv("STRIPE_API_BASE", "http://127.0.0.1:9/")
    settings = load_settings({"payment_processor": "stripe", "stripe_secret_key": "sk_test_flag"})
    assert settings.processor_settings() == ProcessorSettings(
        "stripe", {"STRIPE_SECRET_KEY": "sk_test_flag", "STRIPE_API_BASE": "http://127.0.0.1:9"}
    )
    assert sorted(PROCESSORS) == ["local", "stripe"]
    with pytest.raises(ValidationError) as caught:
        load_settings({"payment_processor": "paypal"})
    assert caught.value.errors()[0]["loc"] == ("payment_processor",)
    assert "'local' or 'stripe'" in caught.value.errors()[0]["msg"]


class _AcmeProcessor(LocalProcessor):
    """The fake third processor's instances: the local processor's pages, under another name."""

    name = "acme"

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__()
        self.values = dict(values)


def _acme_region(value: str) -> str:
    if value.strip() not in ("eu", "us"):
        raise ValueError("use eu or us")
    return value.strip()


ACME: Registration[SingleAccount] = Registration(
    name="acme",
    accounts=lambda values: SingleAccount(_AcmeProcessor(values)),
    settings=(
        Setting("ACME_API_TOKEN", "Acme's API token; needed with `acme`", secret=True),
        Setting("AUTUMN_ACME_REGION", "where Acme charges: `eu` or `us`", check=_acme_region),
    ),
    default_problem=lambda values: None if "ACME_API_TOKEN" in values else "acme needs ACME_API_TOKEN",
)


def test_a_third_processor_is_one_registration_away(monkeypatch: pytest.MonkeyPatch) -> None:
    """A processor registered in this test alone: its settings are read from the environment (or its
    flags) into its block of the settings object, checked, exported, handed to its instances and
    missing from the README's table, with nothing written for it in ``settings.py``."""
    monkeypatch.setitem(PROCESSORS, ACME.name, ACME)
    monkeypatch.setenv("ACME_API_TOKEN", "tok_from_environment")
    monkeypatch.setenv("AUTUMN_ACME_REGION", " eu ")
    monkeypatch.setenv("AUTUMN_PAYMENT_PROCESSOR", "acme")
    settings = load_settings(vars(_parser().parse_args([])))
    assert settings.payment_processor == "acme"
    assert settings.processors["acme"] == {
        "ACME_API_TOKEN": "tok_from_environment",
        "AUTUMN_ACME_REGION": "eu",
    }
    assert "tok_from_environment" not in repr(settings)
    # the AUTUMN_ name wins over the plain one; a flag wins over both
    monkeypatch.setenv("AUTUMN_ACME_API_TOKEN", "tok_autumn")
    flags = vars(_parser().parse_args(["--acme-region", "us", "worker"]))
    settings = load_settings(flags)
    assert settings.processors["acme"] == {"ACME_API_TOKEN": "tok_autumn", "AUTUMN_ACME_REGION": "us"}
    exported = settings.env()
    assert exported["ACME_API_TOKEN"] == "tok_autumn" and exported["AUTUMN_ACME_REGION"] == "us"
    # its instances get its settings, and only its own
    processors = Processors(settings.processor_settings())
    default = processors.server_default
    assert isinstance(default, _AcmeProcessor)
    assert default.values == {"ACME_API_TOKEN": "tok_autumn", "AUTUMN_ACME_REGION": "us"}
    # its checks are the settings object's: a start-up error naming its flag and variable
    with pytest.raises(ValidationError) as caught:
        load_settings({"acme_region": "mars"})
    assert describe_errors(caught.value) == ["--acme-region / AUTUMN_ACME_REGION 'mars': use eu or us"]
    monkeypatch.delenv("ACME_API_TOKEN")
    monkeypatch.delenv("AUTUMN_ACME_API_TOKEN")
    with pytest.raises(ValidationError) as caught:
        load_settings()
    assert describe_errors(caught.value) == ["acme needs ACME_API_TOKEN"]
    # and the README's table, which does not list it, no longer matches the settings
    missing = set(_settings_rows()) - set(_readme_settings())
    assert missing == {"ACME_API_TOKEN", "AUTUMN_ACME_REGION"}
    assert _settings_rows()["AUTUMN_ACME_REGION"] == ("--acme-region", "none")


# -- health, readiness, metrics, request ids --------------------------------------------------------


def _samples(server: RunningServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(server.url + "/metrics", timeout=30)
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _count(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(value for (n, ls), value in samples.items() if n == name and set(labels.items()) <= set(ls))


def test_health_readiness_metrics_and_request_ids(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="autumn.access")
    with run_server(database_url) as server, server.client(timeout=30) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}}
        http.post("/v1/features.create", json={"feature_id": "m", "name": "M", "type": "metered"})
        item = {"feature_id": "m", "included": 1}
        http.post(
            "/v1/plans.create", json={"plan_id": "f", "name": "F", "auto_enable": True, "items": [item]}
        )
        http.post("/v1/customers.get_or_create", json={"customer_id": "u"})
        before = _samples(server)
        check = {"customer_id": "u", "feature_id": "m"}
        allowed = http.post("/v1/balances.check", json=check, headers={"x-request-id": "trace-42.a:b"})
        assert allowed.json()["allowed"] is True and allowed.headers["x-request-id"] == "trace-42.a:b"
        tracked = http.post("/v1/balances.track", json={**check, "value": 1})
        assert tracked.status_code == 200
        denied = http.post("/v1/balances.check", json=check, headers={"x-request-id": "not valid!"})
        assert denied.json()["allowed"] is False
        assert re.fullmatch(r"req_[0-9a-f]{24}", denied.headers["x-request-id"])  # replaced, not echoed
        missing = http.post("/v1/customers.get", json={"customer_id": "nobody"})
        assert missing.status_code == 404 and missing.headers["x-request-id"].startswith("req_")
        after = _samples(server)
    delta = {
        "checks": _count(after, "autumn_requests_total", operation="check", status="200")
        - _count(before, "autumn_requests_total", operation="check", status="200"),
        "allowed": _count(after, "autumn_checks_total", allowed="true")
        - _count(before, "autumn_checks_total", allowed="true"),
        "denied": _count(after, "autumn_checks_total", allowed="false")
        - _count(before, "autumn_checks_total", allowed="false"),
        "tracks": _count(after, "autumn_tracks_total") - _count(before, "autumn_tracks_total"),
        "404": _count(after, "autumn_requests_total", operation="customers.get", status="404")
        - _count(before, "autumn_requests_total", operation="customers.get", status="404"),
        "timed": _count(after, "autumn_request_duration_seconds_count", operation="check")
        - _count(before, "autumn_request_duration_seconds_count", operation="check"),
    }
    assert delta == {"checks": 2, "allowed": 1, "denied": 1, "tracks": 1, "404": 1, "timed": 2}
    assert after[("autumn_webhook_backlog", ())] == 0
    assert after[("autumn_background_jobs_held", ())] == 1  # this server's worker holds the lease
    assert ("autumn_background_job_runs_total", (("job", "webhooks"),)) in after
    logged = [r for r in caplog.records if getattr(r, "request_id", None) == "trace-42.a:b"]
    assert logged and logged[0].getMessage().startswith("POST /v1/balances.check 200")


def test_readiness_fails_while_migrations_are_behind() -> None:
    with fresh_sqlite_url() as url, run_server(url) as server:
        db = Database(url)
        with db.write() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0009_idempotency_responses'"))
        ready = httpx.get(server.url + "/readyz", timeout=30)
        with db.write() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": head_revision()})
        db.dispose()
    assert ready.status_code == 503
    assert ready.json()["checks"]["migrations"] == f"at 0009_idempotency_responses, needs {head_revision()}"


def test_metrics_can_be_switched_off() -> None:
    with run_server(metrics=False) as server:
        assert httpx.get(server.url + "/metrics", timeout=30).status_code == 404
        assert httpx.get(server.url + "/healthz", timeout=30).status_code == 200


# -- rate limits shared through Redis ---------------------------------------------------------------


def _limited(prefix: str | None) -> RateLimiter:
    limits = {"other": Limit(3, 60.0, False)}
    if prefix is None:
        limiter = RateLimiter()
        limiter.limits.update(limits)
        return limiter
    return SharedRateLimiter(REDIS_URL, limits, key_prefix=prefix)


def test_rate_limits_are_shared_through_redis_and_not_in_memory() -> None:
    require_redis()
    outcomes = {}
    for kind in ("redis", "memory"):
        prefix = f"autumn-test-{secrets.token_hex(6)}" if kind == "redis" else None
        with (
            fresh_sqlite_url() as url,
            run_server(url, rate_limits=_limited(prefix)) as a,
            run_server(url, rate_limits=_limited(prefix)) as b,
        ):
            statuses = [
                httpx.post(s.url + "/v1/features.list", headers=s.headers, json={}, timeout=30)
                for s in (a, b, a, b, a, b)
            ]
        outcomes[kind] = [r.status_code for r in statuses]
        if kind == "redis":
            refused = statuses[-1]
            assert refused.json()["code"] == "rate_limit_exceeded"
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert outcomes["redis"] == [200, 200, 200, 429, 429, 429]  # one limit for both servers
    assert outcomes["memory"] == [200] * 6  # each process counts its own: twice the limit


def test_shared_limits_let_requests_through_when_redis_is_gone() -> None:
    limiter = SharedRateLimiter("redis://127.0.0.1:1/0", {"other": Limit(1, 60.0, False)})
    assert not limiter.check_connection()
    assert [limiter.hit("features.list", "1:sandbox", None) for _ in range(3)] == [None, None, None]


# -- the background jobs' lease ---------------------------------------------------------------------


def test_one_lease_holder_until_it_expires_or_is_released(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    try:
        with db.write() as conn:
            assert leases.acquire(conn, "jobs", "a", now_ms=1_000, ttl_ms=5_000)
            assert not leases.acquire(conn, "jobs", "b", now_ms=2_000, ttl_ms=5_000)  # a holds it
            assert leases.acquire(conn, "jobs", "a", now_ms=4_000, ttl_ms=5_000)  # renewed to 9 000
            assert not leases.acquire(conn, "jobs", "b", now_ms=8_999, ttl_ms=5_000)
            assert leases.holder_of(conn, "jobs", 8_999) == "a"
            assert leases.acquire(conn, "jobs", "b", now_ms=9_001, ttl_ms=5_000)  # a went silent
            assert leases.holder_of(conn, "jobs", 9_001) == "b"
            leases.release(conn, "jobs", "a")  # not a's any more: nothing happens
            assert leases.holder_of(conn, "jobs", 9_002) == "b"
            leases.release(conn, "jobs", "b")
            assert leases.acquire(conn, "jobs", "c", now_ms=9_003, ttl_ms=5_000)  # at once
    finally:
        db.dispose()


def test_the_worker_of_a_server_that_stops_hands_the_lease_over(database_url: str) -> None:
    with run_server(database_url) as first:
        lease = first.app.state.autumn.background_lease
        assert lease is not None and lease.held()
        with run_server(database_url) as second:
            waiting = second.app.state.autumn.background_lease
            assert waiting is not None and not waiting.held()  # one holder at a time
            first.app.state.billing.worker.stop()  # a clean stop releases it
            assert waiting.renew() and waiting.held()


# -- the public URL ---------------------------------------------------------------------------------


def test_public_url_is_the_base_of_payment_links() -> None:
    with run_server(public_url="https://billing.example.com/") as server, server.client(timeout=30) as http:
        http.post("/v1/customers.get_or_create", json={"customer_id": "u"})
        url = http.post("/v1/billing.setup_payment", json={"customer_id": "u"}).json()["url"]
    assert url.startswith("https://billing.example.com/")


def test_an_unexpected_error_outside_the_api_is_autumns_json_with_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Pages, the dashboard and extension routes are not behind the API dispatcher's own catch: a
    failure there answers 500 ``internal_error`` as JSON, with ``x-request-id``, and is logged."""

    async def boom(request: Request) -> None:
        raise RuntimeError("secret detail")

    with run_server() as server:
        server.app.router.routes.append(Route("/boom", boom))
        with caplog.at_level(logging.ERROR, logger="reference_server"):
            r = httpx.get(server.url + "/boom")
    assert r.status_code == 500
    assert r.json() == {"message": "Internal error", "code": "internal_error", "env": "sandbox"}
    assert "secret detail" not in r.text
    assert r.headers["x-request-id"]
    assert any("unhandled error in GET /boom" in record.getMessage() for record in caplog.records)
