"""The Starlette adapter mounted in a FastAPI app, as the README shows, with the reference server behind.

FastAPI is Starlette underneath, so ``app.mount("/api/autumn", autumn_app(identify))`` is all it
takes; these tests hold that promise: the hooks' routes answer through FastAPI's test client, next
to the app's own routes, and the mount stays out of FastAPI's OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from autumn_handlers import Identity
from autumn_handlers.starlette import autumn_app

from .live import FEATURE, FREE_INCLUDED, FREE_PLAN, PAID_PLAN, PAID_PRICE, LiveAutumn

PREFIX = "/api/autumn"


async def identify(request: Request) -> Identity | None:
    customer_id = request.headers.get("x-user-id")
    return Identity(customer_id, {"name": "FastAPI User"}) if customer_id else None


@pytest.fixture
def client(reference: LiveAutumn) -> Iterator[TestClient]:
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.mount(PREFIX, autumn_app(identify, secret_key=reference.secret_key, autumn_url=reference.url))
    with TestClient(app) as test_client:
        yield test_client


def hook(client: TestClient, route: str, customer_id: str | None, body: Any = None) -> Any:
    """POST a hook route the way autumn-js does (camelCase JSON body)."""
    headers = {"x-user-id": customer_id} if customer_id else {}
    return client.post(f"{PREFIX}/{route}", json=body or {}, headers=headers)


def test_customer_is_created_from_identify(client: TestClient, reference: LiveAutumn) -> None:
    customer_id = reference.new_customer_id("cus_fastapi")
    reply = hook(client, "getOrCreateCustomer", customer_id)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["id"], body["name"]) == (customer_id, "FastAPI User")
    assert "sendEmailReceipts" in body  # camelCase for the browser
    assert reference.autumn.customers.get(customer_id=customer_id).name == "FastAPI User"


def test_attach_free_plan_and_see_its_balance(client: TestClient, reference: LiveAutumn) -> None:
    customer_id = reference.new_customer_id("cus_fastapi")
    hook(client, "getOrCreateCustomer", customer_id)  # the hooks create the customer first
    attached = hook(client, "attach", customer_id, {"planId": FREE_PLAN, "successUrl": "http://app.local/"})
    assert attached.status_code == 200, attached.text
    assert (attached.json()["customerId"], attached.json()["paymentUrl"]) == (customer_id, None)
    customer = hook(client, "getOrCreateCustomer", customer_id).json()
    assert [sub["planId"] for sub in customer["subscriptions"]] == [FREE_PLAN]
    assert customer["balances"][FEATURE]["remaining"] == FREE_INCLUDED


def test_preview_and_list_plans(client: TestClient, reference: LiveAutumn) -> None:
    customer_id = reference.new_customer_id("cus_fastapi")
    hook(client, "getOrCreateCustomer", customer_id)
    preview = hook(client, "previewAttach", customer_id, {"planId": PAID_PLAN})
    assert preview.status_code == 200, preview.text
    assert preview.json()["total"] == PAID_PRICE
    plans = hook(client, "listPlans", None).json()
    assert {FREE_PLAN, PAID_PLAN} <= {plan["id"] for plan in plans["list"]}


def test_errors_and_unknown_routes_keep_the_autumn_js_shape(client: TestClient) -> None:
    anonymous = hook(client, "attach", None, {"planId": FREE_PLAN})
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "no_customer_id"
    unknown = hook(client, "noSuchRoute", "cus_any")
    assert unknown.status_code == 404
    assert unknown.json() == {"message": "Not found", "code": "not_found", "statusCode": 404}


def test_the_app_own_routes_and_openapi_are_untouched(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) == {"/health"}
