"""Paid per-seat billing over HTTP, to the cent, with the test clock (SQLite and PostgreSQL).

Seats are a continuous feature with a usage-based recurring price: the units in use beyond ``included``
are paid up front each period. Every way seats change is billed alike: entities created or deleted,
``balances.track`` (positive or negative), plan switches and cancellations (unused time credited), and
the renewal bills what ``next_cycle`` previewed. April 2026 has 30 days, so day 15 leaves half the month.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from reference_server.clock import ManualClock
from reference_server.testing import fresh_database_url, postgres_available, run_server

from .helpers import DAY, START, Api, ms, with_card

MAY_1 = ms(2026, 5, 1)
DECLINE = "4000000000000341"  # saved fine, declined when charged


def seat_item(
    included: int = 1, amount: float = 10, max_purchase: int | None = None, **proration: str
) -> dict[str, Any]:
    price: dict[str, Any] = {"amount": amount, "interval": "month", "billing_method": "usage_based"}
    if max_purchase is not None:
        price["max_purchase"] = max_purchase
    item: dict[str, Any] = {"feature_id": "seats", "included": included, "price": price}
    if proration:
        item["proration"] = proration
    return item


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    if request.param == "postgres" and not postgres_available():
        pytest.skip("PostgreSQL is not available")
    clock = ManualClock(START)
    with fresh_database_url(request.param) as url, run_server(url, clock=clock) as server:
        client = Api(server, clock)
        client("features.create", feature_id="seats", name="Seats", type="metered", consumable=False)
        client("features.create", feature_id="credits", name="Credits", type="metered", consumable=True)

        def plan(plan_id: str, base: float | None, *items: dict[str, Any], group: str = "team") -> None:
            price = {"price": {"amount": base, "interval": "month"}} if base is not None else {}
            client("plans.create", plan_id=plan_id, name=plan_id, group=group, items=list(items), **price)

        plan("team", 20, seat_item())  # $20/month, 1 seat included, $10 per extra seat
        plan("team_plus", 50, seat_item(amount=15))
        plan("team_full", 20, seat_item(on_increase="bill_immediately", on_decrease="none"))
        plan("team_next", 20, seat_item(on_increase="prorate_next_cycle", on_decrease="prorate_next_cycle"))
        credits = {"amount": 5, "interval": "month", "billing_method": "prepaid", "billing_units": 100}
        plan("team_mix", 20, seat_item(), {"feature_id": "credits", "included": 0, "price": credits})
        plan("seats_a", None, seat_item(included=0, max_purchase=1), group="a")  # $10, at most 1 seat
        plan("seats_b", None, seat_item(included=0, amount=20), group="b")  # $20 a seat
        yield client
        client.http.close()


def invoices(api: Api, customer_id: str) -> list[int | float]:
    """Totals of the customer's invoices, oldest first (drafts are not invoices)."""
    return [i["total"] for i in reversed(api.customer(customer_id)["invoices"])]


def statuses(api: Api, customer_id: str) -> list[tuple[int | float, str]]:
    """Totals and statuses of the customer's invoices, oldest first (a failed seat charge stays, void)."""
    return [(i["total"], i["status"]) for i in reversed(api.customer(customer_id)["invoices"])]


def seats(api: Api, customer_id: str) -> tuple[int, int]:
    balance = api.customer(customer_id)["balances"]["seats"]
    return balance["usage"], balance["remaining"]


def track(api: Api, customer_id: str, value: int, expect: int = 200) -> dict[str, Any]:
    return api("balances.track", expect=expect, customer_id=customer_id, feature_id="seats", value=value)


def subscribe(api: Api, customer_id: str, plan_id: str, **body: Any) -> None:
    with_card(api, customer_id)
    api("billing.attach", customer_id=customer_id, plan_id=plan_id, **body)


def drafts(api: Api) -> int:
    """Pending-line drafts left in the database (an orphan would stay here forever)."""
    engine = create_engine(api.server.database_url)
    try:
        with engine.connect() as conn:
            query = text("SELECT count(*) FROM invoices WHERE status = 'draft'")
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


# -- gap 1: seats added or released by track ------------------------------------------------------------


def test_tracked_seats_bill_like_entities_per_the_items_proration(api: Api) -> None:
    """Autumn runs track and entities through one allowance adjustment, so the invoices are the same."""
    subscribe(api, "tracked", "team")
    subscribe(api, "entities", "team")
    track(api, "tracked", 1)  # the included seat
    api("entities.create", customer_id="entities", entity_id="e1", feature_id="seats")
    assert invoices(api, "tracked") == invoices(api, "entities") == [20]

    api.clock.advance(15 * DAY)  # half of April left
    track(api, "tracked", 2)  # 2 seats beyond the included: $20 x 15/30
    for n in (2, 3):
        api("entities.create", customer_id="entities", entity_id=f"e{n}", feature_id="seats")
    assert invoices(api, "tracked") == [20, 10]
    assert invoices(api, "entities") == [20, 5, 5]
    assert seats(api, "tracked") == seats(api, "entities") == (3, 0)

    api.clock.advance(6 * DAY)  # 9 of 30 days left
    track(api, "tracked", -1)  # a seat released: $10 x 9/30 back
    api("entities.delete", customer_id="entities", entity_id="e3")
    assert invoices(api, "tracked") == [20, 10, -3]
    assert invoices(api, "entities") == [20, 5, 5, -3]

    api.clock.set(MAY_1 + 1)  # renewal: $20 + the 1 seat beyond the included, up front
    assert invoices(api, "tracked")[-1] == invoices(api, "entities")[-1] == 30
    assert seats(api, "tracked") == (2, 0)  # seats never reset


def test_tracked_seats_follow_bill_immediately_and_on_decrease_none(api: Api) -> None:
    subscribe(api, "full", "team_full")
    api.clock.advance(15 * DAY)
    track(api, "full", 3)  # 2 beyond the included, billed in full
    assert invoices(api, "full") == [20, 20]
    api.clock.advance(6 * DAY)
    track(api, "full", -1)  # on_decrease none: nothing back
    assert invoices(api, "full") == [20, 20]
    api.clock.set(MAY_1 + 1)
    assert invoices(api, "full") == [20, 20, 30]


def test_tracked_next_cycle_seats_wait_for_the_renewal(api: Api) -> None:
    subscribe(api, "n", "team_next")
    track(api, "n", 1)
    api.clock.advance(15 * DAY)
    track(api, "n", 1)  # +$5.00 pending
    api.clock.advance(6 * DAY)
    track(api, "n", -1)  # -$3.00 pending
    assert invoices(api, "n") == [20]
    api.clock.set(MAY_1 + 1)
    assert invoices(api, "n") == [20, 22]  # $20 + the April prorations (5 - 3); 1 seat in use is included
    assert drafts(api) == 0


def test_an_unpaid_tracked_seat_changes_nothing(api: Api) -> None:
    subscribe(api, "t", "team")
    track(api, "t", 1)
    api.clock.advance(15 * DAY)
    events_before = len(api("events.list", customer_id="t")["list"])
    api.add_card("t", DECLINE)
    failed = track(api, "t", 2, expect=402)
    assert failed["code"] == "invoice_payment_failed"
    assert seats(api, "t") == (1, 0)  # no usage, and no event either
    assert len(api("events.list", customer_id="t")["list"]) == events_before
    assert statuses(api, "t") == [(20, "paid"), (10, "void")]  # nothing charged, the attempt kept voided
    api.add_card("t")
    track(api, "t", 2)
    assert statuses(api, "t") == [(20, "paid"), (10, "void"), (10, "paid")]
    assert seats(api, "t") == (3, 0)


# -- gap 2 and 3: plan switches and cancels credit seats; next_cycle previews the renewal ---------------


def test_upgrade_credits_and_charges_seats_like_the_base_price(api: Api) -> None:
    subscribe(api, "u", "team")
    track(api, "u", 3)  # 2 beyond the included, a full April: $20
    assert invoices(api, "u") == [20, 20]
    api.clock.advance(15 * DAY)
    preview = api("billing.preview_attach", customer_id="u", plan_id="team_plus")
    lines = sorted((li["plan_id"], li["feature_id"] or "", li["total"]) for li in preview["line_items"])
    assert lines == [
        ("team", "", -10),  # unused half of the $20 base
        ("team", "seats", -10),  # unused half of the 2 seats paid up front
        ("team_plus", "", 25),
        ("team_plus", "seats", 15),  # 2 seats x $15 for the half month left
    ]
    assert preview["total"] == 20
    assert preview["next_cycle"]["total"] == 80  # $50 + 2 seats x $15
    result = api("billing.attach", customer_id="u", plan_id="team_plus")
    assert result["invoice"]["total"] == 20
    assert seats(api, "u") == (3, 0)  # continuous usage carries over
    api.clock.set(MAY_1 + 1)
    assert invoices(api, "u") == [20, 20, 20, preview["next_cycle"]["total"]]


def test_cancel_immediately_credits_the_unused_seat_time(api: Api) -> None:
    subscribe(api, "c", "team")
    for n in (1, 2, 3):
        api("entities.create", customer_id="c", entity_id=f"c{n}", feature_id="seats")
    assert invoices(api, "c") == [20, 10, 10]
    api.clock.advance(21 * DAY)  # 9 of 30 days left
    body: dict[str, Any] = {"customer_id": "c", "plan_id": "team", "cancel_action": "cancel_immediately"}
    preview = api("billing.preview_update", **body)
    assert preview["total"] == -12  # -$6 base, -$6 for the 2 seats
    assert api("billing.update", **body)["invoice"]["total"] == -12
    api.clock.set(MAY_1 + 1)
    assert invoices(api, "c") == [20, 10, 10, -12]  # nothing renews


def test_next_cycle_previews_equal_the_renewal_with_seats(api: Api) -> None:
    with_card(api, "m")
    for n in (1, 2, 3):
        api("entities.create", customer_id="m", entity_id=f"m{n}", feature_id="seats")
    quantities = [{"feature_id": "credits", "quantity": 100}]
    attach: dict[str, Any] = {"customer_id": "m", "plan_id": "team_mix", "feature_quantities": quantities}
    preview = api("billing.preview_attach", **attach)
    # the 3 existing seats are in use from the start: $20 + $5 credits + 2 seats x $10, up front
    assert (preview["total"], preview["next_cycle"]["total"]) == (45, 45)
    assert api("billing.attach", **attach)["invoice"]["total"] == 45

    api.clock.advance(15 * DAY)
    update: dict[str, Any] = {
        "customer_id": "m",
        "plan_id": "team_mix",
        "feature_quantities": [{"feature_id": "credits", "quantity": 200}],
    }
    preview = api("billing.preview_update", **update)
    assert preview["total"] == 2.5  # one more pack for half the month
    assert preview["next_cycle"]["total"] == 50  # $20 + 2 packs + 2 seats
    api("billing.update", **update)
    api.clock.set(MAY_1 + 1)
    assert invoices(api, "m") == [45, 2.5, 50]


def test_downgrade_preview_next_cycle_bills_the_seats_the_renewal_bills(api: Api) -> None:
    subscribe(api, "d", "team_plus")
    track(api, "d", 3)
    api.clock.advance(10 * DAY)
    preview = api("billing.preview_attach", customer_id="d", plan_id="team")
    assert (preview["total"], preview["next_cycle"]["total"]) == (0, 40)  # $20 + 2 seats x $10
    api("billing.attach", customer_id="d", plan_id="team")
    api.clock.set(MAY_1 + 1)
    assert invoices(api, "d")[-1] == 40


# -- gap 4: pending next-cycle lines of a plan that ends mid-cycle --------------------------------------


def test_pending_seat_prorations_are_settled_when_the_plan_is_switched(api: Api) -> None:
    subscribe(api, "p", "team_next")
    track(api, "p", 1)
    api.clock.advance(15 * DAY)
    track(api, "p", 1)  # +$5.00 waits for team_next's renewal
    assert drafts(api) == 1
    preview = api("billing.preview_attach", customer_id="p", plan_id="team_plus")
    # -$10 base, -$5 seat, +$25 base, +$7.50 seat, and the pending +$5 settled on this last invoice
    assert preview["total"] == 22.5
    assert api("billing.attach", customer_id="p", plan_id="team_plus")["invoice"]["total"] == 22.5
    assert drafts(api) == 0  # nothing orphaned
    api.clock.set(MAY_1 + 1)
    assert invoices(api, "p") == [20, 22.5, 65]  # $50 + 1 seat x $15; the $5 is not charged twice


def test_pending_seat_prorations_are_settled_when_the_plan_is_cancelled(api: Api) -> None:
    subscribe(api, "q", "team_next")
    track(api, "q", 1)
    api.clock.advance(15 * DAY)
    track(api, "q", 1)  # +$5.00 pending
    api.clock.advance(6 * DAY)  # 9 of 30 days left
    body: dict[str, Any] = {"customer_id": "q", "plan_id": "team_next", "cancel_action": "cancel_immediately"}
    preview = api("billing.preview_update", **body)
    assert preview["total"] == -4  # -$6 base, -$3 seat, +$5 pending
    assert api("billing.update", **body)["invoice"]["total"] == -4
    assert drafts(api) == 0
    api.clock.set(MAY_1 + 1)
    assert invoices(api, "q") == [20, -4]


def test_pending_prorations_of_a_plan_ending_at_period_end_go_on_its_final_invoice(api: Api) -> None:
    subscribe(api, "r", "team_next")
    track(api, "r", 1)
    api.clock.advance(15 * DAY)
    track(api, "r", 1)  # +$5.00 pending
    api("billing.update", customer_id="r", plan_id="team_next", cancel_action="cancel_end_of_cycle")
    api.clock.set(MAY_1 + 1)
    assert invoices(api, "r") == [20, 5]
    assert drafts(api) == 0


# -- gap 5: one seat change over two plans is one charge ------------------------------------------------


def test_a_seat_change_over_two_plans_is_one_invoice(api: Api) -> None:
    subscribe(api, "two", "seats_a")
    api("billing.attach", customer_id="two", plan_id="seats_b")
    assert invoices(api, "two") == []  # nothing in use yet
    api.add_card("two", DECLINE)
    failed = track(api, "two", 3, expect=402)
    assert failed["code"] == "invoice_payment_failed"
    assert statuses(api, "two") == [(50, "void")]  # neither plan's seats were collected
    assert seats(api, "two") == (0, 0)

    api.add_card("two")
    track(api, "two", 3)  # 1 seat on seats_a (its max) at $10, 2 on seats_b at $20: a full April
    (invoice,) = [i for i in api.customer("two")["invoices"] if i["status"] != "void"]
    assert (invoice["total"], invoice["status"], invoice["plan_ids"]) == (50, "paid", ["seats_a", "seats_b"])
    api.clock.set(MAY_1 + 1)
    assert invoices(api, "two")[2:] == [10, 40]  # each plan renews its own seats
