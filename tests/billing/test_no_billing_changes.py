"""``no_billing_changes`` on billing.attach, billing.update, their previews and billing.create_schedule:
the change is made in the server's records (plans, balances) with nothing billed for it: no invoice, no
charge, no credit or refund, no checkout, and the customer's Stripe subscriptions left as they were.
Prorations already waiting for the next invoice of a plan the change ends are never left behind: an
upgrade hands them to the next invoice of the plan replacing it, an immediate cancel drops them.
Through the real server over HTTP, local processor and Stripe (localstripe, whose books the fixture checks
at the end), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from reference_server.store.invoices import PENDING_REASON
from reference_server.store.tables.billing import invoices as invoice_rows
from reference_server.store.tables.core import customers

from .helpers import DAY, MAY, Api, create_prepaid_team_plan, invoices_of, on_pro, with_card

SKIP = {"no_billing_changes": True}


def _granted(api: Api, customer_id: str = "u1") -> float:
    return float(api.customer(customer_id)["balances"]["messages"]["granted"])


def _stripe_state(api: Api, customer_id: str = "u1") -> list[tuple[str, str, bool, dict[str, int]]]:
    """The customer's Stripe subscriptions as (id, status, cancel_at_period_end, {price: quantity}); empty
    for the local processor (nothing on Stripe)."""
    if api.stripe is None:
        return []
    with api.server.app.state.autumn.db.read() as conn:
        stripe_id = conn.execute(select(customers.c.stripe_id).where(customers.c.id == customer_id)).scalar()
    if stripe_id is None:
        return []
    listed = api.stripe.v1.subscriptions.list({"customer": str(stripe_id), "status": "all", "limit": 100})
    return sorted(
        (
            str(sub.id),
            str(sub.status),
            bool(sub.cancel_at_period_end),
            {str(item.price.id): int(item.quantity or 0) for item in sub["items"].data},
        )
        for sub in listed.data
    )


def _pending_drafts(api: Api, customer_id: str) -> int:
    """How many drafts of lines waiting for a plan's next invoice the customer has (not listed by the API)."""
    with api.server.app.state.autumn.db.read() as conn:
        pk = conn.execute(select(customers.c.pk).where(customers.c.id == customer_id)).scalar_one()
        rows = conn.execute(
            select(invoice_rows.c.pk).where(
                invoice_rows.c.customer_pk == pk, invoice_rows.c.reason == PENDING_REASON
            )
        ).all()
    return len(rows)


def _on_team_with_a_pending_proration(api: Api, customer_id: str) -> None:
    """Team with 100 messages ($30), then 200 at mid-April with ``prorate_next_cycle``: the extra pack
    for half of April ($5) waits for the plan's next invoice."""
    create_prepaid_team_plan(
        api, proration={"on_increase": "prorate_next_cycle", "on_decrease": "prorate_next_cycle"}
    )
    with_card(api, customer_id)
    api("billing.attach", customer_id=customer_id, plan_id="team", feature_quantities=_messages(100))
    api.clock.advance(15 * DAY)
    api("billing.update", customer_id=customer_id, plan_id="team", feature_quantities=_messages(200))
    assert [i["total"] for i in invoices_of(api, customer_id)] == [30]
    assert _pending_drafts(api, customer_id) == 1


def _messages(quantity: int) -> list[dict[str, Any]]:
    return [{"feature_id": "messages", "quantity": quantity}]


def test_an_upgrade_without_billing_switches_plans_and_bills_nothing(api: Api) -> None:
    on_pro(api)
    invoices, stripe_before = invoices_of(api), _stripe_state(api)
    assert [i["total"] for i in invoices] == [20]
    if api.stripe is not None:
        assert stripe_before and stripe_before[0][1] == "active"
    api.clock.advance(15 * DAY)

    billed = api("billing.preview_attach", customer_id="u1", plan_id="premium")
    assert billed["total"] == 15  # what the same upgrade would bill: -$10 unused Pro, +$25 Premium
    preview = api("billing.preview_attach", customer_id="u1", plan_id="premium", **SKIP)
    assert (preview["total"], preview["line_items"]) == (0, [])
    assert preview["next_cycle"] == billed["next_cycle"]  # the next renewal bills Premium

    out = api("billing.attach", customer_id="u1", plan_id="premium", **SKIP)
    assert out["payment_url"] is None and "invoice" not in out and "required_action" not in out
    assert api.plans_of("u1") == {"premium": "active"}
    assert _granted(api) == 5000
    assert invoices_of(api) == invoices  # no invoice, no charge, no credit
    assert _stripe_state(api) == stripe_before  # Stripe untouched

    api.clock.set(MAY)  # the next renewal bills the plan the customer has
    renewal = invoices_of(api)[0]
    assert (renewal["total"], renewal["status"]) == (50, "paid"), renewal
    assert api.on_processor(renewal) == ("paid", 5000)


def test_an_upgrade_without_billing_hands_pending_prorations_to_the_next_invoice(api: Api) -> None:
    _on_team_with_a_pending_proration(api, "u8")
    invoices, stripe_before = invoices_of(api, "u8"), _stripe_state(api, "u8")

    billed = api("billing.preview_attach", customer_id="u8", plan_id="premium")
    # -$20 for half of Team ($20 + 2 packs), +$25 for half of Premium, +$5 pending: on the switch's invoice
    assert billed["total"] == 10
    preview = api("billing.preview_attach", customer_id="u8", plan_id="premium", **SKIP)
    assert (preview["total"], preview["line_items"]) == (0, [])
    # Without billing, Premium's first renewal takes the pending $5 beside its own $50.
    assert (billed["next_cycle"]["total"], preview["next_cycle"]["total"]) == (50, 55)
    pending = [line for line in preview["next_cycle"]["line_items"] if line["plan_id"] == "team"]
    assert [line["total"] for line in pending] == [5], preview["next_cycle"]

    api("billing.attach", customer_id="u8", plan_id="premium", **SKIP)
    assert api.plans_of("u8") == {"premium": "active"}
    assert invoices_of(api, "u8") == invoices
    assert _stripe_state(api, "u8") == stripe_before
    assert _pending_drafts(api, "u8") == 1  # still waiting, now for Premium's next invoice

    api.clock.set(MAY)
    renewal = invoices_of(api, "u8")[0]
    assert (renewal["total"], renewal["status"]) == (55, "paid"), renewal
    assert set(renewal["plan_ids"]) == {"premium", "team"}  # the $5 line still names Team
    assert api.on_processor(renewal) == ("paid", 5500)
    assert _pending_drafts(api, "u8") == 0


def test_an_immediate_cancel_without_billing_drops_the_plans_pending_prorations(api: Api) -> None:
    _on_team_with_a_pending_proration(api, "u9")
    invoices, stripe_before = invoices_of(api, "u9"), _stripe_state(api, "u9")

    api("billing.update", customer_id="u9", plan_id="team", cancel_action="cancel_immediately", **SKIP)
    assert api.plans_of("u9") == {"free": "active"}
    assert invoices_of(api, "u9") == invoices
    assert _stripe_state(api, "u9") == stripe_before
    assert _pending_drafts(api, "u9") == 0  # the plan has no invoice to come: nothing is left waiting

    # Team bought again bills only itself, now and at its renewal (not the dropped $5).
    again = api("billing.attach", customer_id="u9", plan_id="team", feature_quantities=_messages(100))
    assert again["invoice"]["total"] == 30
    api.clock.advance(31 * DAY)
    totals = [i["total"] for i in invoices_of(api, "u9")]
    assert totals == [30, 30, 30], totals
    assert _pending_drafts(api, "u9") == 0


def test_a_paid_plan_without_billing_needs_no_card_and_no_checkout(api: Api) -> None:
    api("customers.get_or_create", customer_id="u2")
    preview = api("billing.preview_attach", customer_id="u2", plan_id="pro", **SKIP)
    assert (preview["total"], preview["line_items"]) == (0, [])
    out = api("billing.attach", customer_id="u2", plan_id="pro", **SKIP)
    assert out["payment_url"] is None and "invoice" not in out
    assert api.plans_of("u2") == {"pro": "active"}
    assert _granted(api, "u2") == 1000
    assert invoices_of(api, "u2") == []
    assert _stripe_state(api, "u2") == []


def test_a_downgrade_without_billing_is_still_scheduled_for_the_period_end(api: Api) -> None:
    on_pro(api, "u3")
    api("billing.attach", customer_id="u3", plan_id="premium")
    invoices, stripe_before = invoices_of(api, "u3"), _stripe_state(api, "u3")
    api("billing.attach", customer_id="u3", plan_id="pro", **SKIP)
    assert api.plans_of("u3") == {"premium": "active", "pro": "scheduled"}
    assert invoices_of(api, "u3") == invoices
    assert _stripe_state(api, "u3") == stripe_before


def test_update_quantities_and_cancel_without_billing(api: Api) -> None:
    create_prepaid_team_plan(api)
    with_card(api, "u4")
    quantities = [{"feature_id": "messages", "quantity": 200}]
    api("billing.attach", customer_id="u4", plan_id="team", feature_quantities=quantities)
    invoices, stripe_before = invoices_of(api, "u4"), _stripe_state(api, "u4")
    assert [i["total"] for i in invoices] == [40]
    api.clock.advance(10 * DAY)

    more = [{"feature_id": "messages", "quantity": 500}]
    billed = api("billing.preview_update", customer_id="u4", plan_id="team", feature_quantities=more)
    assert billed["total"] > 0
    preview = api("billing.preview_update", customer_id="u4", plan_id="team", feature_quantities=more, **SKIP)
    assert (preview["total"], preview["line_items"]) == (0, [])
    api("billing.update", customer_id="u4", plan_id="team", feature_quantities=more, **SKIP)
    assert _granted(api, "u4") == 500
    assert invoices_of(api, "u4") == invoices
    assert _stripe_state(api, "u4") == stripe_before

    credit = api(
        "billing.preview_update", customer_id="u4", plan_id="team", cancel_action="cancel_immediately"
    )
    assert credit["total"] < 0  # the same cancel would credit the unused time
    api("billing.update", customer_id="u4", plan_id="team", cancel_action="cancel_immediately", **SKIP)
    assert api.plans_of("u4") == {"free": "active"}
    assert invoices_of(api, "u4") == invoices
    assert _stripe_state(api, "u4") == stripe_before  # not canceled on Stripe either


def test_a_schedule_without_billing_attaches_and_schedules_with_no_invoice(api: Api) -> None:
    api("customers.get_or_create", customer_id="u5")
    now = api.clock.now_ms()
    phases = [
        {"starts_at": now, "plans": [{"plan_id": "pro"}]},
        {"starts_at": MAY, "plans": [{"plan_id": "premium"}]},
    ]
    out = api("billing.create_schedule", customer_id="u5", phases=phases, **SKIP)
    assert (out["status"], out["payment_url"]) == ("created", None) and "invoice" not in out
    assert api.plans_of("u5") == {"pro": "active", "premium": "scheduled"}
    assert _granted(api, "u5") == 1000
    assert invoices_of(api, "u5") == []
    assert _stripe_state(api, "u5") == []


def test_setup_payment_attaches_its_plan_without_billing_once_the_card_is_saved(api: Api) -> None:
    api("customers.get_or_create", customer_id="u7")
    url = api("billing.setup_payment", customer_id="u7", plan_id="pro", **SKIP)["url"]
    assert api.plans_of("u7") == {"free": "active"}
    assert api.pay(url).status_code == 303
    assert api.plans_of("u7") == {"pro": "active"}
    assert _granted(api, "u7") == 1000
    assert invoices_of(api, "u7") == []  # the card is saved, nothing charged
    assert _stripe_state(api, "u7") == []


def test_options_that_ask_for_billing_are_refused_with_it(api: Api) -> None:
    on_pro(api, "u6")
    before = api.customer("u6")
    asks: list[tuple[str, dict[str, Any]]] = [
        ("invoice_mode", {"invoice_mode": {"enabled": True}}),
        ("redirect_mode 'always'", {"redirect_mode": "always"}),
        ("custom_line_items", {"custom_line_items": [{"amount": 5, "description": "Fee"}]}),
    ]
    for op in ("billing.attach", "billing.preview_attach"):
        for named, extra in asks:
            error = api(op, expect=400, customer_id="u6", plan_id="premium", **SKIP, **extra)
            assert error["code"] == "invalid_request", error
            assert error["message"].startswith(f"{named} cannot be combined with no_billing_changes"), error
    refund = {"cancel_action": "cancel_immediately", "refund_last_payment": "full"}
    for op in ("billing.update", "billing.preview_update"):
        error = api(op, expect=400, customer_id="u6", plan_id="pro", **SKIP, **refund)
        assert error["message"].startswith("refund_last_payment cannot be combined"), error
    phases = [{"starts_at": api.clock.now_ms(), "plans": [{"plan_id": "premium"}]}]
    error = api(
        "billing.create_schedule", expect=400, customer_id="u6", phases=phases, redirect_mode="always", **SKIP
    )
    assert error["code"] == "invalid_request", error
    assert api.customer("u6") == before
