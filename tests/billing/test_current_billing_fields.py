"""Billing fields of Autumn's current API (2026-08-22) through the real server over HTTP, on SQLite and
PostgreSQL with the local processor, and on Stripe (localstripe) with SQLite.

Overage billing switched off per customer (``config.disable_overage_billing``) or per feature
(``spend_limits[].skip_overage_billing``): the renewal invoice leaves those overage lines out, usage
and resets behave as before.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from reference_server.processors.compensation import RefundRetrier

from .helpers import START, Api, create_trial_pro, ms, running_api, with_card

RENEWAL = ms(2026, 5, 1) + 1
PROCESSORS = [
    pytest.param(("local", "sqlite"), id="local-sqlite"),
    pytest.param(("local", "postgres"), id="local-postgres", marks=pytest.mark.postgres),
    pytest.param(("stripe", "sqlite"), id="stripe-sqlite"),
]
MONTH = {"interval": "month"}


@pytest.fixture(params=PROCESSORS)
def api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    processor, database = request.param
    with running_api(request, monkeypatch, database, processor) as client:
        for fid in ("messages", "calls"):
            client("features.create", feature_id=fid, name=fid.title(), type="metered", consumable=True)
        client(
            "plans.create",
            plan_id="payg",
            name="Pay as you go",
            price={"amount": 10, "interval": "month"},
            items=[
                {
                    "feature_id": fid,
                    "included": 100,
                    "reset": MONTH,
                    "price": {"amount": 0.5, "interval": "month", "billing_method": "usage_based"},
                }
                for fid in ("messages", "calls")
            ],
        )
        yield client


def _renewal_after_overage(api: Api, **customer: Any) -> dict[str, Any]:
    """u1 on payg uses 200 of each feature (100 over each), then the period renews."""
    api("customers.get_or_create", customer_id="u1", **customer)
    api.add_card("u1")
    api("billing.attach", customer_id="u1", plan_id="payg")
    for fid in ("messages", "calls"):
        api("balances.track", customer_id="u1", feature_id=fid, value=200)
    api.clock.set(RENEWAL)
    return api.customer("u1")


def test_overage_is_billed_by_default(api: Api) -> None:
    customer = _renewal_after_overage(api)
    assert [i["total"] for i in customer["invoices"]] == [110, 10]  # 10 base + 2 x 100 over x 0.5


def test_skip_overage_billing_leaves_that_feature_out(api: Api) -> None:
    controls = {"spend_limits": [{"feature_id": "messages", "skip_overage_billing": True}]}
    customer = _renewal_after_overage(api, billing_controls=controls)
    assert [i["total"] for i in customer["invoices"]] == [60, 10]  # only the calls overage
    assert customer["billing_controls"]["spend_limits"] == [
        {"feature_id": "messages", "skip_overage_billing": True, "source": "customer"}
    ]
    # usage went past the grant and the renewal still reset it
    assert customer["balances"]["messages"]["usage"] == 0
    assert customer["balances"]["calls"]["usage"] == 0


def test_disable_overage_billing_leaves_every_overage_out(api: Api) -> None:
    customer = _renewal_after_overage(api, config={"disable_overage_billing": True})
    assert [i["total"] for i in customer["invoices"]] == [10, 10]
    assert customer["config"]["disable_overage_billing"] is True
    assert customer["balances"]["messages"]["usage"] == 0


def test_disable_overage_billing_can_be_switched_off_again(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1", config={"disable_overage_billing": True})
    api("customers.update", customer_id="u1", config={"disable_overage_billing": False})
    customer = _renewal_after_overage(api)
    assert customer["config"]["disable_overage_billing"] is False
    assert [i["total"] for i in customer["invoices"]] == [110, 10]


def _plans_of(api: Api, customer_id: str) -> dict[str, str]:
    return {s["plan_id"]: s["status"] for s in api.customer(customer_id)["subscriptions"]}


def _removal_catalog(api: Api) -> None:
    for plan_id, add_on in (("perk", True), ("extra", True), ("team", False)):
        api("plans.create", plan_id=plan_id, name=plan_id.title(), add_on=add_on, group="other", items=[])
    api("customers.get_or_create", customer_id="u1")
    for plan_id in ("perk", "extra"):
        api("billing.attach", customer_id="u1", plan_id=plan_id)


def test_remove_plan_ids_expires_free_plans_with_the_attach(api: Api) -> None:
    _removal_catalog(api)
    # a free attach: the free add-on goes in the same request
    api("billing.attach", customer_id="u1", plan_id="team", remove_plan_ids=["perk"])
    assert _plans_of(api, "u1") == {"extra": "active", "team": "active"}
    # a paid attach (payment on file): the named plan ends with it, the preview changed nothing
    api.add_card("u1")
    preview = api("billing.preview_attach", customer_id="u1", plan_id="payg", remove_plan_ids=["extra"])
    assert preview["total"] == 10
    assert _plans_of(api, "u1") == {"extra": "active", "team": "active"}
    api("billing.attach", customer_id="u1", plan_id="payg", remove_plan_ids=["extra"])
    assert _plans_of(api, "u1") == {"payg": "active", "team": "active"}


def test_remove_plan_ids_refusals_change_nothing(api: Api) -> None:
    _removal_catalog(api)
    api.add_card("u1")
    for op in ("billing.attach", "billing.preview_attach"):
        error = api(op, 400, customer_id="u1", plan_id="team", remove_plan_ids=["team"])
        assert error["code"] == "invalid_request"
        assert error["message"] == "Cannot remove plan 'team' in the same attach that adds it"
        error = api(op, 404, customer_id="u1", plan_id="payg", remove_plan_ids=["perk", "nope"])
        assert error["code"] == "product_not_found"
        assert error["message"] == "No active plan 'nope' found on the customer to remove"
    error = api(
        "billing.attach",
        400,
        customer_id="u1",
        plan_id="team",
        remove_plan_ids=["perk", "extra"],
        carry_over_usages={"enabled": True},
    )
    assert error["code"] == "invalid_request"
    api("billing.attach", customer_id="u1", plan_id="payg")
    error = api("billing.attach", 400, customer_id="u1", plan_id="team", remove_plan_ids=["payg"])
    assert error["code"] == "unsupported_field"  # a paid plan: not removed by this server
    assert _plans_of(api, "u1") == {"perk": "active", "extra": "active", "payg": "active"}


def test_setup_payment_removes_the_plans_once_the_plan_is_attached(api: Api) -> None:
    _removal_catalog(api)
    error = api("billing.setup_payment", 404, customer_id="u1", plan_id="payg", remove_plan_ids=["nope"])
    assert error["code"] == "product_not_found"
    error = api("billing.setup_payment", 400, customer_id="u1", remove_plan_ids=["perk"])
    assert error["code"] == "invalid_request"
    url = api("billing.setup_payment", customer_id="u1", plan_id="payg", remove_plan_ids=["perk"])["url"]
    assert _plans_of(api, "u1") == {"perk": "active", "extra": "active"}  # nothing until the card is set up
    assert api.pay(url).status_code == 303
    assert _plans_of(api, "u1") == {"extra": "active", "payg": "active"}


def _credits(api: Api) -> float:
    return float(api.customer("u1")["balances"]["credits"]["remaining"])


def test_purchase_limit_count_sets_the_top_ups_already_bought(api: Api) -> None:
    api("features.create", feature_id="credits", name="Credits", type="metered", consumable=True)
    pack = {"amount": 5, "interval": "one_off", "billing_method": "prepaid", "billing_units": 100}
    api(
        "plans.create",
        plan_id="packs",
        name="Packs",
        price={"amount": 20, "interval": "month"},
        items=[{"feature_id": "credits", "included": 0, "price": pack}],
    )
    topup = {"feature_id": "credits", "enabled": True, "threshold": 20, "quantity": 100}
    too_many = {**topup, "purchase_limit": {"interval": "day", "limit": 2, "count": 3}}
    error = api(
        "customers.get_or_create", 400, customer_id="u1", billing_controls={"auto_topups": [too_many]}
    )
    assert error["code"] == "invalid_request"
    assert (
        error["message"]
        == "purchase_limit.count (3) cannot exceed purchase_limit.limit (2) for feature credits"
    )
    one_used = {**topup, "purchase_limit": {"interval": "day", "limit": 2, "count": 1}}
    created = api("customers.get_or_create", customer_id="u1", billing_controls={"auto_topups": [one_used]})
    # the count is runtime state, not a setting: it is not stored with the controls
    assert created["billing_controls"]["auto_topups"][0]["purchase_limit"] == {"interval": "day", "limit": 2}
    api.add_card("u1")
    api(
        "billing.attach",
        customer_id="u1",
        plan_id="packs",
        feature_quantities=[{"feature_id": "credits", "quantity": 100}],
    )
    api("balances.track", customer_id="u1", feature_id="credits", value=90)  # 1 counted + this one = 2
    assert _credits(api) == 110
    api.clock.advance(60_000)  # past the 30 s between top-ups
    api("balances.track", customer_id="u1", feature_id="credits", value=100)
    assert _credits(api) == 10  # the day's limit of 2 is reached
    reset = {**topup, "purchase_limit": {"interval": "day", "limit": 2, "count": 0}}
    api("customers.update", customer_id="u1", billing_controls={"auto_topups": [reset]})
    api("balances.track", customer_id="u1", feature_id="credits", value=1)
    assert _credits(api) == 109  # counted from zero again


# billing.update's carry_over_usages: a customization replaces the plan's items; Autumn carries every
# consumable feature's usage onto them unless told otherwise (unlike an attach).
CUSTOM_PAYG = {
    "price": {"amount": 10, "interval": "month"},
    "items": [
        {
            "feature_id": fid,
            "included": 300,
            "reset": MONTH,
            "price": {"amount": 0.5, "interval": "month", "billing_method": "usage_based"},
        }
        for fid in ("messages", "calls")
    ],
}


def _usage(api: Api, customer_id: str) -> dict[str, tuple[float, float]]:
    balances = api.customer(customer_id)["balances"]
    return {fid: (balances[fid]["granted"], balances[fid]["usage"]) for fid in ("messages", "calls")}


@pytest.mark.parametrize(
    ("carry", "usage_after", "total"),
    [
        # left out: both usages stay on the customized plan, and no overage is billed at the switch
        (None, {"messages": (300, 150), "calls": (300, 50)}, 0),
        # {enabled: true} is the same
        ({"enabled": True}, {"messages": (300, 150), "calls": (300, 50)}, 0),
        # only calls carries: messages starts over, its 50 over the old 100 billed now at 0.50
        ({"enabled": True, "feature_ids": ["calls"]}, {"messages": (300, 0), "calls": (300, 50)}, 25),
        # none carries
        ({"enabled": False}, {"messages": (300, 0), "calls": (300, 0)}, 25),
    ],
)
def test_update_customize_carries_usage_over_as_asked(
    api: Api, carry: dict[str, Any] | None, usage_after: dict[str, tuple[float, float]], total: float
) -> None:
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="payg")
    api("balances.track", customer_id="u1", feature_id="messages", value=150)
    api("balances.track", customer_id="u1", feature_id="calls", value=50)
    api.clock.advance(15 * 86_400_000)
    body: dict[str, Any] = {"customer_id": "u1", "plan_id": "payg", "customize": CUSTOM_PAYG}
    if carry is not None:
        body["carry_over_usages"] = carry
    preview = api("billing.preview_update", **body)
    assert (preview["intent"], preview["total"]) == ("update_plan", total)
    usage_lines = [line["feature_id"] for line in preview["line_items"] if line["feature_id"]]
    assert usage_lines == ([] if total == 0 else ["messages"])
    assert _usage(api, "u1") == {"messages": (100, 150), "calls": (100, 50)}  # the preview changed nothing
    result = api("billing.update", **body)
    assert result.get("invoice", {"total": 0})["total"] == total
    assert _usage(api, "u1") == usage_after
    # the renewal bills the carried usage at the customized plan's rates: none is over 300
    api.clock.set(RENEWAL)
    assert api.customer("u1")["invoices"][0]["total"] == 10


# billing.update's refund_last_payment: an immediate cancellation refunds the plan's last payment instead
# of crediting its unused time.


def _cancel_payg_halfway(api: Api, customer_id: str) -> dict[str, Any]:
    """``customer_id`` pays $10 for payg, uses 200 messages (100 over: $50 in arrears), and half the
    month later previews an immediate cancellation; returns the plain preview."""
    with_card(api, customer_id)
    api("billing.attach", customer_id=customer_id, plan_id="payg")
    api("balances.track", customer_id=customer_id, feature_id="messages", value=200)
    api.clock.set(START + 15 * 86_400_000)
    plain = api(
        "billing.preview_update", customer_id=customer_id, plan_id="payg", cancel_action="cancel_immediately"
    )
    assert [line["total"] for line in plain["line_items"]] == [50, -5]  # overage, unused half of $10
    return plain


def _paid_invoice(api: Api, customer_id: str) -> dict[str, Any]:
    (first,) = [i for i in api("invoices.list", customer_id=customer_id)["list"] if i["total"] == 10]
    return dict(first)


def _refunded_on_processor(api: Api, invoice: dict[str, Any]) -> int:
    """Cents refunded of the invoice where the money is: Stripe's charge, or the server's own books."""
    if api.stripe is None:
        return int(invoice["refunded_amount"] * 100)
    found: Any = api.stripe.v1.invoices.retrieve(str(invoice["stripe_id"]), {"expand": ["payments"]})
    intent: Any = api.stripe.v1.payment_intents.retrieve(
        found.payments.data[-1].payment.payment_intent, {"expand": ["latest_charge"]}
    )
    return int(intent.latest_charge.amount_refunded)


@pytest.mark.parametrize(
    ("mode", "due", "refund"),
    [
        ("prorated", [50], 5),  # the overage is billed, the unused half refunded instead of credited
        ("full", [], 10),  # the whole payment back, none of the cancellation's lines billed
    ],
)
def test_refund_last_payment_refunds_instead_of_crediting(
    api: Api, mode: str, due: list[float], refund: float
) -> None:
    _cancel_payg_halfway(api, "u1")
    body: dict[str, Any] = {"customer_id": "u1", "plan_id": "payg", "cancel_action": "cancel_immediately"}
    preview = api("billing.preview_update", **body, refund_last_payment=mode)
    paid = _paid_invoice(api, "u1")
    assert [line["total"] for line in preview["line_items"]] == due
    assert preview["total"] == sum(due)
    assert preview["refund"] == {
        "amount": refund,
        "invoice": {"stripe_id": paid["stripe_id"], "total": 10, "refunded_amount": 0, "currency": "usd"},
    }
    assert paid["refunded_amount"] == 0  # the preview refunded nothing
    result = api("billing.update", **body, refund_last_payment=mode)
    assert result.get("invoice", {"total": 0})["total"] == sum(due)
    assert api.plans_of("u1") == {}
    paid = _paid_invoice(api, "u1")
    assert paid["refunded_amount"] == refund
    assert _refunded_on_processor(api, paid) == refund * 100
    # no credit for the unused time: the customer's invoices are the payment and the overage only
    assert sorted(i["total"] for i in api.customer("u1")["invoices"]) == sorted([10, *due])
    api("billing.attach", customer_id="u1", plan_id="payg")  # pays the full $10 again: no credit spent
    assert api.customer("u1")["invoices"][0]["total"] == 10


def test_refund_last_payment_is_refused_outside_an_immediate_cancellation(api: Api) -> None:
    _cancel_payg_halfway(api, "u1")
    base: dict[str, Any] = {"customer_id": "u1", "plan_id": "payg", "refund_last_payment": "full"}
    for op in ("billing.update", "billing.preview_update"):
        for extra in (
            {"cancel_action": "cancel_end_of_cycle"},
            {"cancel_action": "uncancel"},
            {"customize": CUSTOM_PAYG},
            {"cancel_action": "cancel_immediately", "proration_behavior": "prorate_immediately"},
        ):
            error = api(op, 400, **base, **extra)
            assert error["code"] == "invalid_inputs", error
    assert api.plans_of("u1") == {"payg": "active"}
    assert _paid_invoice(api, "u1")["refunded_amount"] == 0


def test_refund_last_payment_with_nothing_to_refund_still_cancels(api: Api) -> None:
    """A plan in its free trial was never paid: the cancellation goes through with neither refund nor
    credit (Autumn finds no payment on the subscription and refunds nothing)."""
    create_trial_pro(api, 14, amount=30)
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="trial_pro")
    assert api.customer("u1")["invoices"] == []
    body: dict[str, Any] = {
        "customer_id": "u1",
        "plan_id": "trial_pro",
        "cancel_action": "cancel_immediately",
    }
    preview = api("billing.preview_update", **body, refund_last_payment="full")
    assert (preview["total"], preview["line_items"], "refund" in preview) == (0, [], False)
    result = api("billing.update", **body, refund_last_payment="full")
    assert "invoice" not in result
    assert api.plans_of("u1") == {}
    assert api.customer("u1")["invoices"] == []


# The local processor's refund is the server's own record, made in the transaction: Stripe only.
@pytest.mark.parametrize("api", [p for p in PROCESSORS if str(p.id).startswith("stripe")], indirect=True)
def test_refund_last_payment_stripe_refuses_is_made_later_once(api: Api) -> None:
    """Stripe refuses the refund once: the cancellation and the server's record of the refund stand, and
    the background retrier makes the refund on Stripe later, once."""
    assert api.stripe is not None
    _cancel_payg_halfway(api, "u1")
    refused = httpx.post(f"{api.stripe_api}/_config/refunds", data={"fail_next": "1"})
    assert refused.status_code == 200, refused.text
    body: dict[str, Any] = {"customer_id": "u1", "plan_id": "payg", "cancel_action": "cancel_immediately"}
    api("billing.update", **body, refund_last_payment="prorated")
    assert api.plans_of("u1") == {}
    paid = _paid_invoice(api, "u1")
    assert (paid["refunded_amount"], _refunded_on_processor(api, paid)) == (5, 0)
    retrier: RefundRetrier = api.server.app.state.billing.refunds
    ((key, state),) = retrier.state().items()
    assert key[2].startswith(f"{paid['stripe_id']} ") and state.last_error is not None
    api.clock.set(state.next_attempt_at)
    deadline = time.monotonic() + 30
    while retrier.state() and time.monotonic() < deadline:
        retrier.run_due()
        time.sleep(0.1)
    assert retrier.state() == {}
    assert _refunded_on_processor(api, paid) == 500
    found: Any = api.stripe.v1.invoices.retrieve(str(paid["stripe_id"]), {"expand": ["payments"]})
    intent = str(found.payments.data[-1].payment.payment_intent)
    made: Any = api.stripe.v1.refunds.list({"payment_intent": intent}).data
    assert [(r.amount, r.metadata["autumn_reason"]) for r in made] == [(500, "refund_last_payment")]


# A Stripe refund on SQLite, where a deferred foreign key makes the COMMIT itself fail.
@pytest.mark.parametrize("api", [p for p in PROCESSORS if p.id == "stripe-sqlite"], indirect=True)
def test_refund_last_payment_whose_transaction_fails_refunds_nothing(api: Api) -> None:
    """The cancellation's transaction fails at COMMIT after the refund was recorded: nothing changed and
    nothing was refunded on Stripe; the same request then goes through."""
    assert api.stripe is not None
    _cancel_payg_halfway(api, "u1")
    engine = api.server.app.state.autumn.db.engine
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE autumn_test_guard (org_pk INTEGER REFERENCES organizations(pk) "
                "DEFERRABLE INITIALLY DEFERRED)"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER autumn_test_fail AFTER INSERT ON charges WHEN NEW.status = 'refunded' "
                "BEGIN INSERT INTO autumn_test_guard VALUES (-1); END"
            )
        )
    body: dict[str, Any] = {"customer_id": "u1", "plan_id": "payg", "cancel_action": "cancel_immediately"}
    failed = api.http.post("/v1/billing.update", json={**body, "refund_last_payment": "full"})
    assert failed.status_code == 500 and set(failed.json()) >= {"message", "code"}
    assert api.plans_of("u1") == {"payg": "active"}
    paid = _paid_invoice(api, "u1")
    assert (paid["refunded_amount"], _refunded_on_processor(api, paid)) == (0, 0)
    assert api.server.app.state.billing.refunds.state() == {}
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER autumn_test_fail"))
    api("billing.update", **body, refund_last_payment="full")
    paid = _paid_invoice(api, "u1")
    assert (paid["refunded_amount"], _refunded_on_processor(api, paid)) == (10, 1000)


def test_attach_upgrade_carrying_usage_does_not_bill_it_twice(api: Api) -> None:
    """An upgrade with ``carry_over_usages`` moves the old usage onto the new plan, which bills it at its
    renewal: the switch's invoice leaves out the carried feature's overage (as Autumn does), and bills
    the overage of a feature that does not carry."""
    api(
        "plans.create",
        plan_id="payg_plus",
        name="Pay as you go, plus",
        price={"amount": 30, "interval": "month"},
        items=[
            {
                "feature_id": fid,
                "included": 100,
                "reset": MONTH,
                "price": {"amount": 0.5, "interval": "month", "billing_method": "usage_based"},
            }
            for fid in ("messages", "calls")
        ],
    )
    billed: dict[str, list[str]] = {}
    totals: dict[str, float] = {}
    for customer_id, carry in (("u1", {"enabled": True, "feature_ids": ["messages"]}), ("u2", None)):
        with_card(api, customer_id)
        api("billing.attach", customer_id=customer_id, plan_id="payg")
        for fid in ("messages", "calls"):
            api("balances.track", customer_id=customer_id, feature_id=fid, value=150)  # 50 over each
        body: dict[str, Any] = {"customer_id": customer_id, "plan_id": "payg_plus"}
        if carry is not None:
            body["carry_over_usages"] = carry
        preview = api("billing.preview_attach", **body)
        result = api("billing.attach", **body)
        assert result["invoice"]["total"] == preview["total"]
        billed[customer_id] = sorted(
            line["feature_id"] for line in preview["line_items"] if line["feature_id"]
        )
        totals[customer_id] = preview["total"]
    assert billed == {"u1": ["calls"], "u2": ["calls", "messages"]}
    assert totals["u2"] - totals["u1"] == 25  # messages' 50 over at 0.50, billed once, by payg_plus later
    carried = api.customer("u1")["balances"]["messages"]
    assert (carried["granted"], carried["usage"]) == (100, 150)  # billed at payg_plus's renewal
