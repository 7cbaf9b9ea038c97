"""``POST /webhooks/stripe/{org_id}/{env}``: signed Stripe events reach the org's invoices, once each."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reference_server.clock import ManualClock
from reference_server.testing import RunningServer, run_server

from .helpers import ms

SECRET = "whsec_tenant_secret"


@pytest.fixture
def server() -> Iterator[tuple[RunningServer, ManualClock]]:
    clock = ManualClock(ms(2026, 4, 1))
    with run_server(clock=clock) as running:
        yield running, clock


class Tenant:
    """A tenant organization (created through the platform API) with its Stripe webhook secret."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        slug = "t-" + secrets.token_hex(4)
        created = self.platform("organizations", user_email="o@example.com", name=slug, slug=slug, env="test")
        self.key = str(created["test_secret_key"])
        saved = self.platform("organizations/stripe", organization_slug=slug, test_webhook_secret=SECRET)
        self.org_id = str(saved["organization"]["id"])

    def platform(self, path: str, **body: Any) -> dict[str, Any]:
        url = f"{self.server.url}/v1/platform/{path}"
        response = httpx.post(url, json=body, headers=self.server.headers, timeout=30)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    def __call__(self, op: str, **body: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.key}"}
        response = httpx.post(f"{self.server.url}/v1/{op}", json=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def pay(self, url: str, number: str) -> None:
        data = {"card_number": number, "expiry": "12/34", "cvc": "123"}
        assert httpx.post(url, data=data).status_code == 303

    def send(self, event: dict[str, Any], secret: str = SECRET, env: str = "sandbox") -> httpx.Response:
        """Post ``event`` signed the way Stripe signs: HMAC-SHA256 of ``{t}.{payload}``."""
        payload = json.dumps(event)
        stamp = int(time.time())
        mac = hmac.new(secret.encode(), f"{stamp}.{payload}".encode(), hashlib.sha256).hexdigest()
        return httpx.post(
            f"{self.server.url}/webhooks/stripe/{self.org_id}/{env}",
            content=payload,
            headers={"Stripe-Signature": f"t={stamp},v1={mac}", "Content-Type": "application/json"},
        )

    def state(self) -> tuple[list[bool], list[tuple[str, str]]]:
        customer = self("customers.get", customer_id="u1", expand=["invoices"])
        return (
            [s["past_due"] for s in customer["subscriptions"]],
            [(i["stripe_id"], i["status"]) for i in customer["invoices"]],
        )


def intent_event(kind: str, invoice_id: str, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or "evt_" + secrets.token_hex(8),
        "object": "event",
        "type": kind,
        "data": {
            "object": {
                "id": "pi_" + secrets.token_hex(8),
                "object": "payment_intent",
                "amount": 2000,
                "amount_received": 2000 if kind.endswith("succeeded") else 0,
                "currency": "usd",
                "metadata": {"autumn_invoice_id": invoice_id},
            }
        },
    }


def past_due_renewal(tenant: Tenant, clock: ManualClock) -> str:
    """Pro paid by a good card, then a declining card as default: the May renewal stays open."""
    tenant("plans.create", plan_id="pro", name="Pro", price={"amount": 20, "interval": "month"})
    tenant("customers.get_or_create", customer_id="u1")
    tenant.pay(tenant("billing.attach", customer_id="u1", plan_id="pro")["payment_url"], "4242424242424242")
    tenant.pay(tenant("billing.setup_payment", customer_id="u1")["url"], "4000000000000341")
    clock.set(ms(2026, 5, 1) + 1)
    past_due, invoices = tenant.state()
    assert past_due == [True] and [status for _, status in invoices] == ["open", "paid"]
    return invoices[0][0]


def test_payment_events_mark_the_invoice_paid_or_the_subscription_past_due(
    server: tuple[RunningServer, ManualClock],
) -> None:
    running, clock = server
    tenant = Tenant(running)
    renewal = past_due_renewal(tenant, clock)
    first_invoice = tenant.state()[1][1]

    failed = tenant.send(intent_event("payment_intent.payment_failed", renewal))
    assert failed.status_code == 200 and failed.json()["result"] == "past_due"
    succeeded = intent_event("payment_intent.succeeded", renewal, "evt_paid_once")
    response = tenant.send(succeeded)
    assert response.status_code == 200 and response.json()["result"] == "invoice_paid"
    intent_id = succeeded["data"]["object"]["id"]
    assert tenant.state() == ([False], [(intent_id, "paid"), first_invoice])

    # A redelivery and a late failure of an already paid invoice change nothing.
    assert tenant.send(succeeded).json() == {"received": True, "duplicate": True}
    late = tenant.send(intent_event("payment_intent.payment_failed", renewal))
    assert late.json()["result"] == "invoice_paid"
    assert tenant.state()[0] == [False]


def test_bad_signatures_other_orgs_and_other_types_are_refused_or_ignored(
    server: tuple[RunningServer, ManualClock],
) -> None:
    running, clock = server
    tenant, other = Tenant(running), Tenant(running)
    renewal = past_due_renewal(tenant, clock)
    paid = intent_event("payment_intent.succeeded", renewal)

    forged = tenant.send(paid, secret="whsec_someone_else")
    assert forged.status_code == 400 and forged.json()["code"] == "invalid_signature"
    unsigned = httpx.post(f"{running.url}/webhooks/stripe/{tenant.org_id}/sandbox", json=paid)
    assert unsigned.status_code == 400
    assert tenant.send(paid, env="live").status_code == 404  # no live webhook secret saved
    # The other organization's endpoint cannot touch this organization's invoice.
    assert other.send(paid).json()["result"] == "ignored"
    assert tenant.send(intent_event("customer.created", renewal)).json()["result"] == "ignored"
    assert tenant.state()[0] == [True]
    assert [status for _, status in tenant.state()[1]] == ["open", "paid"]


def test_a_failed_payment_of_an_open_invoice_makes_only_its_subscription_past_due(
    server: tuple[RunningServer, ManualClock],
) -> None:
    running, _clock = server
    tenant = Tenant(running)
    tenant("plans.create", plan_id="pro", name="Pro", price={"amount": 20, "interval": "month"})
    for customer_id in ("u1", "u2"):
        tenant("customers.get_or_create", customer_id=customer_id)
        attached = tenant(
            "billing.attach",
            customer_id=customer_id,
            plan_id="pro",
            invoice_mode={"enabled": True, "enable_plan_immediately": True},
        )
        assert attached["invoice"]["status"] == "open"
    past_due, invoices = tenant.state()
    assert past_due == [False] and [status for _, status in invoices] == ["open"]

    failed = tenant.send(intent_event("payment_intent.payment_failed", invoices[0][0]))
    assert failed.json()["result"] == "past_due"
    assert tenant.state()[0] == [True]
    other = tenant("customers.get", customer_id="u2")["subscriptions"]
    assert [(s["plan_id"], s["past_due"]) for s in other] == [("pro", False)]

    paid = tenant.send(intent_event("payment_intent.succeeded", invoices[0][0]))
    assert paid.json()["result"] == "invoice_paid"
    assert tenant.state()[0] == [False]
    assert [status for _, status in tenant.state()[1]] == ["paid"]


def test_an_invoice_paid_on_stripes_side_starts_its_plan_and_closes_its_hosted_page(
    server: tuple[RunningServer, ManualClock],
) -> None:
    running, _clock = server
    tenant = Tenant(running)
    tenant("plans.create", plan_id="pro", name="Pro", price={"amount": 20, "interval": "month"})
    tenant("customers.get_or_create", customer_id="u1")
    invoice = tenant("billing.attach", customer_id="u1", plan_id="pro", invoice_mode={"enabled": True})[
        "invoice"
    ]
    assert invoice["status"] == "open"
    assert tenant("customers.get", customer_id="u1")["subscriptions"] == []

    paid = tenant.send(intent_event("payment_intent.succeeded", invoice["stripe_id"]))
    assert paid.json()["result"] == "invoice_paid"
    subscriptions = tenant("customers.get", customer_id="u1")["subscriptions"]
    assert [(s["plan_id"], s["status"]) for s in subscriptions] == [("pro", "active")]
    # The hosted invoice page is complete now: paying it again takes nothing more.
    again = httpx.post(
        invoice["hosted_invoice_url"],
        data={"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"},
    )
    assert again.status_code == 303
    assert [status for _, status in tenant.state()[1]] == ["paid"]
