"""Webhooks end to end: the running server signs and delivers billing events to a real receiver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reference_server.clock import ManualClock
from reference_server.testing import run_server
from reference_server.webhooks import new_secret

from .helpers import ms
from .receiver import Receiver

START = ms(2026, 4, 1)


class Api:
    def __init__(self, url: str, headers: dict[str, str], clock: ManualClock) -> None:
        self.http = httpx.Client(base_url=url, headers=headers, timeout=60)
        self.clock = clock

    def retry_after_first_failure(self, receiver: Receiver) -> None:
        """Wait for the failed first attempt, then move time past its backoff so the retry is due."""
        assert receiver.wait_for_requests(1) >= 1
        self.clock.advance(60_000)

    def __call__(self, op: str, expect: int = 200, **body: Any) -> dict[str, Any]:
        response = self.http.post(f"/v1/{op}", json=body)
        assert response.status_code == expect, response.text
        return dict(response.json())


@pytest.fixture
def setup() -> Iterator[tuple[Api, Receiver]]:
    secret = new_secret()
    receiver = Receiver(secret, failures=1)  # the first delivery fails; the retry succeeds
    clock = ManualClock(START)
    with run_server(clock=clock) as server:
        api = Api(server.url, server.headers, clock)
        endpoint = api("webhooks.create_endpoint", url=receiver.url, secret=secret)
        assert endpoint["id"].startswith("ep_") and endpoint["secret"] == secret
        assert [e["url"] for e in api("webhooks.list_endpoints")["list"]] == [receiver.url]
        api("features.create", feature_id="messages", name="Messages", type="metered", consumable=True)
        api("features.create", feature_id="credits", name="Credits", type="metered", consumable=True)
        month = {"interval": "month"}
        api(
            "plans.create",
            plan_id="free",
            name="Free",
            auto_enable=True,
            items=[{"feature_id": "messages", "included": 100, "reset": month}],
        )
        api(
            "plans.create",
            plan_id="pro",
            name="Pro",
            price={"amount": 20, "interval": "month"},
            items=[
                {"feature_id": "messages", "included": 1000, "reset": month},
                {
                    "feature_id": "credits",
                    "included": 0,
                    "price": {
                        "amount": 5,
                        "interval": "one_off",
                        "billing_method": "prepaid",
                        "billing_units": 100,
                    },
                },
            ],
        )
        yield api, receiver
        api.http.close()
    receiver.close()


def events_of(messages: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [m["data"] for m in messages if m["type"] == event_type]


def test_usage_alert_and_limit_reached(setup: tuple[Api, Receiver]) -> None:
    api, receiver = setup
    api(
        "customers.get_or_create",
        customer_id="u1",
        billing_controls={
            "usage_alerts": [
                {
                    "feature_id": "messages",
                    "threshold": 80,
                    "threshold_type": "usage_percentage",
                    "name": "80%",
                }
            ]
        },
    )
    api("balances.track", customer_id="u1", feature_id="messages", value=85)
    api("balances.track", customer_id="u1", feature_id="messages", value=10)  # no second alert
    api("balances.track", customer_id="u1", feature_id="messages", value=10)  # exhausts the 100
    api("balances.track", customer_id="u1", feature_id="messages", value=1)  # stays blocked: no re-fire
    api.retry_after_first_failure(receiver)
    messages = receiver.wait_for(2)
    assert events_of(messages, "balances.usage_alert_triggered") == [
        {
            "customer_id": "u1",
            "feature_id": "messages",
            "usage_alert": {"name": "80%", "threshold": 80, "threshold_type": "usage_percentage"},
        }
    ]
    assert events_of(messages, "balances.limit_reached") == [
        {"customer_id": "u1", "feature_id": "messages", "limit_type": "included"}
    ]
    assert len(receiver.seen_ids) == 3  # one failed attempt, retried with the same id


def test_billing_updated_and_auto_topup(setup: tuple[Api, Receiver]) -> None:
    api, receiver = setup
    api(
        "customers.get_or_create",
        customer_id="u1",
        billing_controls={
            "auto_topups": [{"feature_id": "credits", "enabled": True, "threshold": 20, "quantity": 200}]
        },
    )
    url = api("billing.setup_payment", customer_id="u1")["url"]
    assert (
        httpx.post(url, data={"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"}).status_code
        == 303
    )
    api(
        "billing.attach",
        customer_id="u1",
        plan_id="pro",
        feature_quantities=[{"feature_id": "credits", "quantity": 100}],
    )
    api("balances.track", customer_id="u1", feature_id="credits", value=90)  # 10 left <= 20: buy 200
    credits = api("customers.get", customer_id="u1")["balances"]["credits"]
    assert (credits["granted"], credits["remaining"]) == (300, 210)
    api.retry_after_first_failure(receiver)
    messages = receiver.wait_for(2)
    (updated,) = events_of(messages, "billing.updated")
    assert updated["customer_id"] == "u1" and updated["tags"] == []
    actions = sorted((c["action"], c["subscription"]["plan_id"]) for c in updated["plan_changes"])
    assert actions == [("activated", "pro"), ("expired", "free")]
    expired = next(c for c in updated["plan_changes"] if c["action"] == "expired")
    assert expired["previous_attributes"] == {"status": "active"}
    (topup,) = events_of(messages, "billing.auto_topup_succeeded")
    assert (topup["feature_id"], topup["quantity_granted"], topup["threshold"], topup["balance_after"]) == (
        "credits",
        200,
        20,
        210,
    )
    assert topup["invoice"]["total"] == 10 and topup["invoice"]["status"] == "paid"
    envelope = next(m for m in messages if m["type"] == "billing.auto_topup_succeeded")
    assert str(envelope["id"]).startswith("evt_auto_topup_") and envelope["occurred_at"] >= START
    invoices = api("customers.get", customer_id="u1", expand=["invoices"])["invoices"]
    assert [i["total"] for i in invoices] == [10, 25]
