"""entities.list runs the due maintenance entities.get runs, and reads in a read transaction.

A test clock moved past a renewal, a plan's end or a scheduled start leaves maintenance due on the
customers; ``entities.get`` runs it before reading (``service.entities.get_entity_op``), and so must
``entities.list``: each listed entity is the one a get of it answers, even when the page is read first.
When nothing is due, the page is read in a read transaction (a deferred ``BEGIN`` on SQLite).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .helpers import Api, SqliteStatements, traced_api

MONTH = {"interval": "month"}
BY_INVOICE = {"enabled": True, "enable_plan_immediately": True}


def _world(api: Api) -> None:
    """Entities whose customers have maintenance due once a month passes: a paid plan that renews
    (by invoice, no card: past due), a paid plan cancelled at the end of its cycle (it ends and the
    free default covers the entity's customer again), a scheduled downgrade, and a plain entity."""
    api.feature("messages")
    api.feature("seats", consumable=False)
    api.plan("free", [{"feature_id": "messages", "included": 100, "reset": MONTH}], auto_enable=True)
    api.plan("team", [{"feature_id": "messages", "included": 1000, "reset": MONTH}], name="Team")
    api("plans.update", plan_id="team", price={"amount": 20, "interval": "month"})
    for cid in ("renews", "ends", "plain"):
        api.customer(cid)
        api("entities.create", customer_id=cid, entity_id=f"{cid}_e", feature_id="seats")
    for cid in ("renews", "ends"):
        api("billing.attach", customer_id=cid, plan_id="team", entity_id=f"{cid}_e", invoice_mode=BY_INVOICE)
        api.track(cid, "messages", 300, entity_id=f"{cid}_e")
    api(
        "billing.update",
        customer_id="ends",
        plan_id="team",
        entity_id="ends_e",
        cancel_action="cancel_end_of_cycle",
    )
    api.track("plain", "messages", 40, entity_id="plain_e")


def _listed_are_got(api: Api, **body: Any) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = api("entities.list", limit=100, **body)["list"]
    for entity in listed:
        got = api("entities.get", customer_id=entity["customer_id"], entity_id=entity["id"])
        assert entity == got, entity["id"]
    return listed


def _messages(entity: dict[str, Any]) -> tuple[float, float]:
    balance = entity["balances"]["messages"]
    return balance["usage"], balance["remaining"]


def test_a_page_read_past_a_renewal_is_what_get_answers(api: Api) -> None:
    _world(api)
    before = {e["id"]: e for e in _listed_are_got(api)}
    assert _messages(before["renews_e"]) == (300, 800)  # team's 1000 and the customer's free 100
    assert "team" in [s["plan_id"] for s in before["ends_e"]["subscriptions"]]
    api.advance(days=32)  # the renewals and the cycle's end are due; nothing has read the customers yet
    listed = _listed_are_got(api)  # the page first, then each entity's get
    after = {e["id"]: e for e in listed}
    assert sorted(after) == ["ends_e", "plain_e", "renews_e"]
    assert _messages(after["renews_e"]) == (0, 1100)
    assert ("team", True) in [(s["plan_id"], s["past_due"]) for s in after["renews_e"]["subscriptions"]]
    assert "team" not in [s["plan_id"] for s in after["ends_e"]["subscriptions"]]
    assert _messages(after["plain_e"])[0] == 0  # the free plan's monthly reset
    # one customer's page, read first past the next renewal, answers the same
    api.track("renews", "messages", 25, entity_id="renews_e")
    api.advance(days=31)
    only = _listed_are_got(api, customer_id="renews")
    assert [e["id"] for e in only] == ["renews_e"]
    assert _messages(only[0]) == (0, 1100)


@pytest.fixture
def counted() -> Iterator[tuple[Api, SqliteStatements]]:
    with traced_api() as traced:
        yield traced


def _page_transactions(seen: list[tuple[int, str]]) -> list[str]:
    """The BEGIN of each transaction that read the entities page (``store.entities.entity_page``: the
    entities with their customers' ids as ``cid``)."""
    begins: dict[int, str] = {}
    out: list[str] = []
    for key, sql in seen:
        if sql.startswith("BEGIN"):
            begins[key] = sql
        elif "FROM entities" in sql and "AS cid" in sql and key in begins:
            out.append(begins.pop(key))
    return out


def test_a_page_with_nothing_due_is_read_in_a_read_transaction(counted: tuple[Api, SqliteStatements]) -> None:
    api, statements = counted
    _world(api)
    assert _page_transactions(statements.during(api, "entities.list", limit=100)) == ["BEGIN DEFERRED"]
    api.advance(days=32)
    # maintenance is due: the page is read, each due customer caught up in its own write
    # transaction, and the page read again, in a read transaction
    seen = statements.during(api, "entities.list", limit=100)
    assert _page_transactions(seen) == ["BEGIN DEFERRED", "BEGIN DEFERRED"]
    assert sum(1 for _, sql in seen if sql == "BEGIN IMMEDIATE") >= 2  # "renews" and "ends" caught up
    assert _page_transactions(statements.during(api, "entities.list", limit=100)) == ["BEGIN DEFERRED"]
    _listed_are_got(api)
