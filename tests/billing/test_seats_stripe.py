"""A seat change over two plans, with Stripe (localstripe) as the processor: one invoice, one payment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from reference_server.clock import ManualClock
from reference_server.testing import RunningServer, run_server

from .helpers import call, ms
from .localstripe_server import localstripe, pay_through_stripe_checkout


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RunningServer, str]]:
    with localstripe() as api_base:
        monkeypatch.setenv("AUTUMN_PAYMENT_PROCESSOR", "stripe")
        monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_reference")
        monkeypatch.setenv("STRIPE_API_BASE", api_base)
        with run_server(clock=ManualClock(ms(2026, 4, 1))) as running:
            yield running, api_base


def test_seats_over_two_plans_are_one_stripe_payment(server: tuple[RunningServer, str]) -> None:
    running, api_base = server
    call(running, "features.create", feature_id="seats", name="Seats", type="metered", consumable=False)
    for plan_id, amount, extra in (("seats_a", 10, {"max_purchase": 1}), ("seats_b", 20, {})):
        price: dict[str, Any] = {"amount": amount, "interval": "month", "billing_method": "usage_based"}
        call(
            running,
            "plans.create",
            plan_id=plan_id,
            name=plan_id,
            group=plan_id,
            items=[{"feature_id": "seats", "included": 0, "price": {**price, **extra}}],
        )
    call(running, "customers.get_or_create", customer_id="two")
    url = call(running, "billing.attach", customer_id="two", plan_id="seats_a")["payment_url"]
    assert pay_through_stripe_checkout(url).status_code == 303  # saves the card; nothing in use yet
    call(running, "billing.attach", customer_id="two", plan_id="seats_b")
    call(running, "balances.track", customer_id="two", feature_id="seats", value=3)

    customer = call(running, "customers.get", customer_id="two", expand=["invoices"])
    seat_invoices = [i for i in customer["invoices"] if i["total"] != 0]
    (invoice,) = seat_invoices  # 1 seat on seats_a at $10 and 2 on seats_b at $20, one invoice
    assert (invoice["total"], invoice["plan_ids"]) == (50, ["seats_a", "seats_b"])
    client = stripe.StripeClient("sk_test_reference", base_addresses={"api": api_base})
    stripe_id = customer["processors"]["stripe"]["id"]
    intents = [
        pi
        for pi in client.v1.payment_intents.list().data
        if pi.customer == stripe_id and pi.status == "succeeded" and pi.amount > 0
    ]
    assert [pi.amount for pi in intents] == [5000]  # one payment for both plans' seats
