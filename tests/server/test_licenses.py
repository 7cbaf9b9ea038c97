"""Licenses end to end over real HTTP on SQLite and PostgreSQL.

A plan's ``licenses`` links offer a license plan as seats; a customer holding the parent plan gets
a pool (``customers.get`` ``licenses``, ``licenses.list``); ``licenses.attach`` assigns seats to
entities (creating unknown ones) and gives each the license plan's balances; ``licenses.release``
gives the seat back; the parent plan's end ends its seats.
"""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, func, select

from reference_server.store.db import Database
from reference_server.store.tables.core import INITIAL_TABLES, metadata
from reference_server.store.tables.licenses import (
    customer_token_families,
    customer_token_secrets,
    license_assignments,
    plan_licenses,
)
from reference_server.testing import fresh_database_url

from .helpers import Api, require_postgres

MONTH = {"interval": "month"}
MY_TABLES = (plan_licenses, license_assignments, customer_token_families, customer_token_secrets)


def _catalog(api: Api, included: int = 2) -> None:
    api.feature("seats", consumable=False)
    api.feature("api_calls")
    api.plan("seat_plan", [{"feature_id": "api_calls", "included": 100, "reset": MONTH}], name="Seat")
    api(
        "plans.create",
        plan_id="pro",
        name="Pro",
        items=[],
        licenses=[{"license_plan_id": "seat_plan", "included": included}],
    )


def _customer_with_pool(api: Api, cid: str = "acme", included: int = 2) -> str:
    _catalog(api, included)
    api.customer(cid)
    api("billing.attach", customer_id=cid, plan_id="pro")
    return cid


def _pool(api: Api, cid: str) -> dict[str, Any]:
    pools = api("licenses.list", customer_id=cid)["list"]
    assert len(pools) == 1, pools
    return dict(pools[0])


def test_a_parent_plan_gives_the_customer_a_pool(api: Api) -> None:
    cid = _customer_with_pool(api)
    expected = {
        "license_plan_id": "seat_plan",
        "parent_plan_id": "pro",
        "license_plan_name": "Seat",
        "granted": 2,
        "usage": 0,
        "remaining": 2,
        "paid_quantity": 0,
    }
    assert api("customers.get", customer_id=cid)["licenses"] == [expected]
    assert _pool(api, cid) == expected
    listed = api("customers.list")["list"]
    assert [c["licenses"] for c in listed if c["id"] == cid] == [[expected]]
    # without the parent plan there is no pool
    other = api.customer("nobody")
    assert other["licenses"] == []
    assert api("licenses.list", customer_id="nobody")["list"] == []


def test_attach_assigns_seats_and_gives_the_license_plans_balances(api: Api) -> None:
    cid = _customer_with_pool(api)
    api("entities.create", customer_id=cid, entity_id="u_existing", feature_id="seats", name="Old")
    res = api(
        "licenses.attach",
        customer_id=cid,
        plan_id="seat_plan",
        entities=[
            {"entity_id": "u_new", "name": "Ada Lovelace", "feature_id": "seats"},
            {"entity_id": "u_existing"},
        ],
    )
    assert res == {"success": True}
    created = api("entities.get", customer_id=cid, entity_id="u_new")
    assert created["name"] == "Ada Lovelace"
    assert created["balances"]["api_calls"]["granted"] == 100
    assert api.balance(cid, "api_calls", "u_existing") is not None
    pool = _pool(api, cid)
    assert (pool["usage"], pool["remaining"]) == (2, 0)
    assert api("customers.get", customer_id=cid)["licenses"][0]["usage"] == 2

    # a seat is usable: track against the entity's license balance
    api.track(cid, "api_calls", 5, entity_id="u_new")
    assert api.balance(cid, "api_calls", "u_new")["usage"] == 5  # type: ignore[index]

    # attaching an entity that holds the seat already takes no second seat
    assert api("licenses.attach", customer_id=cid, plan_id="seat_plan", entities=[{"entity_id": "u_new"}])
    assert _pool(api, cid)["usage"] == 2

    assignments = api("licenses.list_assignments", customer_id=cid)["list"]
    assert sorted(a["entity_id"] for a in assignments) == ["u_existing", "u_new"]
    for a in assignments:
        assert a["id"].startswith("lic_asn_")
        assert a["license_plan_id"] == "seat_plan"
        assert a["ended_at"] is None
        assert isinstance(a["started_at"], int)
    only = api("licenses.list_assignments", customer_id=cid, entity_id="u_new", plan_id="seat_plan")["list"]
    assert [a["entity_id"] for a in only] == ["u_new"]


def test_a_full_pool_refuses_and_changes_nothing(api: Api) -> None:
    cid = _customer_with_pool(api, included=1)
    err = api.error(
        "licenses.attach",
        customer_id=cid,
        plan_id="seat_plan",
        entities=[{"entity_id": "a", "feature_id": "seats"}, {"entity_id": "b", "feature_id": "seats"}],
    )
    assert (err.status, err.code, err.body["message"]) == (
        400,
        "invalid_request",
        "No available licenses for this plan.",
    )
    assert api("entities.list", customer_id=cid)["list"] == []
    assert _pool(api, cid)["usage"] == 0


def test_release_gives_the_seat_back_and_ends_the_balances(api: Api) -> None:
    cid = _customer_with_pool(api)
    api(
        "licenses.attach",
        customer_id=cid,
        plan_id="seat_plan",
        entities=[{"entity_id": "u1", "feature_id": "seats"}],
    )
    assert api("licenses.release", customer_id=cid, entity_ids=["u1"], license_plan_id="seat_plan") == {
        "success": True
    }
    assert _pool(api, cid)["usage"] == 0
    assert api.balance(cid, "api_calls", "u1") is None
    assert api("licenses.list_assignments", customer_id=cid)["list"] == []
    ended = api("licenses.list_assignments", customer_id=cid, active=False)["list"]
    assert len(ended) == 1 and ended[0]["ended_at"] is not None
    # nothing left to release
    err = api.error("licenses.release", customer_id=cid, entity_ids=["u1"])
    assert (err.status, err.code) == (400, "invalid_request")
    assert err.body["message"] == "Entity u1 has no license to release."
    # the seat can be assigned again
    api("licenses.attach", customer_id=cid, plan_id="seat_plan", entities=[{"entity_id": "u1"}])
    assert _pool(api, cid)["usage"] == 1


def test_the_parent_plans_end_ends_its_seats(api: Api) -> None:
    cid = _customer_with_pool(api)
    api(
        "licenses.attach",
        customer_id=cid,
        plan_id="seat_plan",
        entities=[{"entity_id": "u1", "feature_id": "seats"}],
    )
    api("billing.update", customer_id=cid, plan_id="pro", cancel_action="cancel_immediately")
    # at once, before any license operation: the seat's balances are gone
    assert api.balance(cid, "api_calls", "u1") is None
    assert api("customers.get", customer_id=cid)["licenses"] == []
    assert api("licenses.list", customer_id=cid)["list"] == []
    assert api("licenses.list_assignments", customer_id=cid)["list"] == []
    ended = api("licenses.list_assignments", customer_id=cid, active=False)["list"]
    assert [a["entity_id"] for a in ended] == ["u1"] and ended[0]["ended_at"] is not None


def test_bad_input_gets_autumns_errors(api: Api) -> None:
    cid = _customer_with_pool(api)
    for op, body in (
        ("licenses.attach", {"plan_id": "seat_plan", "entities": [{"entity_id": "x"}]}),
        ("licenses.release", {"entity_ids": ["x"]}),
        ("licenses.list", {}),
        ("licenses.list_assignments", {}),
    ):
        err = api.error(op, customer_id="ghost", **body)
        assert (err.status, err.code) == (404, "customer_not_found"), op

    err = api.error("licenses.attach", customer_id=cid, plan_id="api_less", entities=[{"entity_id": "x"}])
    assert (err.status, err.code) == (400, "invalid_request")
    assert err.body["message"] == "No plan on this customer offers license api_less."
    err = api.error("licenses.attach", customer_id=cid, plan_id="seat_plan", entities=[{"entity_id": "x"}])
    assert err.body["message"] == "Entity x does not exist. Pass feature_id to create it."
    err = api.error(
        "licenses.attach",
        customer_id=cid,
        plan_id="seat_plan",
        entities=[{"entity_id": "x", "feature_id": "seats"}, {"entity_id": "x", "feature_id": "seats"}],
    )
    assert err.body["message"] == "Duplicate entity x in entities."
    err = api.error(
        "licenses.attach",
        customer_id=cid,
        plan_id="seat_plan",
        entities=[{"entity_id": "x", "feature_id": "nope"}],
    )
    assert (err.status, err.code) == (404, "feature_not_found")
    err = api.error("licenses.attach", customer_id=cid, plan_id="seat_plan", entities=[])
    assert (err.status, err.code) == (400, "invalid_inputs")

    err = api.error("licenses.release", customer_id=cid, entity_ids=["ghost"])
    assert (err.status, err.code) == (404, "entity_not_found")
    err = api.error("licenses.list", customer_id=cid, entity_id="ghost")
    assert (err.status, err.code) == (404, "entity_not_found")
    err = api.error("licenses.list_assignments", customer_id=cid, plan_id="ghost_plan")
    assert (err.status, err.code) == (404, "product_not_found")

    err = api.error(
        "plans.create",
        plan_id="bad",
        name="Bad",
        items=[],
        licenses=[{"license_plan_id": "ghost", "included": 1}],
    )
    assert (err.status, err.code) == (404, "product_not_found")
    err = api.error("plans.update", plan_id="pro", licenses=[{"license_plan_id": "pro", "included": 1}])
    assert (err.status, err.code) == (400, "invalid_request")
    assert err.body["message"] == "A plan cannot be linked as a license to itself (pro)."
    err = api.error(
        "plans.update",
        plan_id="pro",
        licenses=[{"license_plan_id": "seat_plan", "included": 1, "prepaid_only": False}],
    )
    assert (err.status, err.code) == (400, "invalid_request")
    # a refused update leaves the links as they were
    assert _pool(api, cid)["granted"] == 2


def test_plans_update_replaces_the_links(api: Api) -> None:
    cid = _customer_with_pool(api)
    api("plans.update", plan_id="pro", licenses=[{"license_plan_id": "seat_plan", "included": 5}])
    assert _pool(api, cid)["granted"] == 5
    api("plans.update", plan_id="pro", licenses=[])
    assert api("licenses.list", customer_id=cid)["list"] == []


def test_assignments_persist_in_the_database(api: Api) -> None:
    cid = _customer_with_pool(api)
    api(
        "licenses.attach",
        customer_id=cid,
        plan_id="seat_plan",
        entities=[{"entity_id": "u1", "feature_id": "seats"}],
    )
    db = api.server.app.state.autumn.db
    with db.read() as conn:
        live = conn.execute(
            select(func.count())
            .select_from(license_assignments)
            .where(license_assignments.c.ended_at.is_(None))
        ).scalar_one()
        links = conn.execute(select(func.count()).select_from(plan_licenses)).scalar_one()
    assert live >= 1 and links >= 1


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_migration_creates_these_tables(kind: str) -> None:
    if kind == "postgres":
        require_postgres()
    with fresh_database_url(kind) as url:
        db = Database(url)
        db.migrate()
        core = MetaData(naming_convention=metadata.naming_convention)
        for table in (*INITIAL_TABLES, *MY_TABLES):
            table.to_metadata(core)
        names = {t.name for t in MY_TABLES}

        def ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
            table = obj if type_ == "table" else getattr(obj, "table", None)
            return getattr(table, "name", None) in names

        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": ours})
            diffs = compare_metadata(context, core)
        db.dispose()
    assert diffs == []
