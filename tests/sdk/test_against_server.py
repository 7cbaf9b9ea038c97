"""The SDK's promises checked end to end against the real reference server, on SQLite and PostgreSQL.

- a 409 is an answer: the server's own code after exactly one HTTP attempt (counted by an httpx
  event hook on the client the SDK sends through, not by a mock);
- a call whose first attempt timed out for real (the server did the work, its answer was held back
  past the SDK's per-attempt timeout) is retried with the same key and gets the first attempt's
  stored response; usage moves once;
- 500 concurrent ``check``s through one ``AsyncAutumn`` all get real answers: the client's own
  connection-pool waits are never taken for an outage.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autumn_sdk import AsyncAutumn, Autumn, errors, is_fail_open
from reference_server.app import create_app
from reference_server.testing import (
    DEFAULT_TEST_ENCRYPTION_KEY,
    DEFAULT_TEST_KEY,
    RunningServer,
    fresh_database_url,
    postgres_available,
    run_server,
    serve_app,
)

DB_KINDS = ["sqlite", "postgres"]


@pytest.fixture(autouse=True)
def sleeps() -> None:
    """Real waits in this module (conftest's recorder would skip them): a retry that hears its key
    is still in flight must wait as it would in production, not ask again at once."""


@pytest.fixture(scope="module", params=DB_KINDS)
def database_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "postgres" and not postgres_available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL must be available on 127.0.0.1:5432 in CI")
        pytest.skip("PostgreSQL is not available")
    return kind


@pytest.fixture(scope="module")
def server(database_kind: str) -> Iterator[RunningServer]:
    with fresh_database_url(database_kind) as url, run_server(url) as running:
        yield running


class RequestCounter:
    """httpx event hooks that count the requests that really leave the client, per path."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.keys: list[str | None] = []

    def sync(self, request: httpx.Request) -> None:
        self.paths.append(request.url.path)
        self.keys.append(request.headers.get("idempotency-key"))

    async def async_(self, request: httpx.Request) -> None:
        self.sync(request)

    def reset(self) -> None:
        self.paths.clear()
        self.keys.clear()

    def count(self, path: str) -> int:
        return self.paths.count(path)

    def keys_of(self, path: str) -> list[str | None]:
        return [key for p, key in zip(self.paths, self.keys, strict=True) if p == path]


def _ids(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def _seed(autumn: Autumn, feature_id: str, plan_id: str) -> None:
    autumn.features.create(feature_id=feature_id, name="Messages", type_="metered", consumable=True)
    autumn.plans.create(
        plan_id=plan_id,
        name="Free",
        items=[{"feature_id": feature_id, "included": 10, "reset": {"interval": "month"}}],
    )


# -- a conflict is an answer -----------------------------------------------------------------


def test_conflicts_surface_the_servers_code_after_one_attempt(server: RunningServer) -> None:
    counter = RequestCounter()
    http = httpx.Client(event_hooks={"request": [counter.sync]})
    feature_id, plan_id, customer_id = _ids("messages"), _ids("free"), _ids("cus")
    with Autumn(server.secret_key, server_url=server.url, http_client=http, max_retries=3) as autumn:
        _seed(autumn, feature_id, plan_id)
        counter.reset()
        with pytest.raises(errors.ConflictError) as duplicate:
            autumn.features.create(feature_id=feature_id, name="Messages", type_="metered", consumable=True)
        assert type(duplicate.value) is errors.ConflictError
        assert duplicate.value.code == "duplicate_feature_id"
        assert counter.count("/v1/features.create") == 1
        assert duplicate.value.request_id  # the server names every response
        assert f"[request_id {duplicate.value.request_id}]" in str(duplicate.value)

        autumn.customers.get_or_create(customer_id=customer_id)
        autumn.billing.attach(customer_id=customer_id, plan_id=plan_id)
        counter.reset()
        with pytest.raises(errors.ConflictError) as attached:
            autumn.billing.attach(customer_id=customer_id, plan_id=plan_id)
        assert type(attached.value) is errors.ConflictError
        assert attached.value.code == "plan_already_attached"
        assert counter.count("/v1/billing.attach") == 1
    http.close()


async def test_conflicts_on_the_async_client_after_one_attempt(server: RunningServer) -> None:
    counter = RequestCounter()
    feature_id = _ids("messages")
    with Autumn(server.secret_key, server_url=server.url) as setup:
        setup.features.create(feature_id=feature_id, name="Messages", type_="metered", consumable=True)
    async with (
        httpx.AsyncClient(event_hooks={"request": [counter.async_]}) as http,
        AsyncAutumn(server.secret_key, server_url=server.url, http_client=http) as autumn,
    ):
        with pytest.raises(errors.ConflictError) as info:
            await autumn.features.create(feature_id=feature_id, name="Messages", type_="metered")
    assert info.value.code == "duplicate_feature_id"
    assert counter.count("/v1/features.create") == 1


# -- a timed-out call retried with its key -----------------------------------------------------


class HoldFirstAnswer:
    """ASGI middleware: the first response to ``path`` is held back ``hold_s`` seconds after the app
    produced it (so the work is committed) before it is sent; every other request passes through."""

    def __init__(self, app: ASGIApp, path: str, hold_s: float) -> None:
        self.app = app
        self.path = path
        self.hold_s = hold_s
        self.held = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or self.held:
            await self.app(scope, receive, send)
            return
        self.held += 1

        async def delayed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(self.hold_s)
            await send(message)

        await self.app(scope, receive, delayed_send)


@pytest.fixture(scope="module")
def slow_first_track(database_kind: str) -> Iterator[tuple[str, HoldFirstAnswer]]:
    """A reference server whose first ``track`` answer arrives 2 s late."""
    with fresh_database_url(database_kind) as url:
        app = create_app(
            url,
            secret_key=DEFAULT_TEST_KEY,
            rate_limits=False,
            validate_responses=True,
            encryption_keys=DEFAULT_TEST_ENCRYPTION_KEY,
        )
        holder: list[HoldFirstAnswer] = []

        def hold(inner: ASGIApp) -> HoldFirstAnswer:
            holder.append(HoldFirstAnswer(inner, "/v1/balances.track", hold_s=2.0))
            return holder[0]

        app.add_middleware(hold)
        with serve_app(app) as base_url:
            with Autumn(DEFAULT_TEST_KEY, server_url=base_url) as autumn:
                autumn.features.create(
                    feature_id="messages", name="Messages", type_="metered", consumable=True
                )
                autumn.customers.get_or_create(customer_id="cus_slow")
                autumn.balances.create(customer_id="cus_slow", feature_id="messages", included_grant=10)
            assert holder, "the middleware was not built"
            yield base_url, holder[0]


def _usage(autumn: Autumn, customer_id: str) -> float:
    balance = autumn.check(customer_id=customer_id, feature_id="messages").balance
    assert balance is not None
    return balance.usage


def test_a_timed_out_track_retried_with_its_key_gets_the_first_answer(
    slow_first_track: tuple[str, HoldFirstAnswer],
) -> None:
    base_url, holder = slow_first_track
    counter = RequestCounter()
    http = httpx.Client(event_hooks={"request": [counter.sync]})
    with Autumn(DEFAULT_TEST_KEY, server_url=base_url, http_client=http, fail_open=False) as autumn:
        assert _usage(autumn, "cus_slow") == 0
        raw = autumn.with_raw_response.track(
            customer_id="cus_slow", feature_id="messages", value=3, timeout_ms=500, total_timeout_ms=15_000
        )
        assert holder.held == 1  # the first attempt's answer really was held past the 0.5 s timeout
        first_key, retry_key = counter.keys_of("/v1/balances.track")
        assert first_key is not None and retry_key == first_key
        assert raw.status_code == 200
        assert raw.replayed  # the retry got the first attempt's stored response
        result = raw.parse()
        assert not is_fail_open(result)
        assert result.value == 3
        assert result.balance is not None and result.balance.usage == 3
        assert _usage(autumn, "cus_slow") == 3  # applied once
    http.close()


def _check_setup(server: RunningServer, customers: int) -> tuple[str, list[str]]:
    feature_id = _ids("calls")
    customer_ids = [_ids("crowd") for _ in range(customers)]
    with Autumn(server.secret_key, server_url=server.url) as autumn:
        autumn.features.create(feature_id=feature_id, name="Calls", type_="metered", consumable=True)
        for customer_id in customer_ids:
            autumn.customers.get_or_create(customer_id=customer_id)
            autumn.balances.create(customer_id=customer_id, feature_id=feature_id, included_grant=1_000)
    return feature_id, customer_ids


async def test_500_concurrent_checks_through_one_async_client_get_real_answers(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Five times more coroutines than the SDK's client has connections: the rest wait for one, and
    that wait is never reported as "Autumn is down" (no fail-open answer, no retry).

    The wait counts against each call's total budget only (never the per-attempt timeout, which
    httpx starts once a connection is had). The budget and the attempt timeout are raised here (60 s
    and 30 s) because this machine's speed varies (the server runs in this process, on 2 shared
    cores): bench/bench_sdk_pool.py measured 500 checks taking 6 to 20 s on a loaded machine, and a
    server slowed that much can take more than check's default 5 s to answer a request once sent,
    which is a slow server, not a pool wait. Running out of budget while waiting for a connection
    raises PoolTimeoutError, never a fail-open answer (tests/sdk/test_transport.py).
    """
    caplog.set_level(logging.INFO, logger="autumn_sdk")
    feature_id, customer_ids = _check_setup(server, customers=20)
    counter = RequestCounter()
    async with AsyncAutumn(
        server.secret_key, server_url=server.url, timeout_ms=30_000, total_timeout_ms=60_000
    ) as autumn:
        autumn._transport.async_client.event_hooks["request"].append(counter.async_)

        async def one(index: int) -> Any:
            customer_id = customer_ids[index % len(customer_ids)]
            return await autumn.check(customer_id=customer_id, feature_id=feature_id, required_balance=1)

        results = await asyncio.gather(*(one(i) for i in range(500)))
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retrying")]
    assert [r for r in results if is_fail_open(r)] == [], retries
    assert len(counter.paths) == 500 + len(retries)
    assert all(r.allowed and r.balance is not None and r.balance.remaining == 1_000 for r in results)
    assert {r.customer_id for r in results} == set(customer_ids)
    assert "failing open" not in caplog.text


# -- None for a field that cannot be null --------------------------------------------------------


def test_none_for_a_non_nullable_field_is_not_sent_but_a_nullable_one_is(server: RunningServer) -> None:
    """``price=None`` on ``plans.create`` (a field the spec does not let be null, which the server
    refuses as ``null``) means "no price", as in the official SDK; on ``plans.update``, where the
    spec allows null, ``price=None`` is sent and removes the price."""
    counter = RequestCounter()
    sent: list[bytes] = []
    http = httpx.Client(event_hooks={"request": [counter.sync, lambda request: sent.append(request.content)]})
    feature_id, plan_id = _ids("messages"), _ids("pro")
    with Autumn(server.secret_key, server_url=server.url, http_client=http) as autumn:
        autumn.features.create(feature_id=feature_id, name="Messages", type_="metered", consumable=True)
        created = autumn.plans.create(
            plan_id=plan_id,
            name="Pro",
            price=None,
            items=[{"feature_id": feature_id, "included": 10, "reset": {"interval": "month"}, "price": None}],
        )
        assert created.price is None
        assert b"null" not in sent[-1]
        autumn.plans.update(plan_id=plan_id, price={"amount": 20, "interval": "month"})
        assert autumn.plans.get(plan_id=plan_id).price is not None
        updated = autumn.plans.update(plan_id=plan_id, price=None)
        assert b'"price":null' in sent[-1].replace(b" ", b"")
        assert updated.price is None
