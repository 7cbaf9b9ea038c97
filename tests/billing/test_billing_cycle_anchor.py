"""``billing.attach``'s ``billing_cycle_anchor: "now"``: an upgrade restarts the billing cycle at the
request instead of keeping the running anchor, through the real server over HTTP on SQLite and
PostgreSQL, and on Stripe with localstripe (whose books the fixture checks at the end)."""

from __future__ import annotations

from .helpers import DAY, MAY, Api, create_pack, create_trial_pro, invoices_of, ms, on_pro, with_card

RESET = {"billing_cycle_anchor": "now"}


def test_an_upgrade_with_now_restarts_the_cycle_and_bills_a_full_period(api: Api) -> None:
    on_pro(api, "u1")
    api.clock.advance(10 * DAY)  # from April 1st (helpers.START): 20 of April's 30 days left
    kept = api("billing.preview_attach", customer_id="u1", plan_id="premium")
    assert kept["total"] == 20  # -$13.33 unused Pro, +$33.33 Premium to the running anchor
    assert kept["next_cycle"]["starts_at"] == MAY

    preview = api("billing.preview_attach", customer_id="u1", plan_id="premium", **RESET)
    assert preview["total"] == 36.67  # -$13.33 unused Pro, +$50 for a whole Premium month from now
    renewal_at = ms(2026, 5, 11)
    assert preview["next_cycle"]["starts_at"] == renewal_at

    api("billing.attach", customer_id="u1", plan_id="premium", **RESET)
    switch = invoices_of(api, "u1")[0]
    assert (switch["total"], switch["status"]) == (36.67, "paid"), switch
    assert api.on_processor(switch) == ("paid", 3667)
    premium = next(s for s in api.customer("u1")["subscriptions"] if s["plan_id"] == "premium")
    assert premium["current_period_end"] == renewal_at, premium

    count = len(invoices_of(api, "u1"))
    api.clock.set(MAY)  # the old anchor bills nothing any more
    assert len(invoices_of(api, "u1")) == count
    api.clock.set(renewal_at)
    renewal = invoices_of(api, "u1")[0]
    assert (renewal["total"], renewal["status"]) == (50, "paid"), renewal


def test_a_new_plan_with_now_starts_now_as_it_always_does(api: Api) -> None:
    with_card(api, "u2")
    api.clock.advance(3 * DAY)
    plain = api("billing.preview_attach", customer_id="u2", plan_id="pro")
    reset = api("billing.preview_attach", customer_id="u2", plan_id="pro", **RESET)
    assert reset["total"] == plain["total"] == 20
    assert reset["next_cycle"] == plain["next_cycle"]
    api("billing.attach", customer_id="u2", plan_id="pro", **RESET)
    assert api.plans_of("u2") == {"pro": "active"}


def test_now_is_refused_where_there_is_no_cycle_to_restart(api: Api) -> None:
    on_pro(api, "u3")
    api("billing.attach", customer_id="u3", plan_id="premium")
    # a downgrade waits for the period end
    error = api("billing.attach", expect=400, customer_id="u3", plan_id="pro", **RESET)
    assert "scheduled switches" in error["message"], error
    assert api.plans_of("u3") == {"premium": "active"}
    # a one-off plan has no cycle
    create_pack(api, amount=5, included=100)
    error = api("billing.attach", expect=400, customer_id="u3", plan_id="pack", **RESET)
    assert "one-off" in error["message"], error
    # a trial already decides when the cycle starts
    create_trial_pro(api, 14, group="trials")
    for op in ("billing.preview_attach", "billing.attach"):
        error = api(op, expect=400, customer_id="u3", plan_id="trial_pro", **RESET)
        assert "free trial" in error["message"], error
    assert set(api.plans_of("u3")) == {"premium"}


MORE_MESSAGES = {"items": [{"feature_id": "messages", "included": 2000, "reset": {"interval": "month"}}]}


def test_a_customization_with_now_restarts_the_subscription_cycle(api: Api) -> None:
    on_pro(api, "u1")
    api.clock.advance(10 * DAY)
    kept = api("billing.preview_update", customer_id="u1", plan_id="pro", customize=MORE_MESSAGES)
    assert kept["total"] == 0  # the same price to the same anchor: credit and charge cancel out
    preview = api("billing.preview_update", customer_id="u1", plan_id="pro", customize=MORE_MESSAGES, **RESET)
    assert preview["total"] == 6.67  # -$13.33 unused, +$20 for a whole month from now
    renewal_at = ms(2026, 5, 11)
    assert preview["next_cycle"]["starts_at"] == renewal_at

    api("billing.update", customer_id="u1", plan_id="pro", customize=MORE_MESSAGES, **RESET)
    switch = invoices_of(api, "u1")[0]
    assert (switch["total"], switch["status"]) == (6.67, "paid"), switch
    assert api.customer("u1")["balances"]["messages"]["granted"] == 2000
    count = len(invoices_of(api, "u1"))
    api.clock.set(MAY)
    assert len(invoices_of(api, "u1")) == count
    api.clock.set(renewal_at)
    renewal = invoices_of(api, "u1")[0]
    assert (renewal["total"], renewal["status"]) == (20, "paid"), renewal


def test_an_update_that_does_not_customize_refuses_now(api: Api) -> None:
    on_pro(api, "u1")
    # beside a cancel: Autumn's 400; with nothing to change: unsupported here (Autumn does not refuse it)
    for extra, code in (
        ({"cancel_action": "cancel_end_of_cycle"}, "invalid_request"),
        ({}, "unsupported_field"),
    ):
        for op in ("billing.preview_update", "billing.update"):
            error = api(op, expect=400, customer_id="u1", plan_id="pro", **extra, **RESET)
            assert error["code"] == code, error
            assert error["message"].startswith("billing_cycle_anchor "), error
    assert api.plans_of("u1") == {"pro": "active"}
    assert api.customer("u1")["subscriptions"][0]["canceled_at"] is None
