"""billing.create_schedule's fields of Autumn's current API, through the real server over HTTP on every
processor and database of :data:`tests.billing.helpers.PROCESSORS`.

Phase plans customized with ``add_items``/``remove_items``, scoped with ``entity_id``, phases started
``starting_after`` the one before, ``billing_cycle_anchor: phase_start``, a request ``free_trial``,
``preserve_add_ons``, ``unscheduled_plans`` and ``billing_cycle_anchor: "now"``; and what stays refused
(``customize.billing_controls``; ``no_billing_changes`` is in test_no_billing_changes.py, ``discounts`` in
test_discounts.py).
"""

from __future__ import annotations

from typing import Any

from .helpers import DAY, START, Api, ms, subscriptions_by_plan, with_card

MONTH = {"interval": "month"}


def _boost(api: Api) -> None:
    """A paid add-on: $5 a month for 300 more messages."""
    api(
        "plans.create",
        plan_id="boost",
        name="Boost",
        add_on=True,
        price={"amount": 5, "interval": "month"},
        items=[{"feature_id": "messages", "included": 300, "reset": MONTH}],
    )


def _with_card(api: Api, customer_id: str = "u1") -> None:
    with_card(api, customer_id)


def _schedule(api: Api, expect: int = 200, **body: Any) -> dict[str, Any]:
    return api("billing.create_schedule", expect=expect, customer_id="u1", **body)


def test_phase_plans_add_and_remove_items(api: Api) -> None:
    _with_card(api)
    later = ms(2026, 4, 11)
    result = _schedule(
        api,
        phases=[
            {
                "starts_at": START,
                "plans": [
                    {
                        "plan_id": "pro",
                        "customize": {
                            "remove_items": [{"feature_id": "messages"}],
                            "add_items": [{"feature_id": "seats", "included": 5}],
                        },
                    }
                ],
            },
            {
                "starts_at": later,
                "plans": [
                    {
                        "plan_id": "premium",
                        "customize": {
                            "add_items": [
                                {
                                    "feature_id": "seats",
                                    "included": 3,
                                    "price": {"amount": 4, "interval": "month", "billing_method": "prepaid"},
                                }
                            ]
                        },
                        "feature_quantities": [{"feature_id": "seats", "quantity": 5}],
                    }
                ],
            },
        ],
    )
    assert result["status"] == "created" and result["invoice"]["total"] == 20
    assert [p["starts_at"] for p in result["phases"]] == [START, later]
    balances = api.customer("u1")["balances"]
    assert balances["seats"]["granted"] == 5 and "messages" not in balances
    api.clock.set(later + 1)
    customer = api.customer("u1")
    assert {s["plan_id"]: s["status"] for s in customer["subscriptions"]} == {"premium": "active"}
    balances = customer["balances"]
    assert (balances["messages"]["granted"], balances["seats"]["granted"]) == (5000, 5)
    # premium $50 plus 2 prepaid seats beyond the 3 included at $4
    assert [i["total"] for i in customer["invoices"]] == [58, 20]


def test_phase_plan_item_changes_refused_as_on_attach(api: Api) -> None:
    _with_card(api)
    for customize in (
        {"add_items": [{"feature_id": "seats", "included": 1, "pooled": True}]},
        {"billing_controls": {"usage_limits": [{"feature_id": "messages", "limit": 5, "interval": "day"}]}},
    ):
        refused = _schedule(
            api, 400, phases=[{"starts_at": START, "plans": [{"plan_id": "pro", "customize": customize}]}]
        )
        assert refused["code"] == "unsupported_field"
    unknown = _schedule(
        api,
        404,
        phases=[
            {"starts_at": START, "plans": [{"plan_id": "pro"}]},
            {
                "starts_at": ms(2026, 4, 11),
                "plans": [{"plan_id": "premium", "customize": {"add_items": [{"feature_id": "nope"}]}}],
            },
        ],
    )
    assert unknown["code"] == "feature_not_found"
    assert subscriptions_by_plan(api).keys() == {"free"} and api.customer("u1")["invoices"] == []


def test_starting_after_counts_from_the_phase_before(api: Api) -> None:
    _with_card(api)
    june, next_june = ms(2026, 6, 1), ms(2027, 6, 1)
    result = _schedule(
        api,
        phases=[
            {"starts_at": "now", "plans": [{"plan_id": "pro"}]},
            {
                "starting_after": {"duration_type": "month", "duration_count": 2},
                "plans": [{"plan_id": "premium"}],
            },
            {
                "starting_after": {"duration_type": "year", "duration_count": 1},
                "plans": [{"plan_id": "free"}],
            },
        ],
    )
    assert [p["starts_at"] for p in result["phases"]] == [START, june, next_june]
    subs = subscriptions_by_plan(api)
    assert (subs["pro"]["status"], subs["premium"]["status"]) == ("active", "scheduled")
    api.clock.set(june + 1)
    subs = subscriptions_by_plan(api)
    assert subs["premium"]["status"] == "active" and subs["premium"]["started_at"] == june
    assert "pro" not in subs and subs["free"]["status"] == "scheduled"
    assert [i["total"] for i in api.customer("u1")["invoices"]] == [50, 20, 20]


def test_starting_after_bad_input(api: Api) -> None:
    _with_card(api)
    later = {"plans": [{"plan_id": "premium"}]}
    first = _schedule(
        api,
        400,
        phases=[
            {"starting_after": {"duration_type": "month", "duration_count": 1}, "plans": [{"plan_id": "pro"}]}
        ],
    )
    assert first["message"] == "starting_after cannot be used on the first phase"
    neither = _schedule(api, 400, phases=[{"starts_at": START, "plans": [{"plan_id": "pro"}]}, later])
    assert neither["message"] == "Each phase must include exactly one of starts_at or starting_after"
    for after in (
        {"duration_type": "month", "duration_count": 0},
        {"duration_type": "week", "duration_count": 1},
    ):
        bad = _schedule(
            api,
            400,
            phases=[{"starts_at": START, "plans": [{"plan_id": "pro"}]}, {"starting_after": after, **later}],
        )
        assert bad["code"] in {"invalid_request", "invalid_inputs"}
    assert subscriptions_by_plan(api).keys() == {"free"}


def test_phase_start_anchor_starts_a_new_cycle(api: Api) -> None:
    _with_card(api)
    later = ms(2026, 4, 11)
    result = _schedule(
        api,
        phases=[
            {"starts_at": START, "plans": [{"plan_id": "premium"}]},
            {"starts_at": later, "billing_cycle_anchor": "phase_start", "plans": [{"plan_id": "pro"}]},
        ],
    )
    assert [p["starts_at"] for p in result["phases"]] == [START, later]
    api.clock.set(later + 1)
    pro = subscriptions_by_plan(api)["pro"]
    assert (pro["current_period_start"], pro["current_period_end"]) == (later, ms(2026, 5, 11))
    assert [i["total"] for i in api.customer("u1")["invoices"]] == [20, 50]
    bad = _schedule(
        api,
        400,
        phases=[
            {"starts_at": later + 1, "plans": [{"plan_id": "premium"}]},
            {"starts_at": later + DAY, "billing_cycle_anchor": "now", "plans": [{"plan_id": "pro"}]},
        ],
    )
    assert bad["code"] in {"invalid_request", "invalid_inputs"}


def test_phase_plans_inherit_or_declare_their_entity(api: Api) -> None:
    _boost(api)
    _with_card(api)
    for entity_id in ("e1", "e2"):
        api("entities.create", customer_id="u1", entity_id=entity_id, feature_id="seats", name=entity_id)
    later = ms(2026, 4, 11)
    result = _schedule(
        api,
        phases=[
            {"starts_at": START, "plans": [{"plan_id": "pro", "entity_id": "e1"}]},
            {
                "starts_at": later,
                "plans": [{"plan_id": "premium"}, {"plan_id": "boost", "entity_id": None}],
            },
        ],
    )
    assert result["entity_id"] is None and result["invoice"]["total"] == 20
    entity = api("entities.get", customer_id="u1", entity_id="e1")
    assert {s["plan_id"]: s["status"] for s in entity["subscriptions"]} == {
        "pro": "active",
        "premium": "scheduled",
    }
    api.clock.set(later + 1)
    entity = api("entities.get", customer_id="u1", entity_id="e1")
    assert {s["plan_id"]: s["status"] for s in entity["subscriptions"]} == {"premium": "active"}
    customer_level = {
        s["plan_id"]: s["status"] for s in subscriptions_by_plan(api).values() if s.get("entity_id") is None
    }
    assert customer_level == {"free": "active", "boost": "active"}


def test_first_phase_plans_in_several_scopes(api: Api) -> None:
    """Later plans take the scope of the first-phase plan they succeed: the same plan, else its group."""
    _boost(api)
    _with_card(api)
    for entity_id in ("e1", "e2"):
        api("entities.create", customer_id="u1", entity_id=entity_id, feature_id="seats", name=entity_id)
    later = ms(2026, 4, 11)
    result = _schedule(
        api,
        phases=[
            {
                "starts_at": START,
                "plans": [{"plan_id": "pro", "entity_id": "e1"}, {"plan_id": "premium", "entity_id": "e2"}],
            },
            {"starts_at": later, "plans": [{"plan_id": "premium"}, {"plan_id": "free"}]},
        ],
    )
    assert result["invoice"]["total"] == 70
    assert [len(p["customer_product_ids"]) for p in result["phases"]] == [2, 2]

    def of(entity_id: str) -> list[tuple[str, str]]:
        entity = api("entities.get", customer_id="u1", entity_id=entity_id)
        return sorted((s["plan_id"], s["status"]) for s in entity["subscriptions"])

    assert of("e1") == [("free", "scheduled"), ("pro", "active")]
    assert of("e2") == [("premium", "active"), ("premium", "scheduled")]
    api.clock.set(later + 1)
    assert (of("e1"), of("e2")) == ([("free", "active")], [("premium", "active")])
    e2 = api("entities.get", customer_id="u1", entity_id="e2")["subscriptions"][0]
    assert e2["started_at"] == later


def test_phase_plan_entity_bad_input(api: Api) -> None:
    _with_card(api)
    for entity_id in ("e1", "e2"):
        api("entities.create", customer_id="u1", entity_id=entity_id, feature_id="seats", name=entity_id)
    later = ms(2026, 4, 11)
    elsewhere = _schedule(
        api,
        400,
        entity_id="e1",
        phases=[
            {"starts_at": START, "plans": [{"plan_id": "pro"}]},
            {"starts_at": later, "plans": [{"plan_id": "premium", "entity_id": "e2"}]},
        ],
    )
    assert elsewhere["message"] == (
        "Entity 'e2' is not scoped by the first phase, so a later phase cannot schedule a plan in it."
    )
    clash = _schedule(
        api,
        400,
        entity_id="e1",
        phases=[
            {"starts_at": START, "plans": [{"plan_id": "pro"}]},
            {"starts_at": later, "plans": [{"plan_id": "premium"}, {"plan_id": "free", "entity_id": "e1"}]},
        ],
    )
    assert clash["message"] == (
        'Create schedule supports at most one plan per group and scope, but plans "premium", "free" conflict.'
    )
    missing = _schedule(
        api, 404, phases=[{"starts_at": START, "plans": [{"plan_id": "pro", "entity_id": "nope"}]}]
    )
    assert missing["code"] == "entity_not_found"
    assert subscriptions_by_plan(api).keys() == {"free"} and api.customer("u1")["invoices"] == []


def test_free_trial_applies_to_the_first_phase(api: Api) -> None:
    _with_card(api)
    later = ms(2026, 5, 1)
    result = _schedule(
        api,
        free_trial={"duration_length": 7, "duration_type": "day"},
        phases=[
            {"starts_at": START, "plans": [{"plan_id": "pro"}]},
            {"starts_at": later, "plans": [{"plan_id": "premium"}]},
        ],
    )
    assert result["status"] == "created" and result.get("invoice", {"total": 0})["total"] == 0
    pro = subscriptions_by_plan(api)["pro"]
    assert pro["trial_ends_at"] == START + 7 * DAY
    assert [i["total"] for i in api.customer("u1")["invoices"] if i["total"]] == []
    api.clock.set(START + 7 * DAY + 1)
    assert [i["total"] for i in api.customer("u1")["invoices"] if i["total"]] == [20]
    api.clock.set(later + 1)
    subs = subscriptions_by_plan(api)
    assert subs["premium"]["status"] == "active" and subs["premium"]["trial_ends_at"] is None
    assert [i["total"] for i in api.customer("u1")["invoices"] if i["total"]] == [50, 20]


def test_free_trial_bad_input(api: Api) -> None:
    _with_card(api)
    phases = [{"starts_at": START, "plans": [{"plan_id": "pro"}]}]
    revert = _schedule(api, 400, free_trial={"duration_length": 7, "on_end": "revert"}, phases=phases)
    assert revert["message"] == "free_trial.on_end 'revert' is not allowed in a schedule"
    _boost(api)
    on_unscheduled = _schedule(
        api,
        400,
        unscheduled_plans=[
            {"plan_id": "boost", "customize": {"free_trial": {"duration_length": 1, "on_end": "revert"}}}
        ],
        phases=phases,
    )
    assert on_unscheduled["message"] == revert["message"]
    week = _schedule(api, 400, free_trial={"duration_length": 7, "duration_type": "week"}, phases=phases)
    assert week["code"] in {"invalid_request", "invalid_inputs"}
    assert subscriptions_by_plan(api).keys() == {"free"}


def test_preserve_add_ons_is_accepted_and_add_ons_stay(api: Api) -> None:
    _boost(api)
    _with_card(api)
    api("billing.attach", customer_id="u1", plan_id="boost")
    later = ms(2026, 4, 11)
    _schedule(
        api,
        preserve_add_ons=False,
        phases=[
            {"starts_at": START, "plans": [{"plan_id": "pro"}]},
            {"starts_at": later, "plans": [{"plan_id": "premium"}]},
        ],
    )
    api.clock.set(later + 1)
    assert api.plans_of("u1") == {"premium": "active", "boost": "active"}
    bad = _schedule(
        api, 400, preserve_add_ons={"yes": 1}, phases=[{"starts_at": "now", "plans": [{"plan_id": "pro"}]}]
    )
    assert bad["code"] in {"invalid_request", "invalid_inputs"}


def test_unscheduled_plans_are_billed_now_and_outlive_the_schedule(api: Api) -> None:
    _boost(api)
    _with_card(api)
    later = ms(2026, 4, 11)
    result = _schedule(
        api,
        unscheduled_plans=[{"plan_id": "boost"}],
        phases=[
            {"starts_at": START, "plans": [{"plan_id": "pro"}]},
            {"starts_at": later, "plans": [{"plan_id": "premium"}]},
        ],
    )
    assert result["invoice"]["total"] == 25
    assert [len(p["customer_product_ids"]) for p in result["phases"]] == [1, 1]
    assert result["phases"][0]["customer_product_ids"] == [subscriptions_by_plan(api)["pro"]["id"]]
    assert api.plans_of("u1") == {"pro": "active", "boost": "active", "premium": "scheduled"}
    api.clock.set(later + 1)
    assert api.plans_of("u1") == {"premium": "active", "boost": "active"}
    assert api.customer("u1")["balances"]["messages"]["granted"] == 5300


def test_unscheduled_plans_through_checkout(api: Api) -> None:
    """Without a card the first phase goes through checkout; paying it creates the schedule, with the
    unscheduled plan attached and left out of the phases."""
    _boost(api)
    api("customers.get_or_create", customer_id="u1")
    pending = _schedule(
        api,
        unscheduled_plans=[{"plan_id": "boost"}],
        phases=[
            {"starts_at": START, "plans": [{"plan_id": "pro"}]},
            {
                "starting_after": {"duration_type": "month", "duration_count": 1},
                "plans": [{"plan_id": "premium"}],
            },
        ],
    )
    assert pending["status"] == "pending_payment" and pending["phases"] == []
    assert api.plans_of("u1") == {"free": "active"}
    assert api.pay(pending["payment_url"]).status_code == 303
    assert api.plans_of("u1") == {"pro": "active", "boost": "active", "premium": "scheduled"}
    api.clock.set(ms(2026, 5, 1) + 1)
    assert api.plans_of("u1") == {"premium": "active", "boost": "active"}
    assert subscriptions_by_plan(api)["premium"]["started_at"] == ms(2026, 5, 1)
    # paid at checkout: pro and boost; on May 1: premium's first month and boost's renewal
    assert sorted(i["total"] for i in api.customer("u1")["invoices"]) == [5, 25, 50]


def test_unscheduled_plans_bad_input(api: Api) -> None:
    _boost(api)
    _with_card(api)
    api("entities.create", customer_id="u1", entity_id="e1", feature_id="seats", name="e1")
    later = ms(2026, 4, 11)

    def refused(expect: int, unscheduled: list[dict[str, Any]], first: str = "boost") -> dict[str, Any]:
        return _schedule(
            api,
            expect,
            unscheduled_plans=unscheduled,
            phases=[
                {"starts_at": START, "plans": [{"plan_id": first}]},
                {"starts_at": later, "plans": [{"plan_id": "premium"}]},
            ],
        )

    claimed = refused(400, [{"plan_id": "pro"}])
    assert claimed["message"] == (
        'Plan "pro" is in unscheduled_plans, but a later phase schedules its group and scope. '
        "Move it into the phases or drop it from the phase that claims it."
    )
    twice = refused(400, [{"plan_id": "boost"}])
    assert twice["code"] == "invalid_request"
    assert refused(404, [{"plan_id": "nope"}])["code"] == "product_not_found"
    pooled = [{"plan_id": "boost", "customize": {"add_items": [{"feature_id": "seats", "pooled": True}]}}]
    assert refused(400, pooled, first="pro")["code"] == "unsupported_field"
    assert subscriptions_by_plan(api).keys() == {"free"} and api.customer("u1")["invoices"] == []
    # The same group in another scope is not claimed: pro on e1 outlives the customer's premium phase.
    refused(200, [{"plan_id": "pro", "entity_id": "e1"}])
    api.clock.set(later + 1)
    entity = api("entities.get", customer_id="u1", entity_id="e1")
    assert [(s["plan_id"], s["status"]) for s in entity["subscriptions"]] == [("pro", "active")]


def test_billing_behavior_none_does_not_prorate_the_first_phase(api: Api) -> None:
    _with_card(api)
    api("billing.attach", customer_id="u1", plan_id="pro")
    api.clock.set(START + 15 * DAY)  # half of April
    later = ms(2026, 6, 1)
    phases = [
        {"starts_at": "now", "plans": [{"plan_id": "premium"}]},
        {"starts_at": later, "plans": [{"plan_id": "pro"}]},
    ]
    bad = _schedule(api, 400, billing_behavior="sometimes", phases=phases)
    assert bad["code"] in {"invalid_request", "invalid_inputs"}
    result = _schedule(api, billing_behavior="none", phases=phases)
    assert result["status"] == "created" and result.get("invoice", {"total": 0})["total"] == 0
    assert [i["total"] for i in api.customer("u1")["invoices"] if i["total"]] == [20]
    premium = subscriptions_by_plan(api)["premium"]
    assert (premium["status"], premium["current_period_end"]) == ("active", ms(2026, 5, 1))
    assert subscriptions_by_plan(api)["pro"]["status"] == "scheduled"


def test_anchor_now_starts_the_first_phase_now_or_is_refused(api: Api) -> None:
    """``billing_cycle_anchor: "now"`` (the official SDK always sends it): a plan attached now, here
    replacing the free plan, starts its cycle now; replacing a paid plan (an upgrade, which keeps the
    running anchor here) is refused with nothing written."""
    _with_card(api)
    phases = [{"starts_at": START, "plans": [{"plan_id": "pro"}]}]
    result = _schedule(api, phases=phases, billing_cycle_anchor="now")
    assert [p["starts_at"] for p in result["phases"]] == [START]
    pro = subscriptions_by_plan(api)["pro"]
    assert pro["current_period_start"] == START
    upgrade = [{"starts_at": START, "plans": [{"plan_id": "premium"}]}]
    refused = _schedule(api, 400, phases=upgrade, billing_cycle_anchor="now")
    assert refused["code"] == "unsupported_field" and "billing_cycle_anchor" in refused["message"]
    assert subscriptions_by_plan(api).keys() == {"pro"}
