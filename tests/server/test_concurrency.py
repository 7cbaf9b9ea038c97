"""Real concurrency over HTTP: no over-deduction, no lost deduction, one deduction per idempotency key."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx

from .helpers import Api

MONTH = {"interval": "month"}


def _setup(api: Api, included: float) -> None:
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": included, "reset": MONTH}], auto_enable=True)
    api.customer("hot")


def _post_many(
    api: Api, path: str, bodies: list[dict[str, object]], headers: list[dict[str, str]] | None = None
) -> list[httpx.Response]:
    def send(i: int) -> httpx.Response:
        with httpx.Client(
            base_url=api.server.url, headers={"Authorization": f"Bearer {api.key}"}, timeout=60
        ) as c:
            return c.post(path, json=bodies[i], headers=(headers or [{}] * len(bodies))[i])

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(send, range(len(bodies))))


def test_threads_never_over_deduct(api: Api) -> None:
    _setup(api, 50)
    results = _post_many(api, "/v1/balances.track", [{"customer_id": "hot", "feature_id": "messages"}] * 80)
    assert all(r.status_code == 200 for r in results)
    applied = sum(sum(d["value"] for d in r.json()["deductions"]) for r in results)
    assert applied == 50
    b = api.balance("hot", "messages")
    assert b is not None and (b["remaining"], b["usage"]) == (0, 50)


def test_threads_never_lose_a_deduction(api: Api) -> None:
    _setup(api, 10_000)
    results = _post_many(
        api, "/v1/balances.track", [{"customer_id": "hot", "feature_id": "messages", "value": 2}] * 60
    )
    assert all(r.status_code == 200 for r in results)
    b = api.balance("hot", "messages")
    assert b is not None and b["usage"] == 120
    assert len(api("events.list", customer_id="hot", limit=500)["list"]) == 60


def test_send_event_admits_exactly_the_balance(api: Api) -> None:
    _setup(api, 10)
    results = _post_many(
        api, "/v1/balances.check", [{"customer_id": "hot", "feature_id": "messages", "send_event": True}] * 30
    )
    assert sum(r.json()["allowed"] for r in results) == 10
    assert api.balance("hot", "messages")["remaining"] == 0  # type: ignore[index]


def test_repeated_idempotency_key_deducts_once(api: Api) -> None:
    _setup(api, 100)
    body = {"customer_id": "hot", "feature_id": "messages", "value": 7, "idempotency_key": "same"}
    results = _post_many(api, "/v1/balances.track", [body] * 12)
    assert sorted(r.status_code for r in results) == [200] + [409] * 11
    header_results = _post_many(
        api,
        "/v1/balances.track",
        [{"customer_id": "hot", "feature_id": "messages", "value": 1}] * 12,
        [{"Idempotency-Key": "hdr"}] * 12,
    )
    # one runs; the others replay its response, or (PostgreSQL, while it runs) hear it is in flight
    fresh = [r for r in header_results if r.status_code == 200 and "idempotent-replayed" not in r.headers]
    assert len(fresh) == 1
    for r in header_results:
        if r is not fresh[0]:
            replayed = r.status_code == 200 and r.json() == fresh[0].json()
            in_flight = r.status_code == 409 and r.json()["code"] == "idempotency_key_in_flight"
            assert replayed or in_flight, r.text
    assert api.balance("hot", "messages")["usage"] == 8  # type: ignore[index]


def test_asyncio_gather_tracks(api: Api) -> None:
    _setup(api, 40)

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=api.server.url, headers={"Authorization": f"Bearer {api.key}"}, timeout=60
        ) as client:
            return await asyncio.gather(
                *[
                    client.post(
                        "/v1/balances.track",
                        json={"customer_id": "hot", "feature_id": "messages", "value": 3},
                    )
                    for _ in range(30)
                ]
            )

    results = asyncio.run(run())
    assert all(r.status_code == 200 for r in results)
    b = api.balance("hot", "messages")
    assert b is not None and (b["remaining"], b["usage"]) == (0, 40)  # 13 full deductions, then a capped 1


def test_concurrent_get_or_create_makes_one_customer(api: Api) -> None:
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": 5, "reset": MONTH}], auto_enable=True)
    results = _post_many(api, "/v1/customers.get_or_create", [{"customer_id": "racer"}] * 10)
    assert all(r.status_code == 200 for r in results), [r.text for r in results if r.status_code != 200]
    cust = api("customers.get", customer_id="racer")
    assert len(cust["subscriptions"]) == 1 and cust["balances"]["messages"]["granted"] == 5
