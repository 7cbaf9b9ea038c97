"""Per-customer tokens (keys.mint / keys.refresh / keys.revoke) over real HTTP on SQLite and PostgreSQL.

A minted ``am_jwt_`` access token is accepted by check, track, customers.get and entities.get for
its own customer only; its refresh token only by keys.refresh, which rotates the pair with a
one-generation grace; an older refresh token, or keys.revoke, revokes every token of the customer
(Autumn's 401 ``invalid_request``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from autumn_sdk import Autumn
from reference_server.store.tables.licenses import customer_token_families

from .helpers import Api, ApiError

MONTH = {"interval": "month"}
HOUR_MS = 3_600_000


def _setup(api: Api) -> None:
    api.feature("messages")
    api.feature("seats", consumable=False)
    api.plan("free", [{"feature_id": "messages", "included": 10, "reset": MONTH}], auto_enable=True)
    api.customer("alice")
    api.customer("bob")


def _as(api: Api, token: str) -> Api:
    return Api(api.server, token, api.clock)


def _refused(client: Api, op: str, **body: Any) -> ApiError:
    try:
        client(op, **body)
    except ApiError as exc:
        return exc
    raise AssertionError(f"{op} was accepted")


def test_mint_gives_a_pair_the_server_accepts_for_that_customer_only(api: Api) -> None:
    _setup(api)
    now = api.clock.now_ms()
    pair = api("keys.mint", customer_id="alice")
    assert pair["access_token"].startswith("am_jwt_") and pair["refresh_token"].startswith("am_jwt_")
    assert pair["expires_at"] == (now + HOUR_MS) // 1000 * 1000
    assert pair["refresh_expires_at"] == (now + 24 * HOUR_MS) // 1000 * 1000

    alice = _as(api, pair["access_token"])
    assert alice("customers.get", customer_id="alice")["id"] == "alice"
    # the token's customer wins over the body's
    assert alice("customers.get", customer_id="bob")["id"] == "alice"
    alice.track("bob", "messages", 3)
    assert api.balance("alice", "messages")["usage"] == 3  # type: ignore[index]
    assert api.balance("bob", "messages")["usage"] == 0  # type: ignore[index]
    assert alice.check("alice", "messages")["allowed"] is True
    api("entities.create", customer_id="alice", entity_id="seat1", feature_id="seats")
    assert alice("entities.get", entity_id="seat1")["id"] == "seat1"

    # outside the allowlist: 403
    for op, body in (("customers.list", {}), ("keys.mint", {"customer_id": "alice"}), ("keys.refresh", {})):
        err = _refused(alice, op, **body)
        assert (err.status, err.code) == (403, "invalid_request"), op
    # the refresh token reaches keys.refresh only
    err = _refused(_as(api, pair["refresh_token"]), "customers.get", customer_id="alice")
    assert (err.status, err.code) == (403, "invalid_request")
    alice.http.close()


def test_refresh_rotates_with_one_generation_of_grace(api: Api) -> None:
    _setup(api)
    first = api("keys.mint", customer_id="alice")
    second = _as(api, first["refresh_token"])("keys.refresh")
    assert second["access_token"] != first["access_token"]
    assert _as(api, second["access_token"])("customers.get")["id"] == "alice"
    # the previous refresh token still works once more (grace) ...
    grace = _as(api, first["refresh_token"])("keys.refresh")
    third = _as(api, second["refresh_token"])("keys.refresh")
    assert grace["refresh_token"] and third["refresh_token"]
    # ... an older one is a reuse: refused, and every token of the customer is revoked
    err = _refused(_as(api, first["refresh_token"]), "keys.refresh")
    assert (err.status, err.code, err.body["message"]) == (
        401,
        "invalid_request",
        "Refresh token reuse detected",
    )
    err = _refused(_as(api, third["access_token"]), "customers.get")
    assert (err.status, err.code, err.body["message"]) == (401, "invalid_request", "Customer token revoked")


def test_revoke_refuses_every_outstanding_token(api: Api) -> None:
    _setup(api)
    pair = api("keys.mint", customer_id="alice")
    assert api("keys.revoke", customer_id="alice") == {"revoked": True}
    for token, op in ((pair["access_token"], "customers.get"), (pair["refresh_token"], "keys.refresh")):
        err = _refused(_as(api, token), op)
        assert (err.status, err.code, err.body["message"]) == (
            401,
            "invalid_request",
            "Customer token revoked",
        )
    fresh = api("keys.mint", customer_id="alice")
    assert _as(api, fresh["access_token"])("customers.get")["id"] == "alice"
    with api.server.app.state.autumn.db.read() as conn:
        epochs = conn.execute(select(customer_token_families.c.epoch)).scalars().all()
    assert 1 in epochs


def test_indefinite_tokens_do_not_expire_and_others_do(api: Api) -> None:
    _setup(api)
    forever = api("keys.mint", customer_id="alice", indefinite=True)
    assert forever["expires_at"] is None and "refresh_token" not in forever
    hourly = api("keys.mint", customer_id="alice")
    api.clock.advance(2 * HOUR_MS)
    assert _as(api, forever["access_token"])("customers.get")["id"] == "alice"
    err = _refused(_as(api, hourly["access_token"]), "customers.get")
    assert (err.status, err.code, err.body["message"]) == (
        401,
        "invalid_request",
        "Invalid or expired customer token",
    )


def test_bad_tokens_and_bad_input(api: Api) -> None:
    _setup(api)
    err = api.error("keys.mint", customer_id="ghost")
    assert (err.status, err.code) == (404, "customer_not_found")
    err = api.error("keys.refresh")
    assert (err.status, err.code, err.body["message"]) == (401, "invalid_request", "Missing customer token")
    pair = api("keys.mint", customer_id="bob")
    tampered = pair["access_token"][:-3] + ("AAA" if not pair["access_token"].endswith("AAA") else "BBB")
    for token in (tampered, "am_jwt_garbage", "am_jwt_a.b.c"):
        err = _refused(_as(api, token), "customers.get")
        assert (err.status, err.code) == (401, "invalid_request"), token
    api("customers.delete", customer_id="bob")
    err = _refused(_as(api, pair["access_token"]), "customers.get")
    assert (err.status, err.body["message"]) == (401, "Customer token is no longer valid")
    # revoking for an unknown customer answers as Autumn does (its revocation is keyed by the id)
    assert api("keys.revoke", customer_id="ghost") == {"revoked": True}


def test_the_sdk_mints_and_uses_a_token(api: Api) -> None:
    _setup(api)
    with Autumn(api.key, server_url=api.server.url, max_retries=0) as autumn:
        pair = autumn.keys.mint(customer_id="alice")
    token = pair.access_token
    with Autumn(token, server_url=api.server.url, max_retries=0) as scoped:
        customer = scoped.customers.get(customer_id="alice")
    assert customer.id == "alice"


def test_customer_tokens_need_api_version_2_3(api: Api) -> None:
    _setup(api)
    token = api("keys.mint", customer_id="alice")["access_token"]
    alice = _as(api, token)
    r = alice.raw("/v1/customers.get", {}, **{"x-api-version": "2.2.0"})
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_api_version"
    assert alice.raw("/v1/customers.get", {}, **{"x-api-version": "2.3.0"}).json()["id"] == "alice"
    alice.http.close()
