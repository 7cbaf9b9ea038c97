"""A ``billing.multi_attach``'s plans renew together: Autumn makes one Stripe subscription with an item per
plan, so every cycle (and, after the request-wide ``free_trial``, the trial end) is one invoice with a line
per plan. Through the real server over HTTP on SQLite and PostgreSQL, on the local processor and on Stripe
(localstripe, whose books the fixture checks against the server's, and whose invoice holds the lines)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from reference_server.store.tables.billing import invoice_lines, invoices

from .helpers import DAY, DECLINING, GOOD, START, TWO_WEEKS, Api, create_extra, create_pack, with_card

TRIAL_END = START + 14 * DAY
PLANS = [{"plan_id": "pro"}, {"plan_id": "extra"}]


def _lines(api: Api, invoice: dict[str, Any]) -> list[tuple[str, int, int | None, int | None]]:
    """The server's lines of an API invoice: (plan, cents, period start, period end), by plan; on Stripe,
    the Stripe invoice's lines are the same amounts."""
    with api.server.app.state.autumn.db.read() as conn:
        # (the API's ``stripe_id``: the Stripe invoice's id on Stripe, the server's own id on the local one)
        key = invoices.c.processor_id if api.stripe is not None else invoices.c.id
        pk = conn.execute(select(invoices.c.pk).where(key == invoice["stripe_id"])).scalar_one()
        rows = conn.execute(select(invoice_lines).where(invoice_lines.c.invoice_pk == pk)).all()
    found = sorted((str(r.plan_id), int(r.amount), r.period_start, r.period_end) for r in rows)
    if api.stripe is not None:
        on_stripe = api.stripe.v1.invoices.line_items.list(str(invoice["stripe_id"]), {"limit": 100}).data
        assert sorted(line.amount for line in on_stripe) == sorted(line[1] for line in found), on_stripe
    return found


def _renewals(api: Api, customer_id: str = "u1") -> list[dict[str, Any]]:
    """The customer's invoices, oldest first."""
    return list(reversed(api.customer(customer_id)["invoices"]))


def _periods(api: Api, customer_id: str = "u1") -> dict[str, tuple[int, int]]:
    subs = api.customer(customer_id)["subscriptions"]
    return {s["plan_id"]: (s["current_period_start"], s["current_period_end"]) for s in subs}


def _renewed_together(api: Api, count: int, start: int, end: int) -> None:
    """The customer's ``count``-th invoice (oldest first) is Pro and Extra renewed together, from ``start``
    to ``end``: $35, paid, a line per plan, and both plans' periods are that one."""
    invoices_now = _renewals(api)
    assert len(invoices_now) == count, invoices_now
    renewal = invoices_now[count - 1]
    plans = sorted(renewal["plan_ids"])
    assert (renewal["total"], renewal["status"], plans) == (35, "paid", ["extra", "pro"])
    assert api.on_processor(renewal) == ("paid", 3500)
    assert _lines(api, renewal) == [("extra", 1500, start, end), ("pro", 2000, start, end)]
    assert _periods(api) == {"pro": (start, end), "extra": (start, end)}


def test_the_trial_end_and_every_later_renewal_are_one_invoice(api: Api) -> None:
    create_extra(api)
    create_pack(api)
    with_card(api, "u1")
    plans = [*PLANS, {"plan_id": "pack"}]
    attached = api("billing.multi_attach", customer_id="u1", plans=plans, free_trial=TWO_WEEKS)
    assert attached["invoice"]["total"] == 10  # only the one-off Pack now
    api("track", customer_id="u1", feature_id="messages", value=30)
    api.clock.set(TRIAL_END - DAY)
    assert len(_renewals(api)) == 1

    api.clock.set(TRIAL_END)  # the trial ends for both plans: one invoice, a line per plan
    next_end = START + 44 * DAY  # (May 15)
    _renewed_together(api, 2, TRIAL_END, next_end)
    balance = api.customer("u1")["balances"]["messages"]
    assert balance["granted"] == 1250  # Pro 1000 + Extra 200 + the Pack's 50
    assert balance["usage"] == 30

    api.clock.set(next_end)  # one more cycle: again one invoice for both
    later_end = START + 75 * DAY  # (June 15)
    _renewed_together(api, 3, next_end, later_end)
    assert api.customer("u1")["balances"]["messages"]["granted"] == 1250
    assert {s["plan_id"]: s["status"] for s in api.customer("u1")["subscriptions"]} == {
        "pro": "active",
        "extra": "active",
    }


def test_without_a_trial_each_cycle_is_one_invoice(api: Api) -> None:
    create_extra(api)
    with_card(api, "u1")
    attached = api("billing.multi_attach", customer_id="u1", plans=PLANS)
    assert attached["invoice"]["total"] == 35
    may = START + 30 * DAY
    for cycle, (start, end) in enumerate([(may, START + 61 * DAY), (START + 61 * DAY, START + 91 * DAY)]):
        api.clock.set(start)
        invoices_now = _renewals(api)
        assert len(invoices_now) == 2 + cycle, invoices_now
        renewal = invoices_now[-1]
        assert (renewal["total"], renewal["status"]) == (35, "paid")
        assert api.on_processor(renewal) == ("paid", 3500)
        assert _lines(api, renewal) == [("extra", 1500, start, end), ("pro", 2000, start, end)]
    assert api.customer("u1")["balances"]["messages"]["granted"] == 1200


def test_a_plan_canceled_at_the_trial_end_leaves_the_other_renewing_alone(api: Api) -> None:
    create_extra(api)
    with_card(api, "u1")
    api("billing.multi_attach", customer_id="u1", plans=PLANS, free_trial=TWO_WEEKS)
    api("billing.update", customer_id="u1", plan_id="extra", cancel_action="cancel_end_of_cycle")
    api.clock.set(TRIAL_END)
    invoices_now = _renewals(api)
    assert len(invoices_now) == 1, invoices_now
    assert (invoices_now[0]["total"], invoices_now[0]["plan_ids"]) == (20, ["pro"])
    assert _lines(api, invoices_now[0]) == [("pro", 2000, TRIAL_END, START + 44 * DAY)]
    assert api.plans_of("u1") == {"pro": "active"}
    assert api.customer("u1")["balances"]["messages"]["granted"] == 1000


def test_plans_attached_one_by_one_still_renew_on_their_own(api: Api) -> None:
    create_extra(api)
    with_card(api, "u1")
    for plan in PLANS:
        api("billing.attach", customer_id="u1", plan_id=plan["plan_id"])
    api.clock.set(START + 30 * DAY)
    renewals = _renewals(api)[2:]
    assert sorted((i["total"], tuple(i["plan_ids"])) for i in renewals) == [(15, ("extra",)), (20, ("pro",))]


def test_a_declined_trial_end_leaves_both_plans_past_due_until_a_new_card_pays_it(api: Api) -> None:
    create_extra(api)
    with_card(api, "u1")
    api("billing.multi_attach", customer_id="u1", plans=PLANS, free_trial=TWO_WEEKS)
    api.add_card("u1", DECLINING)  # saved; its charges fail
    api.clock.set(TRIAL_END)
    invoices_now = _renewals(api)
    assert [(i["total"], i["status"]) for i in invoices_now] == [(35, "open")], invoices_now
    assert api.on_processor(invoices_now[0]) == ("open", 3500)
    subs = api.customer("u1")["subscriptions"]
    assert {s["plan_id"]: (s["status"], s["past_due"]) for s in subs} == {
        "pro": ("active", True),
        "extra": ("active", True),
    }
    api.add_card("u1", GOOD)  # the one open invoice is paid, and neither plan is past due
    invoices_now = _renewals(api)
    assert [(i["total"], i["status"]) for i in invoices_now] == [(35, "paid")], invoices_now
    assert api.on_processor(invoices_now[0]) == ("paid", 3500)
    subs = api.customer("u1")["subscriptions"]
    assert {s["plan_id"]: s["past_due"] for s in subs} == {"pro": False, "extra": False}
