"""Released paid seats with ``on_decrease: none`` are reused for free in their period (Autumn's replaceables),
and a failed tracked seat charge keeps its voided invoice; over HTTP with the test clock, to the cent, on
SQLite and PostgreSQL.

Plan ``team_none``: $20/month, 1 seat included, $10 per extra seat, prorated on increase, nothing credited
on decrease. April 2026 has 30 days; May has 31.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from reference_server.clock import ManualClock
from reference_server.testing import RunningServer, fresh_database_url, postgres_available, run_server

from .helpers import ms

START = ms(2026, 4, 1)
MAY_1 = ms(2026, 5, 1)
DAY = 86_400_000
DECLINE = "4000000000000341"  # saved fine, declined when charged


class Api:
    """The server over HTTP with the local processor (cards typed on the server's own form)."""

    def __init__(self, server: RunningServer, clock: ManualClock) -> None:
        self.server = server
        self.clock = clock
        self.http = httpx.Client(base_url=server.url, headers=server.headers, timeout=60)

    def __call__(self, op: str, expect: int = 200, **body: Any) -> dict[str, Any]:
        response = self.http.post(f"/v1/{op}", json=body)
        assert response.status_code == expect, response.text
        return dict(response.json())

    def customer(self, customer_id: str) -> dict[str, Any]:
        return self("customers.get", customer_id=customer_id, expand=["invoices"])

    def add_card(self, customer_id: str, number: str = "4242424242424242") -> None:
        url = self("billing.setup_payment", customer_id=customer_id)["url"]
        card = {"card_number": number, "expiry": "12/34", "cvc": "123"}
        assert httpx.post(url, data=card).status_code == 303


def seat_item(on_decrease: str) -> dict[str, Any]:
    """1 seat included, $10 a month for each one beyond, prorated when added."""
    proration = {"on_increase": "prorate_immediately", "on_decrease": on_decrease}
    price = {"amount": 10, "interval": "month", "billing_method": "usage_based"}
    return {"feature_id": "seats", "included": 1, "price": price, "proration": proration}


def invoices(api: Api, customer_id: str) -> list[int | float]:
    """Totals of the customer's invoices, oldest first."""
    return [i["total"] for i in reversed(api.customer(customer_id)["invoices"])]


def statuses(api: Api, customer_id: str) -> list[tuple[int | float, str]]:
    return [(i["total"], i["status"]) for i in reversed(api.customer(customer_id)["invoices"])]


def seats(api: Api, customer_id: str) -> tuple[int, int]:
    balance = api.customer(customer_id)["balances"]["seats"]
    return balance["usage"], balance["remaining"]


def track(api: Api, customer_id: str, value: int, expect: int = 200) -> dict[str, Any]:
    return api("balances.track", expect=expect, customer_id=customer_id, feature_id="seats", value=value)


def subscribe(api: Api, customer_id: str, plan_id: str) -> None:
    api("customers.get_or_create", customer_id=customer_id)
    api.add_card(customer_id)
    api("billing.attach", customer_id=customer_id, plan_id=plan_id)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    if request.param == "postgres" and not postgres_available():
        pytest.skip("PostgreSQL is not available")
    clock = ManualClock(START)
    with fresh_database_url(request.param) as url, run_server(url, clock=clock) as server:
        client = Api(server, clock)
        client("features.create", feature_id="seats", name="Seats", type="metered", consumable=False)
        for plan_id, base, item in (
            ("team_none", 20, seat_item(on_decrease="none")),
            ("team_plain", 20, seat_item(on_decrease="no_prorations")),
        ):
            price = {"amount": base, "interval": "month"}
            client("plans.create", plan_id=plan_id, name=plan_id, group="team", price=price, items=[item])
        yield client
        client.http.close()


def replaceables(api: Api) -> list[tuple[str, str]]:
    """The stored replaceables rows (feature, units)."""
    engine = create_engine(api.server.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT feature_id, units FROM seat_replaceables ORDER BY feature_id"))
            return [(r.feature_id, r.units) for r in rows]
    finally:
        engine.dispose()


def _by_track(api: Api, customer_id: str) -> Callable[[int], None]:
    def change(n: int) -> None:
        track(api, customer_id, n)

    return change


def _by_entities(api: Api, customer_id: str) -> Callable[[int], None]:
    live: list[str] = []
    made = [0]

    def change(n: int) -> None:
        for _ in range(abs(n)):
            if n > 0:
                made[0] += 1
                live.append(f"{customer_id}-{made[0]}")
                api("entities.create", customer_id=customer_id, entity_id=live[-1], feature_id="seats")
            else:
                api("entities.delete", customer_id=customer_id, entity_id=live.pop())

    return change


def _released_seats_are_reused_in_their_period(
    api: Api, customer_id: str, change: Callable[[int], None]
) -> None:
    subscribe(api, customer_id, "team_none")
    change(4)  # 3 seats beyond the included one for all of April
    paid_up_front = sum(invoices(api, customer_id))
    assert paid_up_front == 50  # $20 base + $30 (three single $10 charges when entities are created)

    api.clock.advance(10 * DAY)  # 20 of 30 days left
    change(-2)  # on_decrease none: no credit, the 2 paid seats are kept for reuse
    assert sum(invoices(api, customer_id)) == 50
    assert seats(api, customer_id)[0] == 2  # the balance shows the seats in use
    change(1)  # reuses a released seat: free
    assert sum(invoices(api, customer_id)) == 50
    assert seats(api, customer_id)[0] == 3

    api.clock.advance(5 * DAY)  # 15 of 30 days left
    change(2)  # one released seat reused, one more charged: $10 x 15/30
    assert invoices(api, customer_id)[-1] == 5
    assert sum(invoices(api, customer_id)) == 55
    assert seats(api, customer_id)[0] == 5

    change(-1)  # kept again until the period ends
    preview = api("billing.preview_attach", customer_id=customer_id, plan_id="team_plain")
    assert preview["next_cycle"]["total"] == 50  # the seats in use: $20 + 3 beyond the included

    count = len(invoices(api, customer_id))
    api.clock.set(MAY_1 + 1)  # renewal: the 3 seats in use beyond the included, the replaceable is gone
    assert invoices(api, customer_id)[count:] == [50]
    change(1)  # May: nothing left to reuse, charged for the month left (31 days less 1 ms)
    assert invoices(api, customer_id)[count:] == [50, 10]
    assert seats(api, customer_id)[0] == 5


def test_tracked_seats_released_with_on_decrease_none_are_reused(api: Api) -> None:
    _released_seats_are_reused_in_their_period(api, "t", _by_track(api, "t"))
    assert invoices(api, "t") == [20, 30, 5, 50, 10]


def test_entity_seats_released_with_on_decrease_none_are_reused(api: Api) -> None:
    _released_seats_are_reused_in_their_period(api, "e", _by_entities(api, "e"))
    assert invoices(api, "e") == [20, 10, 10, 10, 5, 50, 10]


def test_track_and_entities_share_the_replaceables_of_a_plan(api: Api) -> None:
    subscribe(api, "s", "team_none")
    track(api, "s", 3)  # 2 beyond the included for April: $20
    api.clock.advance(15 * DAY)
    track(api, "s", -2)  # 2 kept
    assert replaceables(api) == [("seats", "2")]
    api("entities.create", customer_id="s", entity_id="s1", feature_id="seats")  # reuses one
    assert replaceables(api) == [("seats", "1")]
    api("entities.delete", customer_id="s", entity_id="s1")
    assert replaceables(api) == [("seats", "2")]
    track(api, "s", 3)  # 2 reused, 1 charged: $10 x 15/30
    assert invoices(api, "s") == [20, 20, 5]
    assert replaceables(api) == []


def test_a_release_within_the_included_seats_keeps_nothing(api: Api) -> None:
    subscribe(api, "i", "team_none")
    track(api, "i", 2)  # 1 beyond the included: $10
    api.clock.advance(15 * DAY)
    track(api, "i", -2)  # 1 paid seat released (the other was included)
    assert replaceables(api) == [("seats", "1")]
    track(api, "i", 2)  # the included one, then the released paid one: free
    track(api, "i", 1)  # a new paid seat: $10 x 15/30
    assert invoices(api, "i") == [20, 10, 5]


def test_no_prorations_keeps_no_replaceables(api: Api) -> None:
    subscribe(api, "n", "team_plain")
    track(api, "n", 3)
    api.clock.advance(15 * DAY)
    track(api, "n", -1)  # nothing credited, nothing kept
    track(api, "n", 1)  # charged again: $10 x 15/30
    assert invoices(api, "n") == [20, 20, 5]
    assert replaceables(api) == []


def test_an_unpaid_reuse_keeps_the_replaceables_and_the_voided_invoice(api: Api) -> None:
    subscribe(api, "f", "team_none")
    track(api, "f", 3)
    api.clock.advance(15 * DAY)
    track(api, "f", -2)
    api.add_card("f", DECLINE)
    failed = track(api, "f", 3, expect=402)  # 2 reused, 1 charged $5: declined
    assert failed["code"] == "invoice_payment_failed"
    assert replaceables(api) == [("seats", "2")]  # rolled back with the track
    assert seats(api, "f")[0] == 1
    api.add_card("f")
    track(api, "f", 3)
    assert statuses(api, "f") == [(20, "paid"), (20, "paid"), (5, "void"), (5, "paid")]


def test_a_failed_tracked_seat_charge_keeps_its_voided_invoice(api: Api) -> None:
    subscribe(api, "v", "team_none")
    track(api, "v", 1)
    api.clock.advance(15 * DAY)
    before = api.customer("v")["balances"]["seats"]
    events_before = api("events.list", customer_id="v")["list"]
    api.add_card("v", DECLINE)
    failed = track(api, "v", 2, expect=402)
    assert failed["code"] == "invoice_payment_failed"
    assert "voided" in failed["message"]
    (void, paid) = api.customer("v")["invoices"]  # newest first
    assert (paid["total"], paid["status"]) == (20, "paid")
    assert (void["total"], void["status"], void["plan_ids"]) == (10, "void", ["team_none"])
    assert api.customer("v")["balances"]["seats"] == before  # nothing changed
    assert api("events.list", customer_id="v")["list"] == events_before
    # The same idempotency key is free again: the failed track released it.
    body: dict[str, Any] = {"customer_id": "v", "feature_id": "seats", "value": 2, "idempotency_key": "k"}
    api("balances.track", expect=402, **body)
    api.add_card("v")
    api("balances.track", **body)
    assert statuses(api, "v") == [(20, "paid"), (10, "void"), (10, "void"), (10, "paid")]
    assert seats(api, "v") == (3, 0)


def test_replaceables_lapse_at_the_period_end_even_without_a_change(api: Api) -> None:
    subscribe(api, "l", "team_none")
    track(api, "l", 3)
    api.clock.advance(20 * DAY)
    track(api, "l", -2)  # kept until May 1
    api.clock.set(ms(2026, 5, 16))  # the renewal billed 0 seats beyond; 16 of 31 May days left
    track(api, "l", 1)  # nothing to reuse any more: $10 x 16/31
    assert invoices(api, "l") == [20, 20, 20, 5.16]
