"""``AsyncAutumn`` over aiohttp (``DefaultAioHttpClient``): the async pipeline keeps every promise.

respx only patches httpx's own transports, so nothing here is mocked: the SDK talks to the real
reference server (idempotent retries, request ids, raw responses, pool waits), and faults come from
a small asyncio server in the test's own loop that misbehaves on purpose (answers 503, closes the
connection after reading the request, never answers, or is not listening at all).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from autumn_sdk import AsyncAutumn, Autumn, DefaultAioHttpClient, errors, is_fail_open
from autumn_sdk._aiohttp import AioHttpTransport
from reference_server.testing import RunningServer, free_port, run_server

from .helpers import SleepRecorder

CHECK_OK = {"allowed": True, "customer_id": "cus_1", "required_balance": 1, "balance": None, "flag": None}


def _ids(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


class Sent:
    """An httpx request hook: the path and idempotency key of every request that leaves the client."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []

    async def __call__(self, request: httpx.Request) -> None:
        self.requests.append((request.url.path, request.headers.get("idempotency-key")))

    def keys(self, path: str) -> list[str | None]:
        return [key for p, key in self.requests if p == path]


# -- against the reference server ------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with run_server() as running:
        yield running


@pytest.fixture(scope="module")
def metered(server: RunningServer) -> tuple[str, list[str]]:
    """A consumable feature and 5 customers holding 1,000 of it."""
    feature_id = _ids("calls")
    customers = [_ids("cus") for _ in range(5)]
    with Autumn(server.secret_key, server_url=server.url) as autumn:
        autumn.features.create(feature_id=feature_id, name="Calls", type_="metered", consumable=True)
        for customer_id in customers:
            autumn.customers.get_or_create(customer_id=customer_id)
            autumn.balances.create(customer_id=customer_id, feature_id=feature_id, included_grant=1_000)
    return feature_id, customers


async def test_the_sdk_closes_the_aiohttp_client_it_was_given(server: RunningServer) -> None:
    http = DefaultAioHttpClient()
    async with AsyncAutumn(server.secret_key, server_url=server.url, http_client=http) as autumn:
        assert autumn._transport.async_client is http
        assert isinstance(http._transport, AioHttpTransport)
        await autumn.features.list()
    assert http.is_closed


async def test_track_sends_one_key_and_a_replay_with_it_applies_once(
    server: RunningServer, metered: tuple[str, list[str]]
) -> None:
    feature_id, customers = metered
    customer_id = customers[0]
    sent = Sent()
    async with AsyncAutumn(
        server.secret_key,
        server_url=server.url,
        http_client=DefaultAioHttpClient(event_hooks={"request": [sent]}),
    ) as autumn:
        before = (await autumn.check(customer_id=customer_id, feature_id=feature_id)).balance
        assert before is not None
        await autumn.track(customer_id=customer_id, feature_id=feature_id, value=2)
        (key,) = sent.keys("/v1/balances.track")
        assert key  # the SDK's own key, one per call
        raw = await autumn.with_raw_response.track(
            customer_id=customer_id, feature_id=feature_id, value=2, idempotency_key=key
        )
        assert raw.status_code == 200
        assert raw.replayed  # the server answered the same key with its stored response
        assert raw.headers.get("content-type", "").startswith("application/json")
        after = (await autumn.check(customer_id=customer_id, feature_id=feature_id)).balance
        assert after is not None and after.usage == before.usage + 2  # applied once


async def test_a_conflict_is_an_answer_with_its_request_id_after_one_attempt(server: RunningServer) -> None:
    feature_id = _ids("messages")
    sent = Sent()
    async with AsyncAutumn(
        server.secret_key,
        server_url=server.url,
        max_retries=3,
        http_client=DefaultAioHttpClient(event_hooks={"request": [sent]}),
    ) as autumn:
        await autumn.features.create(feature_id=feature_id, name="Messages", type_="metered", consumable=True)
        sent.requests.clear()
        with pytest.raises(errors.ConflictError) as info:
            await autumn.features.create(
                feature_id=feature_id, name="Messages", type_="metered", consumable=True
            )
        with pytest.raises(errors.NotFoundError) as missing:
            await autumn.customers.get(customer_id=_ids("nobody"))
    assert info.value.code == "duplicate_feature_id"
    assert info.value.request_id and f"[request_id {info.value.request_id}]" in str(info.value)
    assert missing.value.request_id
    assert len(sent.keys("/v1/features.create")) == 1


async def test_concurrent_checks_wait_for_the_few_connections_and_all_get_real_answers(
    server: RunningServer, metered: tuple[str, list[str]]
) -> None:
    """200 calls through 5 connections: the waits for one are never taken for an outage."""
    feature_id, customers = metered
    http = DefaultAioHttpClient(limits=httpx.Limits(max_connections=5))
    async with AsyncAutumn(
        server.secret_key, server_url=server.url, http_client=http, timeout_ms=30_000, total_timeout_ms=60_000
    ) as autumn:
        results = await asyncio.gather(
            *(autumn.check(customer_id=customers[i % 5], feature_id=feature_id) for i in range(200))
        )
    assert [r for r in results if is_fail_open(r)] == []
    assert {r.customer_id for r in results} == set(customers)


async def test_list_all_walks_every_page(server: RunningServer, metered: tuple[str, list[str]]) -> None:
    _feature_id, customers = metered
    async with AsyncAutumn(
        server.secret_key, server_url=server.url, http_client=DefaultAioHttpClient()
    ) as autumn:
        seen = [c.id async for c in autumn.customers.list_all(limit=2)]
    assert set(customers) <= set(seen)
    assert len(seen) == len(set(seen))


async def test_the_sync_clients_async_twins_run_over_aiohttp(
    server: RunningServer, metered: tuple[str, list[str]]
) -> None:
    feature_id, customers = metered
    http = DefaultAioHttpClient()
    autumn = Autumn(server.secret_key, server_url=server.url, async_client=http)
    result = await autumn.check_async(customer_id=customers[1], feature_id=feature_id)
    assert result.allowed and not is_fail_open(result)
    await autumn.aclose()
    assert http.is_closed


# -- against a server that misbehaves ---------------------------------------------------------------


class Misbehaving:
    """An HTTP/1.1 server in the test's loop; each request gets the next action of ``script`` (the
    last one repeats): ``ok`` (200 with ``CHECK_OK``), ``503`` (with ``Retry-After: 0``), ``close``
    (read the request, close the connection unanswered) or ``hang`` (read it, never answer)."""

    def __init__(self, *script: str) -> None:
        self.script = list(script)
        self.requests = 0
        self.url = ""
        self._server: asyncio.Server | None = None
        self._stop = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()

    def _next(self) -> str:
        action = self.script[min(self.requests, len(self.script) - 1)]
        self.requests += 1
        return action

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                action = self._next()
                if action == "close":
                    writer.close()
                    return
                if action == "hang":
                    await self._stop.wait()
                    writer.close()
                    return
                status, body = (200, CHECK_OK) if action == "ok" else (503, {"message": "down", "code": "x"})
                payload = json.dumps(body).encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\nretry-after: 0\r\n"
                    f"content-length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def __aenter__(self) -> Misbehaving:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._stop.set()
        self._server.close()
        await asyncio.wait_for(asyncio.gather(*self._handlers, return_exceptions=True), 5)


def _autumn(url: str, **kwargs: Any) -> AsyncAutumn:
    kwargs.setdefault("http_client", DefaultAioHttpClient())
    kwargs.setdefault("fail_open", False)
    return AsyncAutumn("am_sk_test_aiohttp", server_url=url, **kwargs)


async def test_5xx_is_retried_then_succeeds(sleeps: SleepRecorder) -> None:
    async with Misbehaving("503", "503", "ok") as bad, _autumn(bad.url, max_retries=2) as autumn:
        result = await autumn.check(customer_id="cus_1", feature_id="messages")
    assert result.allowed and not is_fail_open(result)
    assert bad.requests == 3
    assert len(sleeps.delays) == 2


async def test_a_lost_connection_retries_a_keyed_track_with_the_same_key() -> None:
    sent = Sent()
    http = DefaultAioHttpClient(event_hooks={"request": [sent]})
    async with Misbehaving("close") as bad, _autumn(bad.url, http_client=http, max_retries=2) as autumn:
        with pytest.raises(errors.APIConnectionError) as info:
            await autumn.track(customer_id="cus_1", feature_id="messages", value=1)
    assert not isinstance(info.value, errors.APITimeoutError)
    assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)  # sent, then lost: not "unsent"
    keys = sent.keys("/v1/balances.track")
    assert len(keys) == 3 and len(set(keys)) == 1 and keys[0]


async def test_a_lost_connection_is_never_retried_for_a_write_without_a_key() -> None:
    """The server may have applied it: retrying without a key could apply it twice."""
    async with Misbehaving("close") as bad, _autumn(bad.url, max_retries=2) as autumn:
        with pytest.raises(errors.APIConnectionError):
            await autumn.track(customer_id="cus_1", feature_id="messages", value=1, idempotency_key=None)
    assert bad.requests == 1


async def test_check_fails_open_when_the_server_is_not_listening() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with _autumn(url, fail_open=True) as autumn:
        result = await autumn.check(customer_id="cus_9", feature_id="messages")
    assert result.allowed and result.customer_id == "cus_9"
    assert is_fail_open(result)


async def test_refused_connection_is_a_connect_error_without_fail_open() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with _autumn(url, fail_open=False, max_retries=0) as autumn:
        with pytest.raises(errors.APIConnectionError) as info:
            await autumn.check(customer_id="cus_9", feature_id="messages")
    assert isinstance(info.value.__cause__, httpx.ConnectError)


async def test_an_unanswered_call_times_out_per_attempt_then_fails_open() -> None:
    async with Misbehaving("hang") as bad:
        async with _autumn(bad.url, fail_open=False, max_retries=1) as autumn:
            with pytest.raises(errors.APITimeoutError) as info:
                await autumn.check(
                    customer_id="cus_1", feature_id="messages", timeout_ms=200, total_timeout_ms=5_000
                )
            assert isinstance(info.value.__cause__, httpx.ReadTimeout)
            assert bad.requests == 2
        async with _autumn(bad.url, fail_open=True, max_retries=0) as autumn:
            result = await autumn.check(customer_id="cus_1", feature_id="messages", timeout_ms=200)
            assert is_fail_open(result)


async def test_the_total_budget_cuts_an_attempt_short() -> None:
    async with Misbehaving("hang") as bad, _autumn(bad.url, fail_open=False) as autumn:
        started = asyncio.get_running_loop().time()
        with pytest.raises(errors.APITimeoutError) as info:
            await autumn.track(
                customer_id="cus_1", feature_id="messages", value=1, timeout_ms=5_000, total_timeout_ms=300
            )
        elapsed = asyncio.get_running_loop().time() - started
    assert "total budget" in str(info.value)
    assert elapsed < 4  # the 5 s attempt timeout was capped by the 0.3 s budget


async def test_a_full_pool_raises_pool_timeout_never_fail_open() -> None:
    """One connection, held by a call the server never answers: the next call waits for it within
    its budget, then raises PoolTimeoutError (nothing was sent), even for a fail-open ``check``."""
    http = DefaultAioHttpClient(limits=httpx.Limits(max_connections=1))
    async with Misbehaving("hang") as bad, _autumn(bad.url, http_client=http, fail_open=True) as autumn:
        holder = asyncio.create_task(
            autumn.track(customer_id="cus_1", feature_id="messages", value=1, timeout_ms=10_000)
        )
        while bad.requests == 0:
            await asyncio.sleep(0.01)
        with pytest.raises(errors.PoolTimeoutError) as info:
            await autumn.check(customer_id="cus_1", feature_id="messages", total_timeout_ms=300)
        holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holder
        assert isinstance(info.value.__cause__, httpx.PoolTimeout)
        assert "nothing was sent" in str(info.value)
        assert bad.requests == 1
        # the cancelled call gave its connection back: the pool serves again
        bad.script = ["ok"]
        result = await autumn.check(customer_id="cus_1", feature_id="messages", timeout_ms=2_000)
        assert not is_fail_open(result)


def test_default_aiohttp_client_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from autumn_sdk import _aiohttp

    monkeypatch.setattr(_aiohttp, "aiohttp_available", lambda: False)
    with pytest.raises(ImportError, match=r"autumn-kit\[aiohttp\]"):
        DefaultAioHttpClient()
