"""Paid license seats over HTTP, to the cent, with the test clock (SQLite and PostgreSQL).

``license_quantities`` sets a pool's total seats on the parent plan (the link's ``included`` counted);
the seats beyond it are billed at the license plan's price, prorated like any prepaid quantity. The
previews say what is charged. April 2026 has 30 days: day 15 leaves half the month.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .helpers import DATABASES, DAY, Api, create_seat_license, ms, running_api, with_card

MAY_1 = ms(2026, 5, 1)


@pytest.fixture(params=DATABASES)
def api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    with running_api(request, monkeypatch, request.param) as client:
        summaries = create_seat_license(client)
        client("plans.create", plan_id="viewer", name="Viewer", group="viewers", items=[summaries])
        client(
            "plans.create", plan_id="free_seat", name="Free seat", group="free_licenses", items=[summaries]
        )
        for plan_id, amount, included in (("team", 40, 1), ("scale", 100, 2)):
            client(
                "plans.create",
                plan_id=plan_id,
                name=plan_id.capitalize(),
                group="main",
                price={"amount": amount, "interval": "month"},
                licenses=[
                    {"license_plan_id": "seat", "included": included},
                    {"license_plan_id": "free_seat", "included": 1},
                ],
            )
        yield client


def subscribe(api: Api, customer_id: str, plan_id: str, expect: int = 200, **body: Any) -> dict[str, Any]:
    with_card(api, customer_id)
    return api("billing.attach", expect=expect, customer_id=customer_id, plan_id=plan_id, **body)


def invoices(api: Api, customer_id: str) -> list[int | float]:
    return [i["total"] for i in reversed(api.customer(customer_id)["invoices"])]


def pool(api: Api, customer_id: str, license_plan_id: str = "seat") -> dict[str, Any]:
    listed = api("licenses.list", customer_id=customer_id)["list"]
    found: list[dict[str, Any]] = [p for p in listed if p["license_plan_id"] == license_plan_id]
    assert len(found) == 1, listed
    shown = [p for p in api.customer(customer_id)["licenses"] if p["license_plan_id"] == license_plan_id]
    assert shown == found  # Customer.licenses and licenses.list agree
    return found[0]


def seats(n: int, prefix: str = "u") -> list[dict[str, Any]]:
    return [{"entity_id": f"{prefix}{i}", "feature_id": "users"} for i in range(n)]


def test_buying_seats_bills_the_paid_ones_at_the_license_price(api: Api) -> None:
    with_card(api, "c")
    body: dict[str, Any] = {
        "customer_id": "c",
        "plan_id": "team",
        "license_quantities": [{"license_plan_id": "seat", "quantity": 5}],
    }
    preview = api("billing.preview_attach", **body)
    assert preview["total"] == 40 + 4 * 30  # 1 seat included, 4 paid at $30
    assert any("Seat" in line["description"] for line in preview["line_items"])
    api("billing.attach", **body)
    assert invoices(api, "c") == [160]
    assert pool(api, "c") == {
        "license_plan_id": "seat",
        "parent_plan_id": "team",
        "license_plan_name": "Seat",
        "granted": 5,
        "usage": 0,
        "remaining": 5,
        "paid_quantity": 4,
    }
    api("licenses.attach", customer_id="c", plan_id="seat", entities=seats(5))
    assert pool(api, "c")["remaining"] == 0
    api("licenses.attach", expect=400, customer_id="c", plan_id="seat", entities=seats(1, "extra"))
    usage = api("check", customer_id="c", entity_id="u0", feature_id="summaries")
    assert usage["balance"]["remaining"] == 50  # a seat's own grant
    api.clock.set(MAY_1 + 1)  # renewal: the plan and the 4 paid seats
    assert invoices(api, "c") == [160, 160]


def test_resizing_a_pool_mid_cycle_is_prorated_and_previewed(api: Api) -> None:
    quantity = [{"license_plan_id": "seat", "quantity": 3}]
    subscribe(api, "c", "team", license_quantities=quantity)
    assert invoices(api, "c") == [40 + 60]

    api.clock.advance(15 * DAY)  # half of April left: 4 more paid seats cost $60
    body: dict[str, Any] = {
        "customer_id": "c",
        "plan_id": "team",
        "license_quantities": [{"license_plan_id": "seat", "quantity": 7}],
    }
    preview = api("billing.preview_update", **body)
    assert preview["total"] == 60
    api("billing.update", **body)
    assert invoices(api, "c") == [100, 60]
    assert (pool(api, "c")["granted"], pool(api, "c")["paid_quantity"]) == (7, 6)

    api("licenses.attach", customer_id="c", plan_id="seat", entities=seats(3))
    too_few: dict[str, Any] = {**body, "license_quantities": [{"license_plan_id": "seat", "quantity": 2}]}
    refused = api("billing.update", expect=400, **too_few)
    assert "assigned" in refused["message"]

    api.clock.advance(6 * DAY)  # 9 of 30 days left: 3 seats fewer credit $30 x 3 x 9/30
    fewer: dict[str, Any] = {**body, "license_quantities": [{"license_plan_id": "seat", "quantity": 4}]}
    assert api("billing.preview_update", **fewer)["total"] == -27
    api("billing.update", **fewer)
    assert invoices(api, "c") == [100, 60, -27]
    assert pool(api, "c") == {
        "license_plan_id": "seat",
        "parent_plan_id": "team",
        "license_plan_name": "Seat",
        "granted": 4,
        "usage": 3,
        "remaining": 1,
        "paid_quantity": 3,
    }
    api.clock.set(MAY_1 + 1)  # renewal: $40 + 3 paid seats
    assert invoices(api, "c")[-1] == 130


def test_upgrading_the_parent_keeps_the_bought_seats(api: Api) -> None:
    subscribe(api, "c", "team", license_quantities=[{"license_plan_id": "seat", "quantity": 5}])
    api.clock.advance(15 * DAY)
    body: dict[str, Any] = {"customer_id": "c", "plan_id": "scale"}
    preview = api("billing.preview_attach", **body)
    # Half of Team ($40 + 4 seats) back, half of Scale ($100 + 3 seats beyond its 2 included) charged.
    assert preview["total"] == (100 + 90) / 2 - (40 + 120) / 2
    api("billing.attach", **body)
    assert invoices(api, "c") == [160, 15]
    assert (pool(api, "c")["parent_plan_id"], pool(api, "c")["granted"], pool(api, "c")["paid_quantity"]) == (
        "scale",
        5,
        3,
    )
    api.clock.set(MAY_1 + 1)
    assert invoices(api, "c")[-1] == 190


def test_license_quantities_that_cannot_be_honoured_are_refused(api: Api) -> None:
    with_card(api, "c")
    unlinked = [{"license_plan_id": "scale", "quantity": 2}]
    assert (
        "not linked"
        in api("billing.attach", expect=400, customer_id="c", plan_id="team", license_quantities=unlinked)[
            "message"
        ]
    )
    unpriced = [{"license_plan_id": "free_seat", "quantity": 3}]
    api("billing.preview_attach", expect=400, customer_id="c", plan_id="team", license_quantities=unpriced)
    included_only = [{"license_plan_id": "free_seat", "quantity": 1}]
    api("billing.attach", customer_id="c", plan_id="team", license_quantities=included_only)
    assert invoices(api, "c") == [40]  # nothing bought beyond the included seat
    assert pool(api, "c", "free_seat")["paid_quantity"] == 0
    both: dict[str, Any] = {
        "customer_id": "c",
        "plan_id": "team",
        "license_quantities": [{"license_plan_id": "seat", "quantity": 2}],
        "feature_quantities": [{"feature_id": "summaries", "quantity": 2}],
    }
    api("billing.update", expect=400, **both)
    assert invoices(api, "c") == [40]


def test_upserted_links_set_the_customers_included_seats_and_seat_price(api: Api) -> None:
    with_card(api, "c")
    body: dict[str, Any] = {
        "customer_id": "c",
        "plan_id": "team",
        "license_quantities": [{"license_plan_id": "seat", "quantity": 5}],
        "customize": {
            "upsert_licenses": [
                {
                    "license_plan_id": "seat",
                    "included": 3,
                    "customize": {"price": {"amount": 20, "interval": "month"}},
                },
                {"license_plan_id": "viewer", "included": 2},
                {"license_plan_id": "free_seat"},  # bare: the catalogue's link, as it is
            ]
        },
    }
    assert api("billing.preview_attach", **body)["total"] == 40 + 2 * 20
    api("billing.attach", **body)
    assert invoices(api, "c") == [80]
    assert (pool(api, "c")["granted"], pool(api, "c")["paid_quantity"]) == (5, 2)
    assert (pool(api, "c", "viewer")["granted"], pool(api, "c", "viewer")["paid_quantity"]) == (2, 0)
    assert pool(api, "c", "free_seat")["granted"] == 1
    api("licenses.attach", customer_id="c", plan_id="viewer", entities=seats(2, "v"))
    api.clock.set(MAY_1 + 1)
    assert invoices(api, "c") == [80, 80]  # the customer's seat price renews


def test_an_update_upserting_a_seat_price_reprices_the_paid_seats(api: Api) -> None:
    subscribe(api, "c", "team", license_quantities=[{"license_plan_id": "seat", "quantity": 5}])
    api("licenses.attach", customer_id="c", plan_id="seat", entities=seats(2))
    api("track", customer_id="c", entity_id="u0", feature_id="summaries", value=5)
    api.clock.advance(15 * DAY)  # half of April left
    cheaper: dict[str, Any] = {
        "customer_id": "c",
        "plan_id": "team",
        "customize": {
            "upsert_licenses": [
                {"license_plan_id": "seat", "customize": {"price": {"amount": 20, "interval": "month"}}}
            ]
        },
    }
    # Half of ($40 + 4 x $30) back, half of ($40 + 4 x $20) charged.
    assert api("billing.preview_update", **cheaper)["total"] == -20
    api("billing.update", **cheaper)
    assert invoices(api, "c") == [160, -20]
    # The customized plan keeps its seats, and the seats their balances.
    assert (pool(api, "c")["granted"], pool(api, "c")["paid_quantity"], pool(api, "c")["usage"]) == (5, 4, 2)
    assert len(api("licenses.list_assignments", customer_id="c")["list"]) == 2
    kept = api("check", customer_id="c", entity_id="u0", feature_id="summaries")
    assert kept["balance"]["remaining"] == 45

    api.clock.advance(6 * DAY)  # 9 of 30 days left: 2 more seats at the customer's $20
    more: dict[str, Any] = {
        "customer_id": "c",
        "plan_id": "team",
        "license_quantities": [{"license_plan_id": "seat", "quantity": 7}],
    }
    assert api("billing.preview_update", **more)["total"] == 12
    api("billing.update", **more)
    assert invoices(api, "c") == [160, -20, 12]
    api.clock.set(MAY_1 + 1)
    assert invoices(api, "c")[-1] == 40 + 6 * 20


def test_upserted_links_that_cannot_be_honoured_are_refused(api: Api) -> None:
    with_card(api, "c")

    def attach(*links: dict[str, Any], expect: int = 400) -> dict[str, Any]:
        upserts = {"upsert_licenses": list(links)}
        return api("billing.attach", expect=expect, customer_id="c", plan_id="team", customize=upserts)

    items = {"add_items": [{"feature_id": "summaries", "included": 10}]}
    assert attach({"license_plan_id": "seat", "customize": items})["code"] == "unsupported_field"
    assert "prepaid_only" in attach({"license_plan_id": "seat", "prepaid_only": False})["message"]
    yearly = {"price": {"amount": 300, "interval": "year"}}
    assert "intervals must match" in attach({"license_plan_id": "seat", "customize": yearly})["message"]
    assert attach({"license_plan_id": "nope", "included": 1}, expect=404)["code"] == "product_not_found"
    assert invoices(api, "c") == []


def test_setup_payment_buys_the_seats_once_the_card_is_set_up(api: Api) -> None:
    api("customers.get_or_create", customer_id="c")
    unlinked = [{"license_plan_id": "viewer", "quantity": 2}]
    refused = api(
        "billing.setup_payment", expect=400, customer_id="c", plan_id="team", license_quantities=unlinked
    )
    assert "not linked" in refused["message"]
    url = api(
        "billing.setup_payment",
        customer_id="c",
        plan_id="team",
        license_quantities=[{"license_plan_id": "seat", "quantity": 3}],
        customize={
            "upsert_licenses": [
                {"license_plan_id": "seat", "customize": {"price": {"amount": 25, "interval": "month"}}}
            ]
        },
    )["url"]
    assert invoices(api, "c") == []  # nothing is bought before the card is set up
    assert api.pay(url).status_code == 303
    assert invoices(api, "c") == [40 + 2 * 25]
    assert (pool(api, "c")["granted"], pool(api, "c")["paid_quantity"]) == (3, 2)
