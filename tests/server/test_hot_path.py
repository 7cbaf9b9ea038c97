"""track's per-process caches (catalogue, and on PostgreSQL the subject a one-round-trip track
computes from) follow every change: made through another endpoint, or by another server process
sharing the database."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from reference_server.api.dispatcher import Dispatcher
from reference_server.api.endpoints import Endpoint
from reference_server.clock import ManualClock
from reference_server.service.context import Ctx
from reference_server.service.track_batches import TrackBatches
from reference_server.store.db import Database
from reference_server.store.subject_cache import CachedSubject, SubjectKey
from reference_server.testing import RunningServer, run_server

from .helpers import Api

MONTH = {"interval": "month"}


def _setup(api: Api, included: float) -> None:
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": included, "reset": MONTH}], auto_enable=True)
    api.customer("u1")


def test_tracks_alternating_between_two_servers_see_each_other(
    api: Api, server: tuple[RunningServer, ManualClock]
) -> None:
    srv, clock = server
    _setup(api, 100)
    with (
        run_server(srv.database_url, clock=clock) as other,
        httpx.Client(
            base_url=other.url, headers={"Authorization": f"Bearer {api.key}"}, timeout=60
        ) as second,
    ):
        remaining = []
        for i in range(12):
            body = {"customer_id": "u1", "feature_id": "messages", "value": 2}
            if i % 2 == 0:
                data = api.track("u1", "messages", 2)
            else:
                r = second.post("/v1/balances.track", json=body)
                assert r.status_code == 200, r.text
                data = r.json()
            remaining.append(data["balance"]["remaining"])
    assert remaining == [100 - 2 * (i + 1) for i in range(12)]
    b = api.balance("u1", "messages")
    assert b is not None and (b["remaining"], b["usage"]) == (76, 24)
    assert len(api("events.list", customer_id="u1", limit=100)["list"]) == 12


def test_track_after_a_balance_update_starts_from_the_new_balance(api: Api) -> None:
    _setup(api, 100)
    assert api.track("u1", "messages", 5)["balance"]["remaining"] == 95
    api("balances.update", customer_id="u1", feature_id="messages", remaining=40)
    assert api.track("u1", "messages", 5)["balance"]["remaining"] == 35
    api("balances.create", customer_id="u1", feature_id="messages", included_grant=10)
    assert api.track("u1", "messages", 5)["balance"]["remaining"] == 40


def test_track_after_a_catalogue_change_uses_the_new_credit_system(api: Api) -> None:
    _setup(api, 0)
    first = api.track("u1", "messages", 1)
    assert first["deductions"] == []
    api.feature(
        "credits",
        "credit_system",
        credit_schema=[{"metered_feature_id": "messages", "credit_cost": 2}],
    )
    api("balances.create", customer_id="u1", feature_id="credits", included_grant=10)
    data = api.track("u1", "messages", 3)
    assert data["balances"]["credits"]["remaining"] == 4


def test_track_after_a_test_clock_advance_resets_the_cached_balance(api: Api) -> None:
    _setup(api, 100)
    assert api.track("u1", "messages", 30)["balance"]["remaining"] == 70
    api.advance(days=32)
    assert api.track("u1", "messages", 1)["balance"]["remaining"] == 99


def test_hot_paths_answer_errors_like_every_other_route(api: Api) -> None:
    _setup(api, 10)
    bad_json = api.http.post("/v1/balances.track", content=b"{not json")
    assert bad_json.status_code == 400
    assert bad_json.json() == {
        "message": "Request body is not valid JSON",
        "code": "invalid_inputs",
        "env": "sandbox",
    }
    not_object = api.http.post("/v1/balances.check", content=b"[1]")
    assert (not_object.status_code, not_object.json()["code"]) == (400, "invalid_inputs")
    version = api.raw(
        "/v1/balances.check", {"customer_id": "u1", "feature_id": "messages"}, **{"x-api-version": "x"}
    )
    assert (version.status_code, version.json()["code"]) == (400, "invalid_api_version")
    no_key = httpx.post(
        api.server.url + "/v1/balances.track", json={"customer_id": "u1", "feature_id": "messages"}
    )
    assert (no_key.status_code, no_key.json()["code"]) == (401, "no_secret_key")
    wrong_method = api.http.get("/v1/balances.check")
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, "method_not_allowed")
    legacy = api.raw("/v1/entitled", {"customer_id": "u1", "feature_id": "messages"})
    assert legacy.status_code == 200 and legacy.headers["content-type"] == "application/json"
    assert legacy.json()["allowed"] is True
    tracked = api.raw("/v1/events", {"customer_id": "u1", "event_name": "nothing-listens"})
    assert (tracked.status_code, tracked.json()["code"]) == (404, "invalid_request")


def test_keyed_tracks_claim_their_key_in_the_one_statement(
    api: Api, server: tuple[RunningServer, ManualClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a keyed track (the SDK keys every one) is served on the event loop, its key
    claimed with the stored answer in the track's own statement, also when the cached subject was
    changed behind the process (it is read afresh and written again); a replay and a duplicate go to
    the unit of work, and every answer stays what it was."""
    srv, _ = server
    postgres = srv.database_url.startswith("postgresql")
    units: list[str] = []
    run_keyed = Dispatcher._run_keyed

    def counted(self: Dispatcher, ep: Endpoint, ctx: Ctx, request: Any, *rest: Any) -> Any:
        units.append(f"{ep.name}:{rest[1]}")
        return run_keyed(self, ep, ctx, request, *rest)

    monkeypatch.setattr(Dispatcher, "_run_keyed", counted)
    _setup(api, 100)
    body = {"customer_id": "u1", "feature_id": "messages", "value": 5}
    assert api.track("u1", "messages", 1)["balance"]["remaining"] == 99  # warms the caches
    first = api.raw("/v1/balances.track", body, **{"Idempotency-Key": "k1"})
    assert first.status_code == 200 and first.json()["balance"]["remaining"] == 94
    assert units == ([] if postgres else ["track:k1"])
    replay = api.raw("/v1/balances.track", body, **{"Idempotency-Key": "k1"})
    assert replay.status_code == 200 and replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    other = api.raw("/v1/balances.track", {**body, "value": 2}, **{"Idempotency-Key": "k1"})
    assert (other.status_code, other.json()["code"]) == (409, "duplicate_idempotency_key")
    second = api.raw("/v1/balances.track", body, **{"Idempotency-Key": "k2"})
    assert second.status_code == 200 and second.json()["balance"]["remaining"] == 89
    # The balance changes behind the process's back (another writer): the statement finds the subject
    # changed and writes nothing, the key included; the track is computed again from a fresh read.
    db = Database(srv.database_url)
    try:
        with db.write() as conn:
            conn.execute(sa.text("UPDATE balance_sources SET balance = balance - 50"))
    finally:
        db.dispose()
    moved = api.raw("/v1/balances.track", body, **{"Idempotency-Key": "k3"})
    assert moved.status_code == 200 and moved.json()["balance"]["remaining"] == 34
    again = api.raw("/v1/balances.track", body, **{"Idempotency-Key": "k3"})
    assert again.json() == moved.json()
    fresh = api.raw("/v1/balances.track", body, **{"Idempotency-Key": "k4"})
    assert fresh.status_code == 200 and fresh.json()["balance"]["remaining"] == 29
    # PostgreSQL: only the replays and the duplicate took the unit of work.
    assert units == (
        ["track:k1", "track:k1", "track:k3"]
        if postgres
        else ["track:k1", "track:k1", "track:k1", "track:k2", "track:k3", "track:k3", "track:k4"]
    )
    b = api.balance("u1", "messages")
    assert b is not None and b["remaining"] == 29
    assert len(api("events.list", customer_id="u1", limit=100)["list"]) == 5


def test_concurrent_tracks_of_one_customer_are_written_in_batches(
    api: Api, server: tuple[RunningServer, ManualClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """64 tracks of one customer, 16 at a time, half of them keyed: on PostgreSQL the ones that wait
    for the subject go together in one statement; every answer is what one-at-a-time tracks give
    (each sees the ones before it), nothing is lost or counted twice, and each key replays its answer."""
    srv, _ = server
    postgres = srv.database_url.startswith("postgresql")
    handed: list[int] = []
    hand_off = TrackBatches.hand_off

    def counted(self: TrackBatches[Any, Any], key: SubjectKey, entry: CachedSubject | None) -> bool:
        taken = hand_off(self, key, entry)
        if taken:
            handed.append(1)
        return taken

    monkeypatch.setattr(TrackBatches, "hand_off", counted)
    _setup(api, 1000)
    api.track("u1", "messages", 1)  # warms the caches

    async def burst() -> list[tuple[str | None, httpx.Response]]:
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(
            base_url=srv.url, headers={"Authorization": f"Bearer {api.key}"}, limits=limits, timeout=60
        ) as client:

            async def one(i: int) -> tuple[str | None, httpx.Response]:
                key = f"burst-{i}" if i % 2 else None
                headers = {"Idempotency-Key": key} if key else {}
                body = {"customer_id": "u1", "feature_id": "messages", "value": 1}
                return key, await client.post("/v1/balances.track", json=body, headers=headers)

            return await asyncio.gather(*(one(i) for i in range(64)))

    answers = asyncio.run(burst())
    assert [r.status_code for _, r in answers] == [200] * 64
    remaining = sorted(r.json()["balance"]["remaining"] for _, r in answers)
    assert remaining == list(range(935, 999))  # 999 after the warm-up, then one each
    b = api.balance("u1", "messages")
    assert b is not None and (b["remaining"], b["usage"]) == (935, 65)
    assert len(api("events.list", customer_id="u1", limit=100)["list"]) == 65
    for key, first in answers:
        if key is not None:
            replay = api.raw(
                "/v1/balances.track",
                {"customer_id": "u1", "feature_id": "messages", "value": 1},
                **{"Idempotency-Key": key},
            )
            assert replay.headers["idempotent-replayed"] == "true" and replay.json() == first.json()
    b = api.balance("u1", "messages")
    assert b is not None and b["remaining"] == 935
    if postgres:
        assert handed  # some tracks waited and went in a batch
    else:
        assert not handed  # SQLite serves one request at a time: nothing waits
