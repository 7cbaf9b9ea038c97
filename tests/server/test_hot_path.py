"""track's per-process caches (catalogue, and on PostgreSQL the subject a one-round-trip track
computes from) follow every change: made through another endpoint, or by another server process
sharing the database."""

from __future__ import annotations

import httpx

from reference_server.clock import ManualClock
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
