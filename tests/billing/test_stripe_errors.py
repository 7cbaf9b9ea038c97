"""A Stripe error nothing caught answers as Autumn's error middleware does: 400 ``stripe_error``,
"(Stripe Error) <Stripe's message>", never a 500; the request is rolled back as for any unexpected
failure (nothing attached or invoiced, the ``Idempotency-Key`` not kept: a retry runs again).

Over real HTTP against localstripe (or a closed port for Stripe down), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from reference_server.store.tables.billing import invoices
from reference_server.testing import RunningServer
from tests.dashboard.helpers import ADMIN, Browser, create_admin_cli

from .helpers import DATABASES, PROCESSORS, Api, stored_keys, stripe_down_server

PREFIX = "(Stripe Error) "
PAYER_MESSAGE = "The payment could not be processed right now. Please try again in a few minutes."
STRIPE_ONLY = [param for param in PROCESSORS if str(param.id).startswith("stripe-")]
LOCAL_ONLY = [param for param in PROCESSORS if str(param.id).startswith("local-")]


def keyed(api: Api, op: str, key: str, **body: Any) -> httpx.Response:
    return api.http.post(f"/v1/{op}", json=body, headers={"Idempotency-Key": key})


def invoice_count(server: RunningServer) -> int:
    with server.app.state.autumn.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(invoices)).scalar_one())


@pytest.mark.parametrize("api", STRIPE_ONLY, indirect=True)
def test_a_customer_deleted_on_stripe_is_a_stripe_error_and_nothing_is_kept(api: Api) -> None:
    """(1) The customer's Stripe customer was deleted on Stripe: attaching a paid plan (charged to the
    card on file) is 400 stripe_error; nothing is attached or invoiced and the key is not kept."""
    assert api.stripe is not None
    api("customers.get_or_create", customer_id="u1", email="u1@example.com")
    api.add_card("u1")
    stripe_id = str(api.customer("u1")["processors"]["stripe"]["id"])
    assert api.stripe.v1.customers.delete(stripe_id).deleted is True
    api.stripe = None  # the books check lists the deleted customer's invoices: nothing to compare
    invoices_before = invoice_count(api.server)

    first = keyed(api, "billing.attach", "attach-deleted-1", customer_id="u1", plan_id="pro")
    assert first.status_code == 400, first.text
    body = first.json()
    assert body["code"] == "stripe_error" and body["env"] == "sandbox"
    assert body["message"].startswith(PREFIX) and len(body["message"]) > len(PREFIX)
    assert "pro" not in api.plans_of("u1")
    assert api.customer("u1")["invoices"] == []
    assert invoice_count(api.server) == invoices_before
    assert stored_keys(api.server, "attach-deleted-1") == 0
    # The same call with the same key runs again (no replay, no "in flight"): Stripe refuses again.
    again = keyed(api, "billing.attach", "attach-deleted-1", customer_id="u1", plan_id="pro")
    assert (again.status_code, again.json()) == (400, body)
    assert stored_keys(api.server, "attach-deleted-1") == 0
    assert "pro" not in api.plans_of("u1")


@pytest.mark.parametrize("api", LOCAL_ONLY, indirect=True)
def test_the_local_processor_is_unaffected(api: Api) -> None:
    """(3) The same calls on the local processor attach the plan and keep the key as ever."""
    api("customers.get_or_create", customer_id="u1", email="u1@example.com")
    api.add_card("u1")
    first = keyed(api, "billing.attach", "attach-local-1", customer_id="u1", plan_id="pro")
    assert first.status_code == 200, first.text
    assert api.plans_of("u1")["pro"] == "active"
    assert stored_keys(api.server, "attach-local-1") == 1
    again = keyed(api, "billing.attach", "attach-local-1", customer_id="u1", plan_id="pro")
    assert (again.status_code, again.json()) == (200, first.json())  # replayed
    assert len(api.customer("u1")["invoices"]) == 1


@pytest.mark.parametrize("api", STRIPE_ONLY, indirect=True)
def test_a_hosted_page_shows_a_stripe_error_as_a_page(api: Api) -> None:
    """A hosted page whose Stripe call fails (the Stripe customer deleted) shows an error page with
    Stripe's message, not a bare 500."""
    assert api.stripe is not None
    api("customers.get_or_create", customer_id="u2", email="u2@example.com")
    api("billing.setup_payment", customer_id="u2")  # makes its Stripe customer (no card set up)
    stripe_id = str(api.customer("u2")["processors"]["stripe"]["id"])
    api.stripe.v1.customers.delete(stripe_id)
    url = str(api("billing.attach", customer_id="u2", plan_id="pro")["payment_url"])
    assert "/c/pay/" not in url  # the server's checkout summary; "Continue to Stripe" calls Stripe
    api.stripe = None  # the books check lists the deleted customer's invoices: nothing to compare
    page = httpx.post(url.split("?")[0].rstrip("/") + "/stripe", follow_redirects=False)
    assert page.status_code == 400, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert PAYER_MESSAGE in page.text and PREFIX not in page.text  # Stripe's own words go to the log
    assert "pro" not in api.plans_of("u2")


@pytest.mark.parametrize("api", STRIPE_ONLY, indirect=True)
def test_the_dashboard_shows_a_stripe_error_on_its_page(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """An admin attaching a plan from the dashboard to a customer deleted on Stripe sees Autumn's
    message on the customer's page (400), and nothing is attached."""
    assert api.stripe is not None
    api("customers.get_or_create", customer_id="u3", email="u3@example.com")
    api.add_card("u3")
    api.stripe.v1.customers.delete(str(api.customer("u3")["processors"]["stripe"]["id"]))
    api.stripe = None  # the books check lists the deleted customer's invoices: nothing to compare
    assert create_admin_cli(api.server.database_url, "org_default", *ADMIN, monkeypatch) == 0
    admin = Browser(api.server.url)
    try:
        assert admin.sign_in(*ADMIN).status_code == 303
        attached = admin.post("/dashboard/sandbox/customers/u3/attach", plan_id="pro")
    finally:
        admin.close()
    assert attached.status_code == 400, attached.text
    assert PREFIX in attached.text
    assert "pro" not in api.plans_of("u3")


@pytest.fixture(params=DATABASES)
def stripe_down(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """A server charging through Stripe whose Stripe API address is a closed loopback port."""
    with stripe_down_server(request.param) as server:
        yield server


def test_stripe_unreachable_is_a_stripe_error_never_a_500(stripe_down: RunningServer) -> None:
    """(2) Stripe unreachable: a billing call that calls Stripe answers 400 stripe_error and keeps
    nothing (its key neither: the retry runs again); the hosted page's "Continue to Stripe" shows an
    error page."""
    http = httpx.Client(base_url=stripe_down.url, headers=stripe_down.headers, timeout=60)
    with http:
        created = http.post(
            "/v1/plans.create",
            json={"plan_id": "pro", "name": "Pro", "price": {"amount": 20, "interval": "month"}},
        )
        assert created.status_code == 200, created.text
        customer = http.post("/v1/customers.get_or_create", json={"customer_id": "u1"})
        assert customer.status_code == 200, customer.text
        headers = {"Idempotency-Key": "setup-down-1"}
        for _ in range(2):  # the key is not kept: the retry runs again and fails the same way
            setup = http.post("/v1/billing.setup_payment", json={"customer_id": "u1"}, headers=headers)
            assert setup.status_code == 400, setup.text
            body = setup.json()
            assert (body["code"], body["env"]) == ("stripe_error", "sandbox"), body
            assert body["message"].startswith(PREFIX), body
            assert stored_keys(stripe_down, "setup-down-1") == 0
        got = http.post("/v1/customers.get", json={"customer_id": "u1"})
        assert got.status_code == 200 and got.json()["stripe_id"] is None, got.text  # nothing half-made

        # A paid plan for a customer without a card: the server's checkout page, made without Stripe
        attached = http.post("/v1/billing.attach", json={"customer_id": "u1", "plan_id": "pro"})
        assert attached.status_code == 200, attached.text
        url = str(attached.json()["payment_url"])
        page = httpx.post(url.split("?")[0].rstrip("/") + "/stripe", follow_redirects=False)
        assert page.status_code == 400, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert PAYER_MESSAGE in page.text and "127.0.0.1" not in page.text  # no host or port for payers
        assert invoice_count(stripe_down) == 0
