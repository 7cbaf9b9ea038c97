"""``billing.attach``'s ``custom_line_items``: the caller's lines in place of the computed proration
invoice, through the real server over HTTP on SQLite and PostgreSQL, and on Stripe with localstripe
(whose books the fixture checks against the server's at the end of every scenario)."""

from __future__ import annotations

from typing import Any

from .helpers import DAY, MAY, Api, create_trial_pro, invoices_of, on_pro, with_card

LINES = [
    {"amount": 12.5, "description": "Upgrade to Premium, agreed price"},
    {"amount": -2, "description": "Goodwill credit"},
]


def test_an_upgrade_bills_the_given_lines_instead_of_its_proration(api: Api) -> None:
    on_pro(api, "u1")
    api.clock.advance(15 * DAY)
    computed = api("billing.preview_attach", customer_id="u1", plan_id="premium")
    assert computed["total"] == 15  # half a month: -$10 unused Pro, +$25 Premium

    preview = api("billing.preview_attach", customer_id="u1", plan_id="premium", custom_line_items=LINES)
    assert preview["total"] == 10.5
    assert [(line["description"], line["total"]) for line in preview["line_items"]] == [
        ("Upgrade to Premium, agreed price", 12.5),
        ("Goodwill credit", -2),
    ]
    assert preview["next_cycle"] == computed["next_cycle"]  # the renewal is untouched

    before = len(invoices_of(api, "u1"))
    api("billing.attach", customer_id="u1", plan_id="premium", custom_line_items=LINES)
    assert api.plans_of("u1") == {"premium": "active"}
    invoices = invoices_of(api, "u1")
    assert len(invoices) == before + 1
    switch = invoices[0]
    assert (switch["total"], switch["status"]) == (10.5, "paid"), switch
    assert api.on_processor(switch) == ("paid", 1050)
    assert api.customer("u1")["balances"]["messages"]["granted"] == 5000

    api.clock.set(MAY)  # the renewal is Premium's full price on the kept anchor
    renewal = invoices_of(api, "u1")[0]
    assert (renewal["total"], renewal["status"]) == (50, "paid"), renewal


def test_lines_that_credit_more_than_they_charge_leave_a_credit(api: Api) -> None:
    on_pro(api, "u1")
    api.clock.advance(10 * DAY)
    credit = [{"amount": -5, "description": "Apology credit"}]
    preview = api("billing.preview_attach", customer_id="u1", plan_id="premium", custom_line_items=credit)
    assert preview["total"] == -5
    api("billing.attach", customer_id="u1", plan_id="premium", custom_line_items=credit)
    assert api.plans_of("u1") == {"premium": "active"}
    api.clock.set(MAY)  # the $5 credit pays part of the first Premium renewal
    renewal = invoices_of(api, "u1")[0]
    assert (renewal["total"], renewal["status"]) == (50, "paid"), renewal
    assert api.on_processor(renewal) == ("paid", 4500)


def test_a_change_that_creates_or_waits_is_refused_and_writes_nothing(api: Api) -> None:
    with_card(api, "u2")
    # a first paid plan (from the free default) creates a subscription: nothing to replace
    for op in ("billing.preview_attach", "billing.attach"):
        error = api(op, expect=400, customer_id="u2", plan_id="pro", custom_line_items=LINES)
        assert error["code"] == "invalid_request", error
        assert "existing subscription" in error["message"], error
    assert api.plans_of("u2") == {"free": "active"}
    assert invoices_of(api, "u2") == []

    on_pro(api, "u3")
    api("billing.attach", customer_id="u3", plan_id="premium")
    # a downgrade waits for the period end: it bills nothing now
    error = api("billing.attach", expect=400, customer_id="u3", plan_id="pro", custom_line_items=LINES)
    assert "existing subscription" in error["message"], error
    assert api.plans_of("u3") == {"premium": "active"}


def test_a_change_that_ends_a_trial_is_refused(api: Api) -> None:
    create_trial_pro(api, 14, group="trials")
    api(
        "plans.create",
        plan_id="trial_max",
        name="Trial Max",
        group="trials",
        price={"amount": 40, "interval": "month"},
        items=[{"feature_id": "messages", "included": 4000, "reset": {"interval": "month"}}],
    )
    with_card(api, "u4")
    api("billing.attach", customer_id="u4", plan_id="trial_pro")

    def trial_ends_at() -> Any:
        subscriptions = api.customer("u4")["subscriptions"]
        return next(s["trial_ends_at"] for s in subscriptions if s["plan_id"] == "trial_pro")

    trial_end = trial_ends_at()
    assert trial_end == api.clock.now_ms() + 14 * DAY
    error = api("billing.attach", expect=400, customer_id="u4", plan_id="trial_max", custom_line_items=LINES)
    assert "trial" in error["message"], error
    assert api.plans_of("u4") == {"free": "active", "trial_pro": "active"}
    assert trial_ends_at() == trial_end


def test_an_empty_list_is_the_computed_invoice(api: Api) -> None:
    on_pro(api, "u1")
    api.clock.advance(15 * DAY)
    preview = api("billing.preview_attach", customer_id="u1", plan_id="premium", custom_line_items=[])
    assert preview["total"] == 15
