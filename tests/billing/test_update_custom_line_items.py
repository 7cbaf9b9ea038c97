"""``billing.update``'s ``custom_line_items`` (and its preview's): the caller's lines in place of what the
update would bill now, or billed alone when it changes nothing else; through the real server over HTTP on
SQLite and PostgreSQL, and on Stripe with localstripe (whose books the fixture checks against the
server's at the end of every scenario)."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import DAY, MAY, Api, create_pack, invoices_of, on_pro

LINES = [
    {"amount": 12.5, "description": "Move to the bigger allowance, agreed price"},
    {"amount": -2, "description": "Goodwill credit"},
]
NOT_EXISTING = (
    "custom_line_items can only be used when updating an existing subscription (not creating a new one)"
)
BIGGER = {"price": {"amount": 30, "interval": "month"}}


def test_a_customization_bills_the_given_lines_instead_of_its_proration(api: Api) -> None:
    on_pro(api, "u1")
    api.clock.advance(15 * DAY)
    body: dict[str, Any] = {"customer_id": "u1", "plan_id": "pro", "customize": BIGGER}
    computed = api("billing.preview_update", **body)
    assert computed["total"] == 5  # half a month of $10 more

    preview = api("billing.preview_update", **body, custom_line_items=LINES)
    assert preview["total"] == 10.5
    assert [(line["description"], line["total"]) for line in preview["line_items"]] == [
        ("Move to the bigger allowance, agreed price", 12.5),
        ("Goodwill credit", -2),
    ]
    assert preview["next_cycle"] == computed["next_cycle"]  # the renewal is untouched

    before = len(invoices_of(api, "u1"))
    answer = api("billing.update", **body, custom_line_items=LINES)
    assert answer["invoice"]["total"] == preview["total"]
    invoices = invoices_of(api, "u1")
    assert len(invoices) == before + 1
    change = invoices[0]
    assert (change["total"], change["status"]) == (10.5, "paid"), change
    assert api.on_processor(change) == ("paid", 1050)

    api.clock.set(MAY)  # the customization applied: the renewal is its price, on the kept anchor
    renewal = invoices_of(api, "u1")[0]
    assert (renewal["total"], renewal["status"]) == (30, "paid"), renewal


def test_lines_alone_bill_a_standalone_invoice_and_change_nothing_else(api: Api) -> None:
    on_pro(api, "u1")
    api.clock.advance(10 * DAY)
    api("balances.track", customer_id="u1", feature_id="messages", value=40)
    body: dict[str, Any] = {"customer_id": "u1", "plan_id": "pro", "custom_line_items": LINES[:1]}
    preview = api("billing.preview_update", **body)
    assert preview["total"] == 12.5
    assert [line["total"] for line in preview["line_items"]] == [12.5]

    before = invoices_of(api, "u1")
    answer = api("billing.update", **body)
    assert answer["invoice"]["total"] == 12.5
    invoices = invoices_of(api, "u1")
    assert len(invoices) == len(before) + 1
    assert api.on_processor(invoices[0]) == ("paid", 1250)
    customer = api.customer("u1")
    assert api.plans_of("u1") == {"pro": "active"}
    messages = customer["balances"]["messages"]
    assert (messages["granted"], messages["usage"]) == (1000, 40)  # balances untouched

    api.clock.set(MAY)  # the plan renews as before
    renewal = invoices_of(api, "u1")[0]
    assert (renewal["total"], renewal["status"]) == (20, "paid"), renewal


def test_a_credit_line_leaves_a_credit_for_the_renewal(api: Api) -> None:
    on_pro(api, "u1")
    credit = [{"amount": -5, "description": "Apology credit"}]
    preview = api("billing.preview_update", customer_id="u1", plan_id="pro", custom_line_items=credit)
    assert preview["total"] == -5
    api("billing.update", customer_id="u1", plan_id="pro", custom_line_items=credit)
    api.clock.set(MAY)  # the $5 credit pays part of the renewal
    renewal = invoices_of(api, "u1")[0]
    assert (renewal["total"], renewal["status"]) == (20, "paid"), renewal
    assert api.on_processor(renewal) == ("paid", 1500)


@pytest.mark.parametrize("op", ["billing.update", "billing.preview_update"])
def test_what_autumn_refuses_is_400_and_writes_nothing(api: Api, op: str) -> None:
    on_pro(api, "u1")
    create_pack(api)
    api("billing.attach", customer_id="u1", plan_id="pack")
    api("customers.get_or_create", customer_id="u2")  # on the free default plan only
    before = (invoices_of(api, "u1"), api.customer("u1")["balances"], invoices_of(api, "u2"))
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"customer_id": "u1", "plan_id": "pro", "cancel_action": "cancel_immediately"},
            "custom_line_items cannot be used together with cancel_action",
        ),
        (
            {"customer_id": "u1", "plan_id": "pro", "cancel_action": "uncancel"},
            "custom_line_items cannot be used together with cancel_action",
        ),
        (
            {
                "customer_id": "u1",
                "plan_id": "pro",
                "cancel_action": "cancel_immediately",
                "refund_last_payment": "full",
            },
            "custom_line_items cannot be used together with refund_last_payment",
        ),
        ({"customer_id": "u1", "plan_id": "pack"}, "custom_line_items is not supported for one-off products"),
        (
            {"customer_id": "u2", "plan_id": "free"},
            NOT_EXISTING,
        ),
        (
            {"customer_id": "u2", "plan_id": "free", "customize": BIGGER},
            NOT_EXISTING,
        ),
    ]
    for body, message in cases:
        error = api(op, 400, **body, custom_line_items=LINES)
        assert (error["code"], error["message"]) == ("invalid_request", message), (body, error)
    no_billing = api(
        op, 400, customer_id="u1", plan_id="pro", custom_line_items=LINES, no_billing_changes=True
    )
    assert no_billing["code"] == "invalid_request" and "custom_line_items" in no_billing["message"]
    malformed = api(op, 400, customer_id="u1", plan_id="pro", custom_line_items=[{"amount": 5}])
    assert "message" in malformed and "code" in malformed
    after = (invoices_of(api, "u1"), api.customer("u1")["balances"], invoices_of(api, "u2"))
    assert after == before
    assert api.plans_of("u1") == {"pro": "active"} and api.plans_of("u2") == {"free": "active"}


def test_an_empty_list_is_the_computed_invoice(api: Api) -> None:
    on_pro(api, "u1")
    api.clock.advance(15 * DAY)
    preview = api(
        "billing.preview_update", customer_id="u1", plan_id="pro", customize=BIGGER, custom_line_items=[]
    )
    assert preview["total"] == 5
