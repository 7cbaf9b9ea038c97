"""The portal's undo and plan switching on a real server: the same code paths as the API's
``billing.update`` (uncancel), ``billing.preview_attach`` and ``billing.attach``."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from reference_server.clock import ManualClock
from reference_server.testing import RunningServer, fresh_database_url, run_server
from tests.server.helpers import require_postgres

from .helpers import ms

NOW = ms(2026, 4, 1)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    if request.param == "postgres":
        require_postgres()
    with fresh_database_url(request.param) as url, run_server(url, clock=ManualClock(NOW)) as running:
        with running.client() as client:
            for body in (
                {"feature_id": "messages", "name": "Messages", "type": "metered", "consumable": True},
            ):
                client.post("/v1/features.create", json=body).raise_for_status()
            for plan_id, name, price in (("pro", "Pro", 20), ("premium", "Premium", 50)):
                client.post(
                    "/v1/plans.create",
                    json={
                        "plan_id": plan_id,
                        "name": name,
                        "price": {"amount": price, "interval": "month"},
                        "items": [
                            {"feature_id": "messages", "included": 1000, "reset": {"interval": "month"}}
                        ],
                    },
                ).raise_for_status()
        yield running


def call(server: RunningServer, op: str, **body: object) -> dict[str, object]:
    response = httpx.post(f"{server.url}/v1/{op}", json=body, headers=server.headers, timeout=30)
    response.raise_for_status()
    return dict(response.json())


def subscribed(server: RunningServer, customer_id: str) -> httpx.Client:
    """A customer on Pro with a saved card, and a browser-like client on their portal."""
    call(server, "customers.get_or_create", customer_id=customer_id, email=f"{customer_id}@example.com")
    setup = call(server, "billing.setup_payment", customer_id=customer_id)
    client = httpx.Client(base_url=server.url, timeout=30)
    saved = client.post(
        str(setup["url"]), data={"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"}
    )
    assert saved.status_code in (200, 303), saved.text
    attach = call(server, "billing.attach", customer_id=customer_id, plan_id="pro")
    assert attach.get("payment_url") is None
    return client


def portal(server: RunningServer, customer_id: str) -> str:
    url = str(call(server, "billing.open_customer_portal", customer_id=customer_id)["url"])
    return url.replace(server.url, "")


def plan_state(server: RunningServer, customer_id: str) -> dict[str, dict[str, object]]:
    subs = call(server, "customers.get", customer_id=customer_id)["subscriptions"]
    assert isinstance(subs, list)
    return {str(s["plan_id"]): s for s in subs}


def test_cancel_then_undo_from_the_portal(server: RunningServer) -> None:
    client = subscribed(server, "undo")
    url = portal(server, "undo")
    page = client.get(url).text
    assert "$20.00/month" in page and "Renews 2026-05-01" in page
    canceled = client.post(f"{url}/cancel", data={"plan_id": "pro"})
    after = client.get(canceled.headers["location"]).text
    assert 'id="uncancel-pro"' in after and "Ends 2026-05-01" in after
    assert plan_state(server, "undo")["pro"]["canceled_at"] is not None
    undone = client.post(f"{url}/uncancel", data={"plan_id": "pro"})
    assert undone.status_code == 303 and "notice=uncanceled" in undone.headers["location"]
    assert plan_state(server, "undo")["pro"]["canceled_at"] is None
    again = client.post(f"{url}/uncancel", data={"plan_id": "pro"})
    assert again.status_code == 409 and "not waiting to be canceled" in again.text


def test_switch_plan_shows_the_api_preview_then_switches(server: RunningServer) -> None:
    client = subscribed(server, "switcher")
    url = portal(server, "switcher")
    page = client.get(url).text
    assert 'id="switch-premium"' in page and "$50.00/month" in page
    expected = call(server, "billing.preview_attach", customer_id="switcher", plan_id="premium")
    confirm = client.get(f"{url}/switch", params={"plan_id": "premium"})
    assert confirm.status_code == 200 and "Switch to Premium?" in confirm.text
    total = re.search(r'id="switch-total">([^<]+)<', confirm.text)
    assert total is not None and total.group(1) == f"${float(str(expected['total'])):,.2f}"
    rows = re.findall(r'<tr><td>([^<]*)</td><td class="amount">([^<]+)</td></tr>', confirm.text)
    lines = expected["line_items"]
    assert len(lines) >= 2  # premium's charge and pro's unused-time credit
    assert rows == [(line["description"], _money(float(str(line["total"])))) for line in lines]
    assert "premium" not in plan_state(server, "switcher")  # the preview changed nothing
    refused = client.get(f"{url}/switch", params={"plan_id": "nope"})
    assert refused.status_code == 400 and 'id="card-error"' in refused.text
    switched = client.post(f"{url}/switch", data={"plan_id": "premium"})
    assert switched.status_code == 303 and "notice=switched" in switched.headers["location"]
    state = plan_state(server, "switcher")
    assert state["premium"]["status"] == "active" and "pro" not in state


def _money(major: float) -> str:
    return f"-${-major:,.2f}" if major < 0 else f"${major:,.2f}"
