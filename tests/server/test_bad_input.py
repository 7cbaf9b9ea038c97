"""Every bad request gets a clear 4xx in Autumn's error JSON, before any work (issue 10).

One table of bad requests, each sent over real HTTP to the server on SQLite and on PostgreSQL:
the status, the error code, a strict-JSON body with ``message``/``code``/``env`` (and the message's
wording where it matters), and that nothing changed: the customer's balances, its events, the
plan and the catalogue's lists read the same before and after.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from reference_server.api.request_guard import (
    DEFAULT_MAX_BODY_BYTES,
    MAX_DEPTH,
    MAX_ID_LENGTH,
    MAX_INT32,
    MAX_PERIOD_COUNT,
    MAX_SAFE_INTEGER,
    MAX_SCHEDULE_MS,
    MAX_TIMESTAMP_MS,
)
from reference_server.clock import ManualClock
from reference_server.testing import RunningServer, run_server

from .helpers import Api, new_org_key

CUSTOMER = "cus_bad_input"
FEATURE = "messages"
PLAN = "free"
TRACK = {"customer_id": CUSTOMER, "feature_id": FEATURE}
RANGE = f"between -{MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER}"
BRANCH_NAMES = re.compile(r"\.(int|float|str|bool)\b|literal\[|function-after|Input should")
"""The validator's own words, which a message must never show (``value.int: Input should be ...``)."""
WHEN = f"must be a time in milliseconds since 1970 between 0 and {MAX_TIMESTAMP_MS}"


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name} in a response")


def strict_json(text: str) -> Any:
    """``json.loads`` that refuses ``NaN``/``Infinity``: what any other JSON parser would do."""
    return json.loads(text, parse_constant=_no_constant)


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _track_with(fragment: str, base: dict[str, Any] = TRACK) -> bytes:
    """``base`` plus a raw JSON fragment that ``json.dumps`` would never write (``NaN``, ``1e309``)."""
    return _raw(json.dumps(base)[:-1] + ", " + fragment + "}")


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        node = {"n": node}
    return node


@dataclass(frozen=True)
class Case:
    id: str
    path: str
    body: bytes | None = None
    status: int = 400
    code: str = "invalid_inputs"
    message: str | None = None
    """The exact message, when its wording is the point."""
    contains: tuple[str, ...] = ()
    method: str = "POST"
    query: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    platform: bool = False
    """Sent with the server's own key (the platform API's caller)."""
    allow: str | None = None


CASES = [
    # -- numbers: non-finite, overflowing, over-long, out of the column's range
    Case(
        "track-infinity",
        "/v1/balances.track",
        _track_with('"value": Infinity'),
        message="value: must be a finite number",
    ),
    Case(
        "track-1e309-legacy-track",
        "/v1/track",
        _track_with('"value": 1e309'),
        message="value: must be a finite number",
    ),
    Case(
        "track-5000-digit-integer",
        "/v1/balances.track",
        _track_with('"value": ' + "9" * 5000),
        message=f"Request body holds a number with more than {sys.get_int_max_str_digits()} digits",
    ),
    Case(
        "track-minus-infinity-legacy-events",
        "/v1/events",
        _track_with('"value": -Infinity'),
        message="value: must be a finite number",
    ),
    Case(
        "track-401-digit-integer",
        "/v1/balances.track",
        _track_with('"value": ' + "9" * 401),
        message=f"value: must be {RANGE}",
    ),
    Case(
        "track-beyond-2^53",
        "/v1/balances.track",
        _json({**TRACK, "value": MAX_SAFE_INTEGER + 2}),
        message=f"value: must be {RANGE}",
    ),
    Case(
        "check-nan",
        "/v1/balances.check",
        _track_with('"required_balance": NaN'),
        message="required_balance: must be a finite number",
    ),
    Case(
        "check-nan-legacy-check",
        "/v1/check",
        _track_with('"required_balance": NaN'),
        message="required_balance: must be a finite number",
    ),
    Case(
        "check-infinity-legacy-entitled",
        "/v1/entitled",
        _track_with('"required_balance": Infinity'),
        message="required_balance: must be a finite number",
    ),
    Case(
        "balances-update-remaining-infinity",
        "/v1/balances.update",
        _track_with('"remaining": Infinity'),
        message="remaining: must be a finite number",
    ),
    Case(
        "nan-inside-event-properties",
        "/v1/balances.track",
        _track_with('"properties": {"cost": NaN}'),
        message="properties.cost: must be a finite number",
    ),
    Case(
        "aggregate-range-start-beyond-2^53",
        "/v1/events.aggregate",
        _json({**TRACK, "custom_range": {"start": -1.9e16, "end": 0}}),
        message=f"custom_range.start: must be {RANGE}",
    ),
    Case(
        "aggregate-range-start-before-1970",
        "/v1/events.aggregate",
        _json({**TRACK, "custom_range": {"start": -(10**15), "end": 0}}),
        message=f"custom_range.start: {WHEN}",
    ),
    Case(
        "events-list-range-end-after-9999",
        "/v1/events.list",
        _json({"customer_id": CUSTOMER, "custom_range": {"start": 0, "end": MAX_TIMESTAMP_MS + 1}}),
        contains=("custom_range.end: must be a time in milliseconds",),
    ),
    Case(
        "balances-create-expires-at-negative",
        "/v1/balances.create",
        _json({**TRACK, "included_grant": 5, "expires_at": -1}),
        contains=("expires_at: must be a time in milliseconds",),
    ),
    Case(
        "plan-interval-count-past-the-period-limit",
        "/v1/plans.update",
        _json(
            {
                "plan_id": PLAN,
                "items": [
                    {
                        "feature_id": FEATURE,
                        "included": 5,
                        "reset": {"interval": "year", "interval_count": MAX_PERIOD_COUNT + 1},
                    }
                ],
            }
        ),
        message=f"items.0.reset.interval_count: must be at most {MAX_PERIOD_COUNT}",
    ),
    Case(
        "trial-duration-past-the-period-limit",
        "/v1/plans.update",
        _json({"plan_id": PLAN, "free_trial": {"duration_length": MAX_INT32, "duration_type": "year"}}),
        message=f"free_trial.duration_length: must be at most {MAX_PERIOD_COUNT}",
    ),
    Case(
        "plan-version-beyond-int32",
        "/v1/plans.get",
        _json({"plan_id": PLAN, "version": MAX_INT32 + 1}),
        message=f"version: must be at most {MAX_INT32}",
    ),
    Case(
        "balances-create-expires-after-3000",
        "/v1/balances.create",
        _json({**TRACK, "included_grant": 5, "expires_at": MAX_SCHEDULE_MS + 1}),
        message=f"expires_at: must be a time in milliseconds since 1970 between 0 and {MAX_SCHEDULE_MS}",
    ),
    Case(
        "test-clock-past-3000",
        "/v1/test_clocks.advance",
        _json({"days": 1e12}),
        message=f"a test clock cannot move past {MAX_SCHEDULE_MS} (3000-01-01)",
    ),
    Case(
        "test-clock-days-not-a-number",
        "/v1/customers.advance_test_clock",
        _json({"customer_id": CUSTOMER, "days": "many"}),
        message="days: must be a number",
    ),
    # -- strings: NUL, lone surrogates, lengths
    Case(
        "lone-surrogate-in-customer-id",
        "/v1/customers.get_or_create",
        _raw('{"customer_id": "bad\\ud800id"}'),
        message="customer_id: must not contain lone surrogates (invalid Unicode)",
    ),
    Case(
        "lone-surrogate-in-track-entity-id",
        "/v1/balances.track",
        _track_with('"entity_id": "\\udfff"'),
        message="entity_id: must not contain lone surrogates (invalid Unicode)",
    ),
    Case(
        "nul-in-customer-name",
        "/v1/customers.update",
        _json({"customer_id": CUSTOMER, "name": "a\x00b"}),
        message="name: must not contain NUL characters",
    ),
    Case(
        "nul-in-event-property",
        "/v1/balances.track",
        _json({**TRACK, "properties": {"note": "x\x00"}}),
        message="properties.note: must not contain NUL characters",
    ),
    Case(
        "nul-in-a-map-key",
        "/v1/balances.track",
        _json({**TRACK, "properties": {"no\x00te": 1}}),
        message="properties: keys must not contain NUL characters",
    ),
    Case(
        "customer-id-256-characters",
        "/v1/customers.get_or_create",
        _json({"customer_id": "c" * (MAX_ID_LENGTH + 1)}),
        message=f"customer_id: at most {MAX_ID_LENGTH} characters",
    ),
    Case(
        "customer-id-1000000-characters",
        "/v1/customers.get_or_create",
        _json({"customer_id": "c" * 1_000_000}),
        message=f"customer_id: at most {MAX_ID_LENGTH} characters",
    ),
    Case(
        "track-feature-id-256-characters",
        "/v1/balances.track",
        _json({"customer_id": CUSTOMER, "feature_id": "f" * (MAX_ID_LENGTH + 1)}),
        message=f"feature_id: at most {MAX_ID_LENGTH} characters",
    ),
    Case(
        "plan-name-256-characters",
        "/v1/plans.update",
        _json({"plan_id": PLAN, "name": "n" * (MAX_ID_LENGTH + 1)}),
        message=f"name: at most {MAX_ID_LENGTH} characters",
    ),
    Case(
        "body-idempotency-key-256-characters",
        "/v1/balances.track",
        _json({**TRACK, "idempotency_key": "k" * (MAX_ID_LENGTH + 1)}),
        message=f"idempotency_key: at most {MAX_ID_LENGTH} characters",
    ),
    Case(
        "idempotency-key-header-256-characters",
        "/v1/balances.track",
        _json(TRACK),
        headers={"Idempotency-Key": "k" * (MAX_ID_LENGTH + 1)},
        contains=("Idempotency-Key", str(MAX_ID_LENGTH)),
    ),
    # -- null where the spec does not allow it
    Case(
        "null-send-email-receipts",
        "/v1/customers.update",
        _json({"customer_id": CUSTOMER, "send_email_receipts": None}),
        message="send_email_receipts: must not be null",
    ),
    Case(
        "null-plan-name",
        "/v1/plans.update",
        _json({"plan_id": PLAN, "name": None}),
        message="name: must not be null",
    ),
    Case(  # several: the first in the spec's field order, whatever order they were sent in
        "null-plan-fields-reported-in-field-order",
        "/v1/plans.update",
        _json({"plan_id": PLAN, "archived": None, "description": None, "add_on": None, "group": None}),
        message="group: must not be null",
    ),
    Case(
        "null-nested-reset-interval-count",
        "/v1/plans.update",
        _json(
            {
                "plan_id": PLAN,
                "items": [{"feature_id": FEATURE, "reset": {"interval": "month", "interval_count": None}}],
            }
        ),
        message="items.0.reset.interval_count: must not be null",
    ),
    # -- validation messages in the user's words
    Case(
        "value-not-a-number",
        "/v1/balances.track",
        _json({**TRACK, "value": "lots"}),
        message="value: must be a number",
    ),
    Case(
        "customer-id-missing",
        "/v1/balances.track",
        _json({"feature_id": FEATURE, "value": 1}),
        message="customer_id: is required",
    ),
    Case(
        "tier-to-neither-number-nor-inf",
        "/v1/plans.update",
        _json({"plan_id": PLAN, "items": [{"feature_id": FEATURE, "price": {"tiers": [{"to": "y"}]}}]}),
        contains=(
            "items.0.price.tiers.0.to: must be a number or 'inf'",
            "items.0.price.interval: is required",
        ),
    ),
    Case(
        "aggregate-feature-id-wrong-type",
        "/v1/events.aggregate",
        _json({"customer_id": CUSTOMER, "feature_id": 5}),
        message="feature_id: must be a string or an array",
    ),
    # -- the body itself
    Case(
        "not-json",
        "/v1/customers.get_or_create",
        b'{"customer_id": ',
        message="Request body is not valid JSON",
    ),
    Case(
        "not-utf8",
        "/v1/balances.track",
        b'{"customer_id": "\xff\xfe"}',
        message="Request body is not valid JSON",
    ),
    Case(
        "not-an-object",
        "/v1/balances.check",
        b"[1, 2]",
        message="Request body must be a JSON object",
    ),
    Case(
        "nested-5000-deep",
        "/v1/balances.track",
        b"[" * 5000 + b"]" * 5000,
        message=f"Request body is nested deeper than {MAX_DEPTH} levels",
    ),
    Case(
        "nested-5000-deep-in-metadata",
        "/v1/customers.update",
        _track_with('"metadata": {"x": ' + "[" * 5000 + "]" * 5000 + "}", {"customer_id": CUSTOMER}),
        message=f"Request body is nested deeper than {MAX_DEPTH} levels",
    ),
    Case(
        "nested-just-past-the-limit",
        "/v1/balances.track",
        _json({**TRACK, "properties": _nested(MAX_DEPTH - 1)}),  # the body, then 32 levels of properties
        message=f"Request body is nested deeper than {MAX_DEPTH} levels",
    ),
    Case(
        "track-10-mb-body",
        "/v1/balances.track",
        _json({**TRACK, "properties": {"blob": "x" * (10 * 1024 * 1024)}}),
        status=413,
        code="payload_too_large",
        message=f"Request body is larger than {DEFAULT_MAX_BODY_BYTES} bytes",
    ),
    Case(
        "check-over-1-mib-legacy-check",
        "/v1/check",
        _json({**TRACK, "properties": {"blob": "x" * DEFAULT_MAX_BODY_BYTES}}),
        status=413,
        code="payload_too_large",
    ),
    Case(
        "routed-path-over-1-mib",
        "/v1/customers.update",
        _json({"customer_id": CUSTOMER, "metadata": {"blob": "x" * (2 * DEFAULT_MAX_BODY_BYTES)}}),
        status=413,
        code="payload_too_large",
    ),
    # -- the platform API: query parameters, its own error codes
    Case(
        "platform-offset-beyond-64-bit",
        "/v1/platform/organizations",
        method="GET",
        query={"offset": "9999999999999999999"},
        platform=True,
        code="invalid_input",
        message=f"offset: must be {RANGE}",
    ),
    Case(
        "platform-offset-beyond-int32",
        "/v1/platform/organizations",
        method="GET",
        query={"offset": str(MAX_INT32 + 1)},
        platform=True,
        code="invalid_input",
        message=f"offset: must be at most {MAX_INT32}",
    ),
    Case(
        "platform-limit-not-a-number",
        "/v1/platform/organizations",
        method="GET",
        query={"limit": "ten"},
        platform=True,
        code="invalid_input",
        message="limit: must be an integer",
    ),
    Case(
        "platform-nul-in-query",
        "/v1/platform/users",
        method="GET",
        query={"offset": "\x00"},
        platform=True,
        code="invalid_input",
        message="offset: must not contain NUL characters",
    ),
    Case(
        "platform-create-bad-env",
        "/v1/platform/organizations",
        _json({"user_email": "a@example.com", "name": "N", "slug": "s-bad-env", "env": "nope"}),
        platform=True,
        code="invalid_input",
    ),
    Case(
        "platform-slug-256-characters",
        "/v1/platform/organizations",
        _json({"user_email": "a@example.com", "name": "N", "slug": "s" * 256, "env": "test"}),
        platform=True,
        code="invalid_input",
        message=f"slug: at most {MAX_ID_LENGTH} characters",
    ),
    # -- 404 and 405
    Case(
        "unknown-route",
        "/v1/nope",
        _json({}),
        status=404,
        code="not_found",
        message="Route POST /v1/nope not found",
    ),
    Case(
        "unknown-platform-route", "/v1/platform/nope", _json({}), status=404, code="not_found", platform=True
    ),
    Case(
        "get-on-a-hot-path",
        "/v1/balances.track",
        method="GET",
        status=405,
        code="method_not_allowed",
        allow="POST",
    ),
    Case(
        "put-on-a-routed-path",
        "/v1/customers.get",
        _json({"customer_id": CUSTOMER}),
        method="PUT",
        status=405,
        code="method_not_allowed",
        allow="POST",
    ),
    Case(
        "delete-on-a-platform-path",
        "/v1/platform/organizations",
        method="DELETE",
        status=405,
        code="not_allowed",
        platform=True,
        allow="GET, HEAD, POST",
    ),
]


@dataclass
class World:
    server: RunningServer
    api: Api


@pytest.fixture(scope="module")
def world(server: tuple[RunningServer, ManualClock]) -> Iterator[World]:
    """One organization with a feature, a plan, a customer who used 3 of 100, and its event."""
    srv, clock = server
    api = Api(srv, new_org_key(srv), clock)
    api.feature(FEATURE)
    api.plan(
        PLAN, [{"feature_id": FEATURE, "included": 100, "reset": {"interval": "month"}}], auto_enable=True
    )
    api.customer(CUSTOMER, name="Bad Input")
    api.track(CUSTOMER, FEATURE, 3, properties={"note": "baseline"})
    yield World(srv, api)
    api.http.close()


def snapshot(api: Api) -> dict[str, Any]:
    """What a refused request must leave as it was."""
    return {
        "customer": api("customers.get", customer_id=CUSTOMER),
        "events": api("events.list", customer_id=CUSTOMER),
        "plan": api("plans.get", plan_id=PLAN),
        "plans": [p["id"] for p in api("plans.list")["list"]],
        "customers": sorted(c["id"] for c in api("customers.list", limit=1000)["list"]),
    }


def send(world: World, case: Case) -> httpx.Response:
    key = world.server.secret_key if case.platform else world.api.key
    headers = {"Authorization": f"Bearer {key}", **case.headers}
    if case.body is not None:
        headers["Content-Type"] = "application/json"
    with httpx.Client(base_url=world.server.url, timeout=60) as client:
        return client.request(case.method, case.path, content=case.body, params=case.query, headers=headers)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_request_is_refused_before_any_work(world: World, case: Case) -> None:
    before = snapshot(world.api)
    r = send(world, case)
    body = strict_json(r.text)
    assert r.status_code == case.status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert set(body) == {"message", "code", "env"}, body
    assert body["code"] == case.code, body
    assert body["env"] == "sandbox"
    assert isinstance(body["message"], str) and body["message"]
    if case.message is not None:
        assert body["message"] == case.message
    for part in case.contains:
        assert part in body["message"], body["message"]
    assert not BRANCH_NAMES.search(body["message"]), body["message"]
    if case.allow is not None:
        assert r.headers["allow"] == case.allow
    assert snapshot(world.api) == before


def test_values_at_the_limits_are_served(world: World) -> None:
    """The limits refuse only what lies past them: the values on the edge work on both databases."""
    api = world.api
    edge = "e" * MAX_ID_LENGTH
    assert api.customer(edge)["id"] == edge
    assert api.track(edge, FEATURE, 1.5, properties=_nested(MAX_DEPTH - 2))["value"] == 1.5
    events = api("events.list", customer_id=edge)["list"]
    assert [e["value"] for e in events] == [1.5]
    api("customers.update", customer_id=edge, name=None, send_email_receipts=True)  # name may be null
    grant = {"interval": "year", "interval_count": MAX_PERIOD_COUNT}
    api("balances.create", customer_id=edge, feature_id=FEATURE, included_grant=2, reset=grant)
    assert api.check(edge, FEATURE, required_balance=MAX_SAFE_INTEGER)["allowed"] is False
    start = world.api.clock.now_ms() - 86_400_000
    window = api(
        "events.aggregate",
        customer_id=edge,
        feature_id=FEATURE,
        custom_range={"start": start, "end": MAX_TIMESTAMP_MS},
    )
    assert window["total"][FEATURE]["sum"] == 1.5
    r = httpx.get(
        world.server.url + "/v1/platform/organizations",
        params={"limit": "100", "offset": str(MAX_INT32)},
        headers=world.server.headers,
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert strict_json(r.text)["list"] == []


def test_body_limit_is_configurable() -> None:
    """``create_app(max_body_bytes=...)``: a body past it is 413, one within it is served."""
    with run_server(max_body_bytes=2048) as srv, srv.client(timeout=60) as client:
        small = {"customer_id": "c1", "metadata": {"note": "n" * 1500}}
        assert client.post("/v1/customers.get_or_create", json=small).status_code == 200
        big = {"customer_id": "c2", "metadata": {"blob": "x" * 3000}}
        r = client.post("/v1/customers.get_or_create", json=big)
        assert (r.status_code, strict_json(r.text)["code"]) == (413, "payload_too_large")
        assert strict_json(r.text)["message"] == "Request body is larger than 2048 bytes"
        r = client.post(
            "/v1/balances.track", json={"customer_id": "c2", "feature_id": "f", "properties": big}
        )
        assert (r.status_code, strict_json(r.text)["code"]) == (413, "payload_too_large")
        assert strict_json(client.post("/v1/customers.list", json={}).text)["list"][0]["id"] == "c1"


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/v1/invoices.finalize", {"invoice_id": 12}, "invoice_id: must be a string"),
        ("/v1/customers.advance_test_clock", {"customer_id": "c", "frozen_time": "soon"}, None),
    ],
)
def test_operations_beyond_the_spec_validate_their_bodies_too(
    world: World, path: str, body: dict[str, Any], message: str | None
) -> None:
    """invoices.finalize and the test clocks have no generated model; a wrong type used to reach the
    database (a number as an id gave a 500)."""
    r = world.api.raw(path, body)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid_inputs"
    if message is not None:
        assert r.json()["message"] == message
