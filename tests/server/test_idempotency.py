"""The ``Idempotency-Key`` header end to end, over real HTTP on SQLite and PostgreSQL.

The claim commits with the work and the stored response (store.idempotency): the same request
replays (``Idempotent-Replayed: true``), another request with the key gets 409
``duplicate_idempotency_key``, a refusal the client may retry releases the key, a key still in
flight gets 409 ``idempotency_key_in_flight`` with ``Retry-After``; track's body ``idempotency_key``
keeps Autumn's rule; expired claims are purged.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from reference_server.clock import ManualClock
from reference_server.processors.local.processor import LocalProcessor
from reference_server.processors.registry import Processors
from reference_server.store import idempotency
from reference_server.store.tables.core import idempotency_keys
from reference_server.testing import RunningServer, fresh_database_url, run_server

from .helpers import DB_KINDS, Api, new_org_key, require_postgres

MONTH = {"interval": "month"}


def _key() -> str:
    return "idem_" + secrets.token_hex(8)


def _setup(api: Api) -> str:
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": 100, "reset": MONTH}], auto_enable=True)
    return str(api.customer()["id"])


def _usage(api: Api, cid: str) -> float:
    balance = api.balance(cid, "messages")
    assert balance is not None
    return float(balance["usage"])


def _events(api: Api, cid: str) -> int:
    return len(api("events.list", customer_id=cid)["list"])


def _claims(srv: RunningServer, scope: str = idempotency.HEADER_SCOPE) -> int:
    with srv.app.state.autumn.db.read() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(idempotency_keys).where(idempotency_keys.c.scope == scope)
            ).scalar_one()
        )


def test_same_key_and_body_replays_the_stored_response(api: Api) -> None:
    cid = _setup(api)
    key = _key()
    body = {"customer_id": cid, "feature_id": "messages", "value": 3}
    first = api.raw("/v1/balances.track", body, **{"Idempotency-Key": key})
    assert first.status_code == 200, first.text
    assert "idempotent-replayed" not in first.headers
    again = api.raw("/v1/balances.track", body, **{"Idempotency-Key": key})
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    # the same JSON with its keys in another order is the same request
    reordered = api.raw("/v1/balances.track", dict(reversed(body.items())), **{"Idempotency-Key": key})
    assert reordered.headers["idempotent-replayed"] == "true"
    assert _usage(api, cid) == 3  # charged once
    assert _events(api, cid) == 1


def test_a_used_key_with_another_body_or_operation_is_a_duplicate(api: Api) -> None:
    cid = _setup(api)
    key = _key()
    ok = api.raw(
        "/v1/balances.track", {"customer_id": cid, "feature_id": "messages"}, **{"Idempotency-Key": key}
    )
    assert ok.status_code == 200
    for path, body in (
        ("/v1/balances.track", {"customer_id": cid, "feature_id": "messages", "value": 2}),
        ("/v1/balances.check", {"customer_id": cid, "feature_id": "messages"}),
    ):
        dup = api.raw(path, body, **{"Idempotency-Key": key})
        assert dup.status_code == 409, dup.text
        assert dup.json()["code"] == "duplicate_idempotency_key"
        assert set(dup.json()) == {"message", "code", "env"}
    assert _usage(api, cid) == 1


def test_a_refusal_the_client_may_retry_releases_the_key(api: Api) -> None:
    cid = _setup(api)
    key = _key()
    unknown = api.raw(
        "/v1/balances.track", {"customer_id": cid, "feature_id": "nope"}, **{"Idempotency-Key": key}
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "feature_not_found"
    invalid = api.raw("/v1/balances.track", {"feature_id": "messages"}, **{"Idempotency-Key": key})
    assert invalid.status_code == 400 and invalid.json()["code"] == "invalid_inputs"
    fixed = api.raw(
        "/v1/balances.track", {"customer_id": cid, "feature_id": "messages"}, **{"Idempotency-Key": key}
    )
    assert fixed.status_code == 200, fixed.text
    assert "idempotent-replayed" not in fixed.headers
    assert _usage(api, cid) == 1


def test_a_409_from_the_service_is_stored_and_replayed(api: Api) -> None:
    """Autumn keeps the key of a 409: the repeat gets the first answer's own code, replayed."""
    api.feature("messages")
    key = _key()
    body = {"feature_id": "messages", "name": "Again", "type": "metered", "consumable": True}
    first = api.raw("/v1/features.create", body, **{"Idempotency-Key": key})
    assert first.status_code == 409 and first.json()["code"] == "duplicate_feature_id"
    again = api.raw("/v1/features.create", body, **{"Idempotency-Key": key})
    assert again.status_code == 409 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = api.raw("/v1/features.create", {**body, "feature_id": "other"}, **{"Idempotency-Key": key})
    assert other.status_code == 409 and other.json()["code"] == "duplicate_idempotency_key"


def _hook_track(srv: RunningServer, hook: Callable[[], None]) -> Callable[[], None]:
    """Run ``hook`` inside every track's transaction (through the track watcher extension point);
    returns the function that puts the server's own watcher back."""
    billing = srv.app.state.autumn.billing
    original = billing.track_watcher

    def watcher(*args: Any) -> Any:
        hook()
        return original(*args) if original is not None else None

    billing.track_watcher = watcher

    def restore() -> None:
        billing.track_watcher = original

    return restore


def test_a_request_that_fails_inside_its_transaction_leaves_no_claim(api: Api) -> None:
    cid = _setup(api)
    key = _key()
    body = {"customer_id": cid, "feature_id": "messages"}

    def fail() -> None:
        raise RuntimeError("the database went away")

    restore = _hook_track(api.server, fail)
    try:
        failed = api.raw("/v1/balances.track", body, **{"Idempotency-Key": key})
    finally:
        restore()
    assert failed.status_code == 500 and failed.json()["code"] == "internal_error"
    retried = api.raw("/v1/balances.track", body, **{"Idempotency-Key": key})
    assert retried.status_code == 200, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert _usage(api, cid) == 1


@pytest.mark.parametrize("server", ["postgres"], indirect=True)
def test_a_key_in_flight_gets_409_with_retry_after_postgres(api: Api) -> None:
    """PostgreSQL serves requests in threads: the second request with the key answers at once.
    (One SQLite server process serves one request at a time: see the two-process test.)

    The first track carries a body ``idempotency_key`` too, so it runs in the unit of work (in a
    thread, where the hook can hold it); the second, a plain track, tries the one-statement path,
    finds the key's advisory lock held and is answered by the unit of work."""
    cid = _setup(api)
    key = _key()
    body = {"customer_id": cid, "feature_id": "messages", "idempotency_key": f"body-{key}"}
    plain = {"customer_id": cid, "feature_id": "messages"}
    inside, go_on = threading.Event(), threading.Event()

    def hold() -> None:
        if not inside.is_set():
            inside.set()
            assert go_on.wait(60)

    restore = _hook_track(api.server, hold)
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(api.raw, "/v1/balances.track", body, **{"Idempotency-Key": key})
            assert inside.wait(60)
            second = api.raw("/v1/balances.track", plain, **{"Idempotency-Key": key})
            go_on.set()
            assert first.result().status_code == 200
    finally:
        go_on.set()
        restore()
    assert second.status_code == 409, second.text
    assert second.json()["code"] == "idempotency_key_in_flight"
    assert "in flight" in second.json()["message"] or "still being processed" in second.json()["message"]
    assert second.headers["retry-after"] == "1"
    replay = api.raw("/v1/balances.track", body, **{"Idempotency-Key": key})
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == first.result().json()
    assert _usage(api, cid) == 1


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_sqlite_a_second_process_waits_for_the_key_in_flight_then_replays(api: Api) -> None:
    """SQLite has one writer, so a second process waits for the first's commit, then replays."""
    cid = _setup(api)
    key = _key()
    body = {"customer_id": cid, "feature_id": "messages"}
    inside, go_on = threading.Event(), threading.Event()

    def hold() -> None:
        if not inside.is_set():
            inside.set()
            assert go_on.wait(60)

    restore = _hook_track(api.server, hold)
    try:
        with run_server(api.server.database_url, clock=api.clock) as other, ThreadPoolExecutor(2) as pool:
            first = pool.submit(api.raw, "/v1/balances.track", body, **{"Idempotency-Key": key})
            assert inside.wait(60)
            with httpx.Client(base_url=other.url, headers={"Authorization": f"Bearer {api.key}"}) as client:
                second = pool.submit(
                    client.post, "/v1/balances.track", json=body, headers={"Idempotency-Key": key}
                )
                go_on.set()
                assert first.result().status_code == 200
                answer = second.result(timeout=60)
    finally:
        go_on.set()
        restore()
    assert answer.status_code == 200, answer.text
    assert answer.headers["idempotent-replayed"] == "true"
    assert answer.json() == first.result().json()
    assert _usage(api, cid) == 1


def test_track_body_idempotency_key_keeps_autumns_rule(api: Api) -> None:
    cid = _setup(api)
    body_key = _key()
    body = {"customer_id": cid, "feature_id": "messages", "idempotency_key": body_key}
    assert api.raw("/v1/balances.track", body).status_code == 200
    repeat = api.raw("/v1/balances.track", body)
    assert repeat.status_code == 409 and repeat.json()["code"] == "duplicate_idempotency_key"
    # a first call refused with a 4xx released its key: the retry is refused the same way, then works
    rejected = {**body, "idempotency_key": _key(), "value": 1000, "overage_behavior": "reject"}
    for _ in range(2):
        refused = api.raw("/v1/balances.track", rejected)
        assert refused.status_code == 400 and refused.json()["code"] == "insufficient_balance"
    assert api.raw("/v1/balances.track", {**rejected, "value": 1}).status_code == 200
    # the header key and the body key are independent claims; a header replay never hits the body key
    header_key = _key()
    both = {**body, "idempotency_key": _key()}
    first = api.raw("/v1/balances.track", both, **{"Idempotency-Key": header_key})
    again = api.raw("/v1/balances.track", both, **{"Idempotency-Key": header_key})
    assert first.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    fresh_header = api.raw("/v1/balances.track", both, **{"Idempotency-Key": _key()})
    assert fresh_header.status_code == 409 and fresh_header.json()["code"] == "duplicate_idempotency_key"
    assert _usage(api, cid) == 3


def test_an_invalid_key_is_a_400(api: Api) -> None:
    cid = _setup(api)
    body = {"customer_id": cid, "feature_id": "messages"}
    refused = api.raw("/v1/balances.track", body, **{"Idempotency-Key": "k" * 256})
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_inputs"
    assert "Idempotency-Key" in refused.json()["message"]
    assert api.raw("/v1/balances.track", body, **{"Idempotency-Key": "k" * 255}).status_code == 200


# -- a paid attach, and the purge: servers of their own (a card, a clock moved by a day)


@pytest.fixture(params=DB_KINDS)
def own_server(request: pytest.FixtureRequest) -> Iterator[tuple[RunningServer, ManualClock, Api]]:
    if request.param == "postgres":
        require_postgres()
    clock = ManualClock(1_767_225_600_000)
    with fresh_database_url(request.param) as url, run_server(url, clock=clock) as srv:
        api = Api(srv, new_org_key(srv), clock)
        yield srv, clock, api
        api.http.close()


def test_a_paid_attach_with_a_key_charges_once_and_replays(
    own_server: tuple[RunningServer, ManualClock, Api],
) -> None:
    _srv, _clock, api = own_server
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": 100, "reset": MONTH}], auto_enable=True)
    api.plan(
        "pro",
        [{"feature_id": "messages", "included": 1000, "reset": MONTH}],
        price={"amount": 20, "interval": "month"},
    )
    cid = str(api.customer()["id"])
    setup_url = api("billing.setup_payment", customer_id=cid)["url"]
    paid = httpx.post(setup_url, data={"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"})
    assert paid.status_code == 303, paid.text
    key = _key()
    body = {"customer_id": cid, "plan_id": "pro"}
    first = api.raw("/v1/billing.attach", body, **{"Idempotency-Key": key})
    assert first.status_code == 200, first.text
    again = api.raw("/v1/billing.attach", body, **{"Idempotency-Key": key})
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    invoices = api("customers.get", customer_id=cid, expand=["invoices"])["invoices"]
    assert [(i["total"], i["status"]) for i in invoices] == [(20, "paid")]
    # another billing change with a new key is a real second request
    plan_again = api.raw("/v1/billing.attach", body, **{"Idempotency-Key": _key()})
    assert plan_again.status_code == 409 and plan_again.json()["code"] == "plan_already_attached"


class HeldLocal(LocalProcessor):
    """The local processor with each charge held until the test lets it go (a slow payment network)."""

    def __init__(self) -> None:
        super().__init__()
        self.charging, self.go_on = threading.Event(), threading.Event()

    def charge(self, *args: Any, **kwargs: Any) -> Any:
        self.charging.set()
        assert self.go_on.wait(60), "the test never released the charge"
        return super().charge(*args, **kwargs)


def _paid_customer(api: Api) -> str:
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": 100, "reset": MONTH}], auto_enable=True)
    for plan_id, amount in (("pro", 20), ("premium", 50)):
        items = [{"feature_id": "messages", "included": 1000, "reset": MONTH}]
        api.plan(plan_id, items, price={"amount": amount, "interval": "month"})
    cid = str(api.customer()["id"])
    setup_url = api("billing.setup_payment", customer_id=cid)["url"]
    paid = httpx.post(setup_url, data={"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"})
    assert paid.status_code == 303, paid.text
    return cid


def test_a_keyed_billing_change_in_flight_still_answers_others_429(
    own_server: tuple[RunningServer, ManualClock, Api],
) -> None:
    """The billing lock commits on its own while the keyed attach's transaction is open."""
    srv, clock, api = own_server
    cid = _paid_customer(api)
    held = HeldLocal()
    srv.app.state.autumn.processors = Processors(default=held)
    key = _key()
    body = {"customer_id": cid, "plan_id": "pro"}
    # A SQLite server answers one request at a time: there the others come through a second process.
    with run_server(srv.database_url, clock=clock) as other, ThreadPoolExecutor(1) as pool:
        first = pool.submit(api.raw, "/v1/billing.attach", body, **{"Idempotency-Key": key})
        try:
            assert held.charging.wait(60)
            second = httpx.Client(
                base_url=other.url, headers={"Authorization": f"Bearer {api.key}"}, timeout=60
            )
            clients = [second] if srv.database_url.startswith("sqlite") else [api.http, second]
            for client in clients:
                for headers in ({}, {"Idempotency-Key": _key()}):
                    premium = {"customer_id": cid, "plan_id": "premium"}
                    refused = client.post("/v1/billing.attach", json=premium, headers=headers)
                    assert refused.status_code == 429, refused.text
                    assert refused.json()["code"] == "lock_already_exists"
            second.close()
        finally:
            held.go_on.set()
        assert first.result().status_code == 200, first.result().text
    replay = api.raw("/v1/billing.attach", body, **{"Idempotency-Key": key})
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == first.result().json()
    upgrade = api.raw(
        "/v1/billing.attach", {"customer_id": cid, "plan_id": "premium"}, **{"Idempotency-Key": key}
    )
    assert upgrade.status_code == 409 and upgrade.json()["code"] == "duplicate_idempotency_key"
    upgraded = api.raw(
        "/v1/billing.attach", {"customer_id": cid, "plan_id": "premium"}, **{"Idempotency-Key": _key()}
    )
    assert upgraded.status_code == 200, upgraded.text  # the lock was released after the commit


def test_expired_claims_are_purged_and_their_keys_reusable(
    own_server: tuple[RunningServer, ManualClock, Api],
) -> None:
    srv, clock, api = own_server
    cid = _setup(api)
    keys = [_key() for _ in range(3)]
    for key in keys:
        body = {"customer_id": cid, "feature_id": "messages", "idempotency_key": key}
        assert api.raw("/v1/balances.track", body, **{"Idempotency-Key": key}).status_code == 200
    assert _claims(srv) == 3 and _claims(srv, idempotency.BODY_SCOPE) == 3
    clock.advance(idempotency.CLAIM_TTL_MS + 1)
    body = {"customer_id": cid, "feature_id": "messages"}
    reused = api.raw("/v1/balances.track", body, **{"Idempotency-Key": keys[0]})
    assert reused.status_code == 200 and "idempotent-replayed" not in reused.headers
    # the request that claimed the key again also purged the other expired claims (after its commit)
    assert _claims(srv) == 1 and _claims(srv, idempotency.BODY_SCOPE) == 0
    again = {"customer_id": cid, "feature_id": "messages", "idempotency_key": keys[1]}
    assert api.raw("/v1/balances.track", again).status_code == 200
    assert _usage(api, cid) == 5


def test_the_background_worker_purges_expired_claims_without_requests(
    own_server: tuple[RunningServer, ManualClock, Api],
) -> None:
    """A server that stops receiving keyed requests still sheds its expired keys: the background
    worker (the jobs' lease holder) runs the purge too."""
    srv, clock, api = own_server
    cid = _setup(api)
    body = {"customer_id": cid, "feature_id": "messages"}
    assert api.raw("/v1/balances.track", body, **{"Idempotency-Key": _key()}).status_code == 200
    assert _claims(srv) >= 1
    clock.advance(idempotency.CLAIM_TTL_MS + 1)
    worker = srv.app.state.billing.worker
    deadline = time.monotonic() + 30
    while _claims(srv) and time.monotonic() < deadline:
        worker.wake()
        time.sleep(0.05)
    assert _claims(srv) == 0
