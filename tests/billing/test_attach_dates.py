"""``billing.attach``'s ``starts_at`` and ``ends_at`` (and its preview's), through the real server over HTTP
on SQLite and PostgreSQL, and on Stripe with localstripe (whose books the fixture checks against the
server's at the end of every scenario): a later start schedules the plan and bills it when it starts, a
past one backdates it, an end stops it and bills the period it ends in up to then; Autumn's refusals
write nothing."""

from __future__ import annotations

from typing import Any

from .helpers import DAY, MAY, START, Api, create_extra, ms


def _customer(api: Api, customer_id: str, card: bool = True) -> None:
    api("customers.get_or_create", customer_id=customer_id)
    if card:
        api.add_card(customer_id)


def _subs(api: Api, customer_id: str) -> dict[str, dict[str, Any]]:
    return {s["plan_id"]: s for s in api.customer(customer_id)["subscriptions"]}


def _invoices(api: Api, customer_id: str) -> list[tuple[float, str]]:
    """(total, status) of each invoice, newest first."""
    return [(i["total"], i["status"]) for i in api.customer(customer_id)["invoices"]]


def _granted(api: Api, customer_id: str) -> Any:
    return api.customer(customer_id)["balances"]["messages"]["granted"]


def test_a_later_start_schedules_the_plan_and_bills_it_when_it_starts(api: Api) -> None:
    create_extra(api, amount=5, included=50)
    _customer(api, "u1")
    starts = START + 10 * DAY  # April 11
    preview = api("billing.preview_attach", customer_id="u1", plan_id="pro", starts_at=starts)
    assert (preview["total"], preview["line_items"], preview["redirect_to_checkout"]) == (0, [], False)
    cycle = preview["next_cycle"]
    assert (cycle["starts_at"], cycle["total"]) == (starts, 20)
    assert cycle["line_items"][0]["period"] == {"start": starts, "end": ms(2026, 5, 11)}
    assert [(i["plan_id"], i["effective_at"]) for i in preview["incoming"]] == [("pro", starts)]
    assert [(o["plan_id"], o["expires_at"]) for o in preview["outgoing"]] == [("free", starts)]

    result = api("billing.attach", customer_id="u1", plan_id="pro", starts_at=starts)
    assert result["payment_url"] is None and "invoice" not in result
    subs = _subs(api, "u1")
    assert (subs["pro"]["status"], subs["pro"]["started_at"]) == ("scheduled", starts)
    assert (subs["free"]["status"], subs["free"]["canceled_at"], subs["free"]["expires_at"]) == (
        "active",
        START,
        starts,
    )
    assert _invoices(api, "u1") == [] and _granted(api, "u1") == 100

    api.clock.set(starts - 1)  # not yet
    assert api.plans_of("u1") == {"free": "active", "pro": "scheduled"}
    api.clock.set(starts + 1)
    assert api.plans_of("u1") == {"pro": "active"}
    pro = _subs(api, "u1")["pro"]
    assert (pro["started_at"], pro["current_period_start"], pro["current_period_end"]) == (
        starts,
        starts,
        ms(2026, 5, 11),
    )
    customer = api.customer("u1")
    assert customer["balances"]["messages"]["granted"] == 1000
    assert customer["balances"]["messages"]["next_reset_at"] == ms(2026, 5, 11)  # reset from the start
    first = customer["invoices"][0]
    assert (first["total"], first["status"]) == (20, "paid") and api.on_processor(first) == ("paid", 2000)

    # an add-on can start later too: the plan beside it stays
    addon_starts = START + 20 * DAY
    api("billing.attach", customer_id="u1", plan_id="extra", starts_at=addon_starts)
    assert api.plans_of("u1") == {"pro": "active", "extra": "scheduled"}
    api.clock.set(addon_starts + 1)
    assert api.plans_of("u1") == {"pro": "active", "extra": "active"}
    assert _granted(api, "u1") == 1050
    api.clock.set(ms(2026, 5, 11) + 1)  # pro renews on the anchor its start set
    assert [total for total, _ in _invoices(api, "u1")] == [20, 5, 20]


def test_a_later_start_switches_the_current_plan_at_that_moment(api: Api) -> None:
    # an immediate attach replaces a plan scheduled to start later
    _customer(api, "u2")
    api("billing.attach", customer_id="u2", plan_id="pro", starts_at=START + 7 * DAY)
    api("billing.attach", customer_id="u2", plan_id="premium")
    assert api.plans_of("u2") == {"premium": "active"}

    _customer(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="premium")
    switch = START + 45 * DAY  # May 16, after premium's renewal
    preview = api("billing.preview_attach", customer_id="u1", plan_id="pro", starts_at=switch)
    assert preview["total"] == 0
    assert (preview["next_cycle"]["starts_at"], preview["next_cycle"]["total"]) == (switch, 20)
    assert [(o["plan_id"], o["expires_at"]) for o in preview["outgoing"]] == [("premium", switch)]
    api("billing.attach", customer_id="u1", plan_id="pro", starts_at=switch)
    subs = _subs(api, "u1")
    assert (subs["premium"]["canceled_at"], subs["premium"]["expires_at"]) == (START, switch)
    assert (subs["pro"]["status"], subs["pro"]["started_at"]) == ("scheduled", switch)

    api.clock.set(MAY + 1)  # premium runs (and renews) until the switch, as a schedule's phase does
    assert api.plans_of("u1") == {"premium": "active", "pro": "scheduled"}
    assert _invoices(api, "u1") == [(50, "paid"), (50, "paid")]
    api.clock.set(switch + 1)
    assert api.plans_of("u1") == {"pro": "active"}
    assert _invoices(api, "u1") == [(20, "paid"), (50, "paid"), (50, "paid")]
    pro = _subs(api, "u1")["pro"]
    assert (pro["current_period_start"], pro["current_period_end"]) == (switch, ms(2026, 6, 16))
    assert _granted(api, "u1") == 1000
    assert api.plans_of("u2") == {"premium": "active"}  # the replaced scheduled plan never started


def test_a_later_start_needs_no_card_now(api: Api) -> None:
    _customer(api, "u1", card=False)
    starts = START + 5 * DAY
    preview = api("billing.preview_attach", customer_id="u1", plan_id="pro", starts_at=starts)
    assert (preview["redirect_to_checkout"], preview["checkout_type"], preview["total"]) == (False, None, 0)
    result = api("billing.attach", customer_id="u1", plan_id="pro", starts_at=starts)
    assert result["payment_url"] is None
    assert api.plans_of("u1") == {"free": "active", "pro": "scheduled"}
    api.clock.set(starts + 1)  # it starts, and its first invoice waits for a card
    assert api.plans_of("u1") == {"pro": "active"}
    assert _subs(api, "u1")["pro"]["past_due"] is True
    assert _invoices(api, "u1") == [(20, "open")]
    api.add_card("u1")
    assert _invoices(api, "u1") == [(20, "paid")]
    assert _subs(api, "u1")["pro"]["past_due"] is False


def test_ends_at_ends_the_plan_and_bills_its_period_up_to_then(api: Api) -> None:
    _customer(api, "u1")
    ends = START + 10 * DAY  # April 11: 10 of April's 30 days are used
    preview = api("billing.preview_attach", customer_id="u1", plan_id="pro", ends_at=ends)
    assert preview["total"] == 6.67
    assert [(line["description"], line["total"]) for line in preview["line_items"]] == [
        ("Pro base price (2026-04-01 to 2026-05-01)", 20),
        ("Unused time on Pro after 2026-04-11", -13.33),
    ]
    assert "next_cycle" not in preview  # it ends before it would renew
    assert [(i["plan_id"], i["expires_at"]) for i in preview["incoming"]] == [("pro", ends)]

    result = api("billing.attach", customer_id="u1", plan_id="pro", ends_at=ends)
    assert result["invoice"]["total"] == 6.67
    pro = _subs(api, "u1")["pro"]
    assert (pro["status"], pro["canceled_at"], pro["expires_at"]) == ("active", None, ends)  # not cancelled
    assert _granted(api, "u1") == 1000
    api.clock.set(ends + 1)  # it ends; the group's default plan comes back
    assert api.plans_of("u1") == {"free": "active"}
    assert _granted(api, "u1") == 100
    invoices = api.customer("u1")["invoices"]
    assert [(i["total"], i["status"]) for i in invoices] == [(6.67, "paid")]
    assert api.on_processor(invoices[0]) == ("paid", 667)


def test_an_end_in_a_later_period_bills_that_renewal_up_to_it(api: Api) -> None:
    _customer(api, "u1")
    ends = ms(2026, 5, 16)  # 15 of May's 31 days are used
    preview = api("billing.preview_attach", customer_id="u1", plan_id="pro", ends_at=ends)
    assert preview["total"] == 20
    assert (preview["next_cycle"]["starts_at"], preview["next_cycle"]["total"]) == (MAY, 9.68)
    api("billing.attach", customer_id="u1", plan_id="pro", ends_at=ends)
    api.clock.set(MAY + 1)
    assert _invoices(api, "u1") == [(9.68, "paid"), (20, "paid")]
    # switched to premium before the end: pro's credit covers only the days up to its end (it paid no more)
    api.clock.set(MAY + 5 * DAY)
    upgrade = api("billing.preview_attach", customer_id="u1", plan_id="premium")
    unused = [line["total"] for line in upgrade["line_items"] if line["plan_id"] == "pro"]
    assert unused == [-6.45]  # 10 days of 31 of $20
    api.clock.set(ends + 1)
    assert api.plans_of("u1") == {"free": "active"}
    assert _invoices(api, "u1") == [(9.68, "paid"), (20, "paid")]


def test_a_later_start_with_an_end_and_a_purchase_with_an_end(api: Api) -> None:
    api(
        "plans.create",
        plan_id="pack",
        name="Pack",
        add_on=True,
        price={"amount": 10, "interval": "one_off"},
        items=[{"feature_id": "messages", "included": 50}],
    )
    _customer(api, "u1")
    starts, ends = START + 5 * DAY, START + 15 * DAY  # a first period of April 6 to May 6 (30 days)
    preview = api("billing.preview_attach", customer_id="u1", plan_id="pro", starts_at=starts, ends_at=ends)
    assert preview["total"] == 0
    assert (preview["next_cycle"]["starts_at"], preview["next_cycle"]["total"]) == (starts, 6.67)
    api("billing.attach", customer_id="u1", plan_id="pro", starts_at=starts, ends_at=ends)
    assert _subs(api, "u1")["pro"]["expires_at"] == ends

    # a one-off purchase with an end: its balance goes then
    api("billing.attach", customer_id="u1", plan_id="pack", ends_at=START + 12 * DAY)
    purchases = api.customer("u1")["purchases"]
    assert [(p["plan_id"], p["expires_at"]) for p in purchases] == [("pack", START + 12 * DAY)]
    assert _granted(api, "u1") == 150

    api.clock.set(starts + 1)
    assert api.plans_of("u1") == {"pro": "active"}
    assert _invoices(api, "u1") == [(6.67, "paid"), (10, "paid")]
    api.clock.set(START + 12 * DAY + 1)
    assert api.customer("u1")["purchases"] == []
    assert api.plans_of("u1") == {"pro": "active"} and _granted(api, "u1") == 1000
    api.clock.set(ends + 1)
    assert api.plans_of("u1") == {"free": "active"}
    assert _invoices(api, "u1") == [(6.67, "paid"), (10, "paid")]


def test_a_past_start_backdates_a_new_subscription(api: Api) -> None:
    for customer_id in ("u1", "u2"):
        _customer(api, customer_id)
    _customer(api, "nocard", card=False)
    api.clock.set(START + 45 * DAY)  # May 16
    preview = api("billing.preview_attach", customer_id="u1", plan_id="pro", starts_at=START)
    assert preview["total"] == 40  # April and May
    result = api("billing.attach", customer_id="u1", plan_id="pro", starts_at=START)
    assert result["invoice"]["total"] == 40
    pro = _subs(api, "u1")["pro"]
    assert (pro["started_at"], pro["current_period_start"], pro["current_period_end"]) == (
        START,
        MAY,
        ms(2026, 6, 1),
    )
    assert api.plans_of("u1") == {"pro": "active"}
    # backdated and ending this period: May is billed up to the end
    api("billing.attach", customer_id="u2", plan_id="pro", starts_at=START, ends_at=ms(2026, 5, 21))
    assert _invoices(api, "u2") == [(32.9, "paid")]  # 40 less 11 of May's 31 days

    # with a paid subscription already, a past start is refused (it needs a new subscription)
    error = api("billing.attach", expect=400, customer_id="u1", plan_id="premium", starts_at=START)
    assert error["message"] == "Past starts_at is only supported when creating a new Stripe subscription."
    # a payment through Stripe Checkout cannot be backdated: the attach is refused, the preview says so
    preview = api("billing.preview_attach", customer_id="nocard", plan_id="pro", starts_at=START)
    assert preview["redirect_to_checkout"] is True
    error = api("billing.attach", expect=400, customer_id="nocard", plan_id="pro", starts_at=START)
    assert (error["code"], error["message"]) == (
        "invalid_request",
        "Past starts_at cannot be used when Stripe Checkout is required.",
    )
    assert api.plans_of("nocard") == {"free": "active"} and _invoices(api, "nocard") == []


def test_autumns_refusals_write_nothing(api: Api) -> None:
    api(
        "plans.create",
        plan_id="trialed",
        name="Trialed",
        price={"amount": 30, "interval": "month"},
        items=[{"feature_id": "messages", "included": 2000, "reset": {"interval": "month"}}],
        free_trial={"duration_length": 7, "duration_type": "day", "card_required": True},
    )
    api(
        "plans.create",
        plan_id="gift",
        name="Gift",
        add_on=True,
        items=[{"feature_id": "messages", "included": 5}],
    )
    api(
        "plans.create",
        plan_id="pack",
        name="Pack",
        add_on=True,
        price={"amount": 10, "interval": "one_off"},
        items=[{"feature_id": "messages", "included": 50}],
    )
    _customer(api, "u1")
    later, earlier = START + 5 * DAY, START - 5 * DAY
    invoice_mode = {"enabled": True}
    refusals: list[tuple[dict[str, Any], str]] = [
        (
            {"plan_id": "pro", "starts_at": later, "plan_schedule": "end_of_cycle"},
            "plan_schedule: end_of_cycle",
        ),
        ({"plan_id": "pro", "starts_at": later, "invoice_mode": invoice_mode}, "together with invoice mode"),
        (
            {"plan_id": "gift", "starts_at": later},
            "Future starts_at is only supported for paid recurring plans.",
        ),
        (
            {"plan_id": "pack", "starts_at": later},
            "Future starts_at is only supported for paid recurring plans.",
        ),
        (
            {"plan_id": "trialed", "starts_at": later},
            "Future starts_at cannot be used together with a free trial.",
        ),
        (
            {"plan_id": "gift", "starts_at": earlier},
            "Past starts_at is only supported for paid recurring plans.",
        ),
        (
            {"plan_id": "trialed", "starts_at": earlier},
            "Past starts_at cannot be used together with a free trial.",
        ),
        ({"plan_id": "pro", "starts_at": ms(2000, 1, 1)}, "Stripe supports backdating only when"),
        ({"plan_id": "pro", "ends_at": earlier}, "ends_at cannot be set to a past timestamp."),
        (
            {"plan_id": "pro", "starts_at": later, "ends_at": later},
            "ends_at must be after the plan start timestamp.",
        ),
        ({"plan_id": "gift", "ends_at": later}, "ends_at is only supported for paid plans."),
        (
            {"plan_id": "pro", "starts_at": later, "billing_cycle_anchor": "now"},
            "not supported for scheduled",
        ),
    ]
    for body, message in refusals:
        for op in ("billing.preview_attach", "billing.attach"):
            error = api(op, expect=400, customer_id="u1", **body)
            assert error["code"] == "invalid_request" and message in error["message"], (op, body, error)
    # what the server does not model: access before a later start is billed
    for op in ("billing.preview_attach", "billing.attach"):
        error = api(
            op, expect=400, customer_id="u1", plan_id="pro", starts_at=later, enable_plan_immediately=True
        )
        assert error["code"] == "unsupported_field" and error["message"].startswith("enable_plan_immediately")
    assert api.plans_of("u1") == {"free": "active"}
    assert _invoices(api, "u1") == []
    # a start within a minute of now is now
    api("billing.attach", customer_id="u1", plan_id="pro", starts_at=START + 30_000)
    assert api.plans_of("u1") == {"pro": "active"} and _invoices(api, "u1") == [(20, "paid")]


def test_a_later_start_after_a_cancellation_and_on_an_entity(api: Api) -> None:
    _customer(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="pro")
    api("billing.update", customer_id="u1", plan_id="pro", cancel_action="cancel_end_of_cycle")
    starts = MAY + 9 * DAY  # after pro's end: the default plan comes back meanwhile
    preview = api("billing.preview_attach", customer_id="u1", plan_id="premium", starts_at=starts)
    assert [(o["plan_id"], o["expires_at"]) for o in preview["outgoing"]] == [("pro", MAY)]
    api("billing.attach", customer_id="u1", plan_id="premium", starts_at=starts)
    subs = _subs(api, "u1")
    assert (subs["pro"]["expires_at"], subs["premium"]["status"]) == (MAY, "scheduled")
    assert "free" not in subs  # the default scheduled at pro's end made way for premium

    # an entity's plan starts later in the entity's scope only
    api("entities.create", customer_id="u1", entity_id="e1", feature_id="seats", name="Seat 1")
    api("billing.attach", customer_id="u1", entity_id="e1", plan_id="pro", starts_at=starts)
    entity = api("entities.get", customer_id="u1", entity_id="e1")
    assert [(s["plan_id"], s["status"]) for s in entity["subscriptions"]] == [("pro", "scheduled")]

    api.clock.set(MAY + 1)
    assert api.plans_of("u1") == {"free": "active", "premium": "scheduled"}
    assert _granted(api, "u1") == 100
    api.clock.set(starts + 1)
    assert api.plans_of("u1") == {"premium": "active"}
    assert _granted(api, "u1") == 6000  # premium's 5000, and the entity's pro 1000
    entity = api("entities.get", customer_id="u1", entity_id="e1")
    assert [(s["plan_id"], s["status"]) for s in entity["subscriptions"]] == [("pro", "active")]
    assert sorted(total for total, _ in _invoices(api, "u1")) == [20, 20, 50]
