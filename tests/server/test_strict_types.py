"""A body's JSON types are checked, never coerced: Autumn's Zod schemas refuse a boolean or a string
where a number belongs, and a string or a number where a boolean belongs, so this server answers 400
``invalid_inputs`` naming the field instead of reading ``{"version": true}`` as version 1.

Over real HTTP, on SQLite and PostgreSQL: each wrong type is refused with Autumn's error JSON and
nothing changes (the customer, its events, the catalogue); the right types, and what Zod accepts
too (an integral float for an integer, a list's ``limit`` as a string), are served.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from reference_server.clock import ManualClock
from reference_server.testing import RunningServer

from .helpers import Api, new_org_key

CUSTOMER = "cus_strict_types"
FEATURE = "messages"
PLAN = "pro"
TRACK = {"customer_id": CUSTOMER, "feature_id": FEATURE}
PLAN_ITEM = {"feature_id": FEATURE, "included": 10, "reset": {"interval": "month"}}


@dataclass(frozen=True)
class Case:
    id: str
    path: str
    body: Any
    message: str
    """The exact message Autumn's error JSON carries."""


CASES = [
    Case(
        "number-given-boolean",
        "/v1/billing.update",
        {**TRACK, "plan_id": PLAN, "version": True},
        "version: must be a number",
    ),
    Case(
        "number-given-numeric-string",
        "/v1/billing.update",
        {**TRACK, "plan_id": PLAN, "version": "1"},
        "version: must be a number",
    ),
    Case("track-value-string", "/v1/balances.track", {**TRACK, "value": "5"}, "value: must be a number"),
    Case("track-value-boolean", "/v1/balances.track", {**TRACK, "value": True}, "value: must be a number"),
    Case(
        "check-required-balance-string",
        "/v1/balances.check",
        {**TRACK, "required_balance": "2"},
        "required_balance: must be a number",
    ),
    Case(
        "integer-given-string",
        "/v1/balances.track",
        {**TRACK, "timestamp": "1767225600000"},
        "timestamp: must be an integer",
    ),
    Case(
        "integer-given-fraction",
        "/v1/balances.track",
        {**TRACK, "timestamp": 1767225600000.5},
        "timestamp: must be an integer",
    ),
    Case(
        "boolean-given-string",
        "/v1/features.create",
        {"feature_id": "f_new", "name": "New", "type": "metered", "consumable": "true"},
        "consumable: must be a boolean",
    ),
    Case(
        "boolean-given-number",
        "/v1/features.create",
        {"feature_id": "f_new", "name": "New", "type": "metered", "consumable": 1},
        "consumable: must be a boolean",
    ),
    Case(
        "boolean-given-false-string",
        "/v1/customers.update",
        {"customer_id": CUSTOMER, "send_email_receipts": "false"},
        "send_email_receipts: must be a boolean",
    ),
    Case(
        "string-given-number",
        "/v1/customers.update",
        {"customer_id": CUSTOMER, "name": 42},
        "name: must be a string",
    ),
    Case(
        "id-given-number",
        "/v1/customers.get_or_create",
        {"customer_id": 12345},
        "customer_id: must be a string",
    ),
    Case(
        "enum-wrong-case",
        "/v1/features.create",
        {"feature_id": "f_new", "name": "New", "type": "Metered"},
        "type: must be 'boolean', 'metered', 'credit_system' or 'ai_credit_system'",
    ),
    Case(
        "nested-object-number-string",
        "/v1/plans.create",
        {"plan_id": "p_new", "name": "New", "price": {"amount": "10", "interval": "month"}},
        "price.amount: must be a number",
    ),
    Case(
        "nested-array-number-string",
        "/v1/plans.create",
        {"plan_id": "p_new", "name": "New", "items": [{**PLAN_ITEM, "included": "5"}]},
        "items.0.included: must be a number",
    ),
    Case(
        "nested-array-enum-wrong-case",
        "/v1/plans.create",
        {"plan_id": "p_new", "name": "New", "items": [{**PLAN_ITEM, "reset": {"interval": "Month"}}]},
        "items.0.reset.interval: must be 'one_off', 'minute', 'hour', 'day', 'week', 'month', "
        "'quarter', 'semi_annual' or 'year'",
    ),
    Case(
        "array-of-numbers-given-strings",
        "/v1/customers.list",
        {"plans": [{"id": PLAN, "versions": ["1"]}]},
        "plans.0.versions.0: must be a number",
    ),
    Case(
        "array-given-string",
        "/v1/features.create",
        {"feature_id": "f_new", "name": "New", "type": "metered", "event_names": "sent"},
        "event_names: must be an array",
    ),
    Case(
        "object-given-string",
        "/v1/customers.update",
        {"customer_id": CUSTOMER, "metadata": "vip"},
        "metadata: must be an object",
    ),
    Case(
        "balance-number-given-string",
        "/v1/balances.update",
        {**TRACK, "add_to_balance": "3"},
        "add_to_balance: must be a number",
    ),
    Case(
        "batch-item-number-given-string",
        "/v1/balances.batch_track",
        [TRACK, {**TRACK, "value": "2"}],
        "Item 1: value: must be a number",
    ),
    Case(
        "two-wrong-types",
        "/v1/balances.track",
        {**TRACK, "value": "5", "entity_id": 7},
        "[Validation Errors] entity_id: must be a string; value: must be a number",
    ),
]


@dataclass
class World:
    server: RunningServer
    api: Api


@pytest.fixture(scope="module")
def world(server: tuple[RunningServer, ManualClock]) -> Iterator[World]:
    """One organization with a feature, a plan with 10 messages, and a customer on it who used 1."""
    srv, clock = server
    api = Api(srv, new_org_key(srv), clock)
    api.feature(FEATURE)
    api.plan(PLAN, [PLAN_ITEM])
    api.customer(CUSTOMER, name="Strict")
    api("billing.attach", customer_id=CUSTOMER, plan_id=PLAN)
    api.track(CUSTOMER, FEATURE, 1)
    yield World(srv, api)
    api.http.close()


def snapshot(api: Api) -> dict[str, Any]:
    """What a refused request must leave as it was."""
    return {
        "customer": api("customers.get", customer_id=CUSTOMER),
        "events": api("events.list", customer_id=CUSTOMER),
        "plans": api("plans.list")["list"],
        "features": api("features.list")["list"],
        "customers": sorted(c["id"] for c in api("customers.list", limit=1000)["list"]),
    }


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_wrong_json_type_is_refused_before_any_work(world: World, case: Case) -> None:
    before = snapshot(world.api)
    r = world.api.http.post(case.path, json=case.body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"message": case.message, "code": "invalid_inputs", "env": "sandbox"}
    assert snapshot(world.api) == before


def test_the_right_types_are_served(world: World) -> None:
    api = world.api
    assert api("billing.preview_update", customer_id=CUSTOMER, plan_id=PLAN, version=1)
    other = api.customer(name="Typed", send_email_receipts=False, metadata={"tier": "gold", "seats": 1.5})
    assert other["name"] == "Typed" and other["metadata"] == {"tier": "gold", "seats": 1.5}
    assert api.track(CUSTOMER, FEATURE, 2)["value"] == 2
    assert api.check(CUSTOMER, FEATURE, required_balance=1.5)["allowed"] is True
    feature = api("features.create", feature_id="f_typed", name="Typed", type="metered", consumable=False)
    assert feature["consumable"] is False
    api.plan("p_typed", [{**PLAN_ITEM, "included": 5}], price={"amount": 10, "interval": "month"})
    assert [i["included"] for i in api("plans.get", plan_id="p_typed")["items"]] == [5]


def test_what_zod_accepts_is_served(world: World) -> None:
    """An integral float is an integer to Zod (JavaScript has one number type), and a list reads its
    ``limit`` with ``z.coerce.number()``: both stay accepted."""
    api = world.api
    assert api.track(CUSTOMER, FEATURE, 1, timestamp=1_767_225_600_000.0)["value"] == 1
    assert len(api("customers.list", limit="1")["list"]) == 1
    assert len(api("customers.list", limit=1.0)["list"]) == 1
    assert len(api("customers.list", limit=True)["list"]) == 1  # Number(true) is 1
    page = api("events.list", customer_id=CUSTOMER, limit=" 2 ")["list"]
    assert len(page) == 2


def test_a_list_limit_zod_cannot_read_is_refused(world: World) -> None:
    r = world.api.http.post("/v1/customers.list", json={"limit": "many"})
    assert r.status_code == 400, r.text
    assert r.json() == {"message": "limit: must be an integer", "code": "invalid_inputs", "env": "sandbox"}


def test_query_parameters_are_still_parsed_from_strings(world: World) -> None:
    """A GET's query values are strings on the wire: ``limit=1`` is the number 1."""
    r = httpx.get(
        world.server.url + "/v1/platform/organizations",
        params={"limit": "1", "offset": "0"},
        headers=world.server.headers,
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["list"]) == 1
