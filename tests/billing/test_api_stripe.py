"""The whole server with ``AUTUMN_PAYMENT_PROCESSOR=stripe`` against localstripe."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import stripe

from reference_server.clock import ManualClock
from reference_server.testing import RunningServer, run_server

from .helpers import call, ms
from .localstripe_server import localstripe, pay_through_stripe_checkout

START = ms(2026, 4, 1)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RunningServer, ManualClock, str]]:
    with localstripe() as api_base:
        monkeypatch.setenv("AUTUMN_PAYMENT_PROCESSOR", "stripe")
        monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_reference")
        monkeypatch.setenv("STRIPE_API_BASE", api_base)
        clock = ManualClock(START)
        with run_server(clock=clock) as running:
            yield running, clock, api_base


def test_checkout_and_upgrade_charge_through_stripe(server: tuple[RunningServer, ManualClock, str]) -> None:
    running, clock, api_base = server
    call(running, "features.create", feature_id="messages", name="Messages", type="metered", consumable=True)
    for plan_id, amount in (("pro", 20), ("premium", 50)):
        call(
            running,
            "plans.create",
            plan_id=plan_id,
            name=plan_id.title(),
            price={"amount": amount, "interval": "month"},
            items=[{"feature_id": "messages", "included": 1000, "reset": {"interval": "month"}}],
        )
    call(running, "customers.get_or_create", customer_id="u1", email="ada@example.com")
    url = call(running, "billing.attach", customer_id="u1", plan_id="pro")["payment_url"]
    # The card goes to Stripe Checkout, never to the server's page.
    refused = httpx.post(url, data={"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"})
    assert refused.status_code == 400 and "Stripe" in refused.text
    paid = pay_through_stripe_checkout(url)
    assert paid.status_code == 303
    customer = call(running, "customers.get", customer_id="u1", expand=["invoices"])
    stripe_id = customer["processors"]["stripe"]["id"]
    client = stripe.StripeClient("sk_test_reference", base_addresses={"api": api_base})
    assert client.v1.customers.retrieve(stripe_id).email == "ada@example.com"
    (invoice,) = customer["invoices"]
    stripe_invoice = client.v1.invoices.retrieve(invoice["stripe_id"])
    assert (stripe_invoice.amount_paid, stripe_invoice.status) == (2000, "paid")

    clock.advance(15 * 86_400_000)
    upgrade = call(running, "billing.attach", customer_id="u1", plan_id="premium")
    assert upgrade["invoice"]["total"] == 15
    assert client.v1.invoices.retrieve(upgrade["invoice"]["stripe_id"]).amount_paid == 1500
