"""``create_in_stripe`` on ``plans.create`` and ``plans.update`` when Stripe fails: 400 ``stripe_error``,
"(Stripe Error) <Stripe's message>", as Autumn's error middleware answers any Stripe error (the
dispatcher's catch-all, ``registry.describe_failure``), and nothing is written: no plan, no new version
or name, no ``Idempotency-Key`` kept (a retry runs again).

Over real HTTP with a server charging through Stripe whose API address is a closed loopback port (Stripe
unreachable), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reference_server.testing import RunningServer

from .helpers import DATABASES, stored_keys, stripe_down_server

PREFIX = "(Stripe Error) "
PRICE = {"amount": 15, "interval": "month"}


@pytest.fixture(params=DATABASES)
def stripe_down(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """A server charging through Stripe whose Stripe API address is a closed loopback port."""
    with stripe_down_server(request.param) as server:
        yield server


def _client(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=server.headers, timeout=60)


def _post(http: httpx.Client, op: str, key: str | None = None, **body: Any) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return http.post(f"/v1/{op}", json=body, headers=headers)


def _stripe_error(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["code"], body["env"]) == ("stripe_error", "sandbox"), body
    assert body["message"].startswith(PREFIX) and len(body["message"]) > len(PREFIX), body


def test_plans_create_is_a_stripe_error_and_writes_nothing(stripe_down: RunningServer) -> None:
    with _client(stripe_down) as http:
        _create_refused(stripe_down, http)


def _create_refused(server: RunningServer, http: httpx.Client) -> None:
    for _ in range(2):  # the key is not kept: the retry runs again and fails the same way
        created = _post(
            http,
            "plans.create",
            "create-down-1",
            plan_id="solo",
            name="Solo",
            price=PRICE,
            create_in_stripe=True,
        )
        _stripe_error(created)
        assert stored_keys(server, "create-down-1") == 0
    missing = _post(http, "plans.get", plan_id="solo")
    assert (missing.status_code, missing.json()["code"]) == (404, "product_not_found"), missing.text
    listed = _post(http, "plans.list")
    assert listed.status_code == 200 and listed.json()["list"] == [], listed.text
    # Without create_in_stripe the Product and Prices wait for the first billing: the plan is written.
    later = _post(http, "plans.create", plan_id="solo", name="Solo", price=PRICE, create_in_stripe=False)
    assert later.status_code == 200 and later.json()["id"] == "solo", later.text


def test_plans_update_is_a_stripe_error_and_keeps_the_plan_as_it_was(stripe_down: RunningServer) -> None:
    with _client(stripe_down) as http:
        _update_refused(stripe_down, http)


def _update_refused(server: RunningServer, http: httpx.Client) -> None:
    created = _post(http, "plans.create", plan_id="solo", name="Solo", price=PRICE, create_in_stripe=False)
    assert created.status_code == 200, created.text
    before = _post(http, "plans.get", plan_id="solo").json()

    renamed = _post(
        http, "plans.update", "update-down-1", plan_id="solo", name="Solo Plus", create_in_stripe=True
    )
    _stripe_error(renamed)
    assert stored_keys(server, "update-down-1") == 0
    repriced = _post(
        http, "plans.update", plan_id="solo", price={"amount": 18, "interval": "month"}, create_in_stripe=True
    )
    _stripe_error(repriced)
    assert _post(http, "plans.get", plan_id="solo").json() == before  # name, price and version unchanged
    versions = _post(http, "plans.list", all_versions=True)
    assert [p["version"] for p in versions.json()["list"]] == [1], versions.text
