"""``invoice_mode.finalize: false``: a draft invoice kept for manual review, on both processors and databases.

The draft is owed nothing yet: no hosted URL, its page takes no payment, it makes nothing past due and
previews ignore it.  Finalizing it opens it: on Stripe in the dashboard (the ``invoice.finalized``
event, applied once per event id), anywhere through ``POST /v1/invoices.finalize`` (beyond the spec).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from reference_server.billing.invoice_mode import (
    DEFERRED_DOWNGRADE,
    NO_CARD_TRIAL_OPTIONS,
    UPDATE_NO_CARD_TRIAL,
)
from reference_server.store.org_stripe import save_stripe_config
from reference_server.store.tables.billing import billing_sessions, invoices
from reference_server.store.tables.core import organizations
from reference_server.store.tables.stripe import stripe_events

from .helpers import (
    DAY,
    START,
    Api,
    Tenant,
    create_prepaid_team_plan,
    fail_when_opened,
    repair,
    stripe_invoices_of,
)

# The fixtures (conftest.py): every processor and database (``api``), an organization's own Stripe
# account (``tenant``).

WEBHOOK_SECRET = "whsec_invoice_mode"
STRIPE_ONLY = [
    pytest.param(("stripe", "sqlite"), id="stripe-sqlite"),
    pytest.param(("stripe", "postgres"), id="stripe-postgres", marks=pytest.mark.postgres),
]


def draft_mode(**extra: Any) -> dict[str, Any]:
    return {"enabled": True, "finalize": False, **extra}


def invoices_of(api: Api, customer_id: str = "u1") -> list[tuple[str, int | float, bool]]:
    """The customer's invoices: (status, total, has a page to pay it)."""
    listed = api.customer(customer_id)["invoices"]
    return [(i["status"], i["total"], i["hosted_invoice_url"] is not None) for i in listed]


def draft_page(api: Api, invoice: dict[str, Any]) -> str:
    """The hosted checkout page made for the draft (the invoice gets it as its URL once finalized)."""
    with api.server.app.state.autumn.db.read() as conn:
        pk = conn.execute(
            select(invoices.c.pk).where(
                (invoices.c.id == invoice["stripe_id"]) | (invoices.c.processor_id == invoice["stripe_id"])
            )
        ).scalar_one()
        session_id = conn.execute(
            select(billing_sessions.c.id).where(billing_sessions.c.invoice_pk == pk)
        ).scalar_one()
    return f"{api.server.url}/checkout/{session_id}"


def server_id(api: Api, invoice: dict[str, Any]) -> str:
    with api.server.app.state.autumn.db.read() as conn:
        return str(
            conn.execute(
                select(invoices.c.id).where(
                    (invoices.c.id == invoice["stripe_id"])
                    | (invoices.c.processor_id == invoice["stripe_id"])
                )
            ).scalar_one()
        )


def past_due(api: Api, customer_id: str = "u1") -> list[bool]:
    return [s["past_due"] for s in api.customer(customer_id)["subscriptions"]]


def assert_not_payable(api: Api, invoice: dict[str, Any]) -> None:
    """The draft's checkout page and its invoice page say it is not finalized and take no payment."""
    page = draft_page(api, invoice)
    shown = httpx.get(page)
    assert shown.status_code == 409 and "not finalized yet" in shown.text, shown.text
    assert 'type="submit"' not in shown.text
    paid = httpx.post(page, data={"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"})
    assert paid.status_code == 409, paid.text
    assert httpx.post(page + "/stripe").status_code == 409  # no Stripe Checkout for it either
    own = httpx.get(f"{api.server.url}/invoices/{server_id(api, invoice)}")
    assert own.status_code == 200 and "not finalized yet" in own.text
    assert 'id="invoice-pay-link"' not in own.text


def webhook_secret(api: Api) -> None:
    """Stripe only: the default organization's Stripe webhook secret (its key stays the server's)."""
    db = api.server.app.state.autumn.db
    with db.write() as conn:
        org_pk = conn.execute(
            select(organizations.c.pk).where(organizations.c.id == "org_default")
        ).scalar_one()
        save_stripe_config(
            conn, int(org_pk), "sandbox", {"webhook_secret": WEBHOOK_SECRET}, api.clock.now_ms()
        )


def listen(api: Api) -> None:
    """Stripe only: localstripe sends the server its invoice events, as Stripe does."""
    assert api.stripe_api is not None
    webhook_secret(api)
    hook = {
        "url": f"{api.server.url}/webhooks/stripe/org_default/sandbox",
        "secret": WEBHOOK_SECRET,
        "events": ["invoice.finalized", "invoice.paid", "invoice.voided"],
    }
    name = "im" + secrets.token_hex(4)
    assert httpx.post(f"{api.stripe_api}/_config/webhooks/{name}", json=hook).status_code == 200


def send(api: Api, event: dict[str, Any]) -> dict[str, Any]:
    """Post an event signed the way Stripe signs (HMAC-SHA256 of ``{t}.{payload}``)."""
    payload = json.dumps(event)
    stamp = int(time.time())
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{stamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    response = httpx.post(
        f"{api.server.url}/webhooks/stripe/org_default/sandbox",
        content=payload,
        headers={"Stripe-Signature": f"t={stamp},v1={mac}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def event_of(api: Api, kind: str, stripe_id: str) -> dict[str, Any]:
    assert api.stripe is not None
    found = api.stripe.v1.invoices.retrieve(stripe_id)
    return {
        "id": "evt_" + secrets.token_hex(8),
        "object": "event",
        "type": kind,
        "data": {"object": json.loads(str(found))},
    }


def wait_for(api: Api, condition: Any, what: str) -> None:
    """localstripe posts its events about a second after the change: wait (timing nothing) until applied."""
    pause = __import__("threading").Event()
    for _ in range(600):
        if condition():
            return
        pause.wait(0.05)
    raise AssertionError(f"never happened: {what}")


def finalize_on_stripe(api: Api, invoice: dict[str, Any]) -> None:
    """What a Stripe user does on the dashboard: finalize the draft (its event reaches the server)."""
    assert api.stripe is not None
    api.stripe.v1.invoices.finalize_invoice(invoice["stripe_id"])
    wait_for(api, lambda: invoices_of(api)[0][0] == "open", "invoice.finalized applied")


def test_a_draft_waits_for_review_and_its_plan_for_the_payment(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    before = api("billing.preview_attach", customer_id="u1", plan_id="pro")
    if api.stripe is not None:
        listen(api)
    result = api("billing.attach", customer_id="u1", plan_id="pro", invoice_mode=draft_mode())
    assert result["payment_url"] is None
    invoice = result["invoice"]
    assert (invoice["status"], invoice["total"], invoice["hosted_invoice_url"]) == ("draft", 20, None)
    assert api.on_processor(invoice) == ("draft", 2000)
    if api.stripe is not None:  # a draft send_invoice invoice, itemized, not finalized
        on_stripe = api.stripe.v1.invoices.retrieve(invoice["stripe_id"])
        assert (on_stripe.collection_method, on_stripe.status, on_stripe.total) == (
            "send_invoice",
            "draft",
            2000,
        )
    assert api.plans_of("u1") == {"free": "active"}  # the plan waits for the payment
    assert invoices_of(api) == [("draft", 20, False)]
    assert past_due(api) == [False]
    assert_not_payable(api, invoice)
    assert api("billing.preview_attach", customer_id="u1", plan_id="pro") == before  # previews ignore it

    # Days of review, then the invoice is finalized: its page is payable from then on.
    api.clock.advance(3 * DAY)
    if api.stripe is not None:
        finalize_on_stripe(api, invoice)
    else:
        done = api("invoices.finalize", invoice_id=invoice["stripe_id"])
        assert (done["customer_id"], done["invoice"]["status"]) == ("u1", "open")
        assert done["invoice"]["hosted_invoice_url"] is not None
    assert invoices_of(api) == [("open", 20, True)]
    assert api.on_processor(invoice) == ("open", 2000)
    opened = api.customer("u1")["invoices"][0]
    assert opened["stripe_id"] == invoice["stripe_id"]
    page = httpx.get(f"{api.server.url}/invoices/{server_id(api, invoice)}")
    assert 'id="invoice-pay-link"' in page.text and "not finalized" not in page.text
    assert api.pay(opened["hosted_invoice_url"]).status_code == 303
    assert api.plans_of("u1") == {"pro": "active"}
    assert invoices_of(api) == [("paid", 20, True)]
    assert api.on_processor(invoice) == ("paid", 2000)


def test_a_draft_with_enable_plan_immediately_starts_the_plan_now(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    mode = draft_mode(enable_plan_immediately=True)
    result = api("billing.attach", customer_id="u1", plan_id="pro", invoice_mode=mode)
    invoice = result["invoice"]
    assert (invoice["status"], invoice["total"], invoice["hosted_invoice_url"]) == ("draft", 20, None)
    assert api.plans_of("u1") == {"pro": "active"}
    assert past_due(api) == [False]  # a draft is owed nothing yet
    assert_not_payable(api, invoice)
    balance = api.customer("u1")["balances"]["messages"]
    assert balance["granted"] == 1000

    # Through the API (both processors; on Stripe the Stripe invoice is finalized too).
    done = api("invoices.finalize", invoice_id=invoice["stripe_id"])
    assert (done["invoice"]["status"], done["invoice"]["total"]) == ("open", 20)
    assert api.on_processor(invoice) == ("open", 2000)
    again = api("invoices.finalize", invoice_id=invoice["stripe_id"])  # open: returned unchanged
    assert again == done
    assert api.on_processor(invoice) == ("open", 2000)
    assert api("invoices.finalize", 404, invoice_id="in_nope")["code"] == "invoice_not_found"
    assert api("invoices.finalize", 400)["code"] == "invalid_inputs"
    assert api.pay(done["invoice"]["hosted_invoice_url"]).status_code == 303
    assert api.plans_of("u1") == {"pro": "active"}  # started once, not again
    assert api.customer("u1")["balances"]["messages"]["granted"] == 1000
    assert invoices_of(api) == [("paid", 20, True)]


def test_an_open_invoice_mode_invoice_is_unchanged_by_finalize(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    result = api(
        "billing.attach", customer_id="u1", plan_id="pro", invoice_mode={"enabled": True, "finalize": True}
    )
    invoice = result["invoice"]
    assert invoice["status"] == "open" and invoice["hosted_invoice_url"] is not None
    unchanged = api("invoices.finalize", invoice_id=invoice["stripe_id"])
    assert (unchanged["customer_id"], unchanged["invoice"]["status"]) == ("u1", "open")
    assert api.pay(invoice["hosted_invoice_url"]).status_code == 303
    assert api.plans_of("u1") == {"pro": "active"}
    paid = api("invoices.finalize", invoice_id=invoice["stripe_id"])  # paid: returned unchanged too
    assert paid["invoice"]["status"] == "paid" and paid["invoice"]["total"] == unchanged["invoice"]["total"]


def pay_on_stripe(api: Api, stripe_id: str, customer_id: str = "u1") -> int:
    """What the customer does on Stripe's own page of an open invoice: pay it with a new card (the
    server hears of it only through the ``invoice.paid`` event); the amount paid, in cents."""
    assert api.stripe is not None
    card = api.stripe.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    stripe_customer = api.customer(customer_id)["processors"]["stripe"]["id"]
    api.stripe.v1.payment_methods.attach(card.id, {"customer": stripe_customer})
    paid = api.stripe.v1.invoices.pay(stripe_id, {"payment_method": card.id})
    assert paid.status == "paid"
    return int(paid.amount_paid)


@pytest.mark.parametrize("api", STRIPE_ONLY, indirect=True)
def test_a_draft_paid_on_stripe_starts_its_plan_once_whatever_order_its_events_come_in(api: Api) -> None:
    assert api.stripe is not None
    webhook_secret(api)  # the events below are sent by the test, in the order it chooses
    api("customers.get_or_create", customer_id="u1")
    invoice = api("billing.attach", customer_id="u1", plan_id="pro", invoice_mode=draft_mode())["invoice"]
    stripe_id = invoice["stripe_id"]

    # A payment failure of a draft makes nothing past due.
    assert send(api, event_of(api, "invoice.payment_failed", stripe_id))["result"] == "invoice_draft"
    assert past_due(api) == [False]

    # Finalized and paid on Stripe (the customer pays Stripe's own invoice page with a card).
    api.stripe.v1.invoices.finalize_invoice(stripe_id)
    assert pay_on_stripe(api, stripe_id) == 2000

    # invoice.paid arrives first: the draft is finalized and paid at once, the plan starts.
    paid_event = event_of(api, "invoice.paid", stripe_id)
    assert send(api, paid_event)["result"] == "invoice_paid"
    assert api.plans_of("u1") == {"pro": "active"}
    assert invoices_of(api) == [("paid", 20, True)]
    assert send(api, paid_event) == {"received": True, "duplicate": True}  # once per event id
    finalized = event_of(api, "invoice.finalized", stripe_id)
    assert send(api, finalized)["result"] == "invoice_paid"  # late: changes nothing
    assert send(api, {**paid_event, "id": paid_event["id"] + "_b"})["result"] == "invoice_paid"
    assert api.plans_of("u1") == {"pro": "active"}
    assert api.customer("u1")["balances"]["messages"]["granted"] == 1000  # granted once
    with api.server.app.state.autumn.db.read() as conn:
        kinds = list(conn.execute(select(stripe_events.c.event_type).order_by(stripe_events.c.pk)).scalars())
    assert kinds.count("invoice.paid") >= 2 and "invoice.finalized" in kinds


@pytest.mark.parametrize("api", STRIPE_ONLY, indirect=True)
def test_a_draft_voided_on_stripe_voids_the_invoice_and_its_plan_never_starts(api: Api) -> None:
    assert api.stripe is not None
    listen(api)
    api("customers.get_or_create", customer_id="u1")
    invoice = api("billing.attach", customer_id="u1", plan_id="pro", invoice_mode=draft_mode())["invoice"]
    page = draft_page(api, invoice)
    finalize_on_stripe(api, invoice)
    api.stripe.v1.invoices.void_invoice(invoice["stripe_id"])
    wait_for(api, lambda: invoices_of(api)[0][0] == "void", "invoice.voided applied")
    assert invoices_of(api) == [("void", 20, False)]
    assert httpx.get(page).status_code == 410  # its page is closed
    assert api.plans_of("u1") == {"free": "active"}


def test_a_draft_deleted_on_stripe_voids_the_server_invoice(tenant: Tenant) -> None:
    """(An organization's own Stripe account: Stripe's books keep no deleted draft to check against.)"""
    tenant("customers.get_or_create", customer_id="u1", email="u1@example.com")
    mode = {"enabled": True, "finalize": False}
    invoice = tenant("billing.attach", customer_id="u1", plan_id="pro", invoice_mode=mode)["invoice"]
    assert invoice["status"] == "draft"
    found = tenant.stripe.v1.invoices.retrieve(invoice["stripe_id"])
    deleted = {
        "id": "evt_" + secrets.token_hex(8),
        "type": "invoice.deleted",
        "data": {"object": json.loads(str(found))},
    }
    tenant.stripe.v1.invoices.delete(invoice["stripe_id"])
    assert tenant.send(deleted)["result"] == "invoice_voided"
    assert tenant.send(deleted) == {"received": True, "duplicate": True}
    customer = tenant.customer()
    assert [(i["status"], i["total"], i["hosted_invoice_url"]) for i in customer["invoices"]] == [
        ("void", 20, None)
    ]
    assert customer["subscriptions"] == []
    assert tenant("invoices.finalize", 409, invoice_id=invoice["stripe_id"])["code"] == "invoice_not_draft"


# -- invoice mode beyond billing.attach: multi-attach, schedules, updates ------------------------------


def _add_ons(api: Api) -> None:
    """``extra`` ($20/month add-on, 200 messages) and ``pack`` ($10 one-off add-on, 50 messages)."""
    month = {"interval": "month"}
    for plan_id, amount, interval, included, reset in (
        ("extra", 20, "month", 200, month),
        ("pack", 10, "one_off", 50, None),
    ):
        item: dict[str, Any] = {"feature_id": "messages", "included": included}
        if reset is not None:
            item["reset"] = reset
        price = {"amount": amount, "interval": interval}
        api("plans.create", plan_id=plan_id, name=plan_id.title(), add_on=True, price=price, items=[item])


def test_multi_attach_by_invoice_bills_once_and_starts_the_plans_when_paid(api: Api) -> None:
    _add_ons(api)
    api("customers.get_or_create", customer_id="u1")  # no card: invoice mode needs none
    plans = [{"plan_id": "extra"}, {"plan_id": "pack"}]
    mode = {"enabled": True}
    preview = api("billing.preview_multi_attach", customer_id="u1", plans=plans, invoice_mode=mode)
    assert (preview["total"], preview["redirect_to_checkout"]) == (30, False)
    result = api("billing.multi_attach", customer_id="u1", plans=plans, invoice_mode=mode)
    assert result["payment_url"] is None
    invoice = result["invoice"]
    assert (invoice["status"], invoice["total"]) == ("open", 30)
    assert invoice["hosted_invoice_url"] is not None
    assert api.on_processor(invoice) == ("open", 3000)
    if api.stripe is not None:
        on_stripe = api.stripe.v1.invoices.retrieve(invoice["stripe_id"])
        assert (on_stripe.collection_method, on_stripe.status, on_stripe.total) == (
            "send_invoice",
            "open",
            3000,
        )
    assert api.plans_of("u1") == {"free": "active"}  # waiting for the payment
    assert invoices_of(api) == [("open", 30, True)]
    assert api.pay(invoice["hosted_invoice_url"]).status_code == 303
    customer = api.customer("u1")
    assert {s["plan_id"] for s in customer["subscriptions"]} == {"free", "extra"}
    assert [p["plan_id"] for p in customer["purchases"]] == ["pack"]
    assert customer["balances"]["messages"]["granted"] == 350
    assert invoices_of(api) == [("paid", 30, True)]
    assert api.on_processor(invoice) == ("paid", 3000)


def test_multi_attach_draft_with_enable_plan_immediately_starts_the_plans_once(api: Api) -> None:
    _add_ons(api)
    api("customers.get_or_create", customer_id="u1")
    plans = [{"plan_id": "extra"}, {"plan_id": "pack"}]
    mode = draft_mode(enable_plan_immediately=True)
    invoice = api("billing.multi_attach", customer_id="u1", plans=plans, invoice_mode=mode)["invoice"]
    assert (invoice["status"], invoice["total"], invoice["hosted_invoice_url"]) == ("draft", 30, None)
    assert api.on_processor(invoice) == ("draft", 3000)
    assert api.customer("u1")["balances"]["messages"]["granted"] == 350
    assert past_due(api) == [False, False]
    assert_not_payable(api, invoice)
    done = api("invoices.finalize", invoice_id=invoice["stripe_id"])["invoice"]
    assert (done["status"], done["total"]) == ("open", 30)
    assert api.pay(done["hosted_invoice_url"]).status_code == 303
    assert api.customer("u1")["balances"]["messages"]["granted"] == 350  # started once, not again
    assert invoices_of(api) == [("paid", 30, True)]
    assert api.on_processor(invoice) == ("paid", 3000)


def _premium_then_pro() -> tuple[int, list[dict[str, Any]]]:
    """A schedule: premium now, pro from ten days later (that start, the phases)."""
    later = START + 10 * DAY
    return later, [
        {"starts_at": START, "plans": [{"plan_id": "premium"}]},
        {"starts_at": later, "plans": [{"plan_id": "pro"}]},
    ]


def test_create_schedule_by_invoice_waits_for_the_payment(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    _, phases = _premium_then_pro()
    result = api("billing.create_schedule", customer_id="u1", phases=phases, invoice_mode={"enabled": True})
    assert (result["status"], result["schedule_id"], result["phases"]) == ("pending_payment", None, [])
    assert result["payment_url"] is None
    invoice = result["invoice"]
    assert (invoice["status"], invoice["total"]) == ("open", 50)
    assert api.on_processor(invoice) == ("open", 5000)
    assert api.plans_of("u1") == {"free": "active"}
    assert api.pay(invoice["hosted_invoice_url"]).status_code == 303
    assert api.plans_of("u1") == {"premium": "active", "pro": "scheduled"}
    assert invoices_of(api) == [("paid", 50, True)]
    assert api.on_processor(invoice) == ("paid", 5000)


def test_create_schedule_draft_with_enable_plan_immediately_creates_the_schedule_now(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    later, phases = _premium_then_pro()
    mode = draft_mode(enable_plan_immediately=True)
    result = api("billing.create_schedule", customer_id="u1", phases=phases, invoice_mode=mode)
    assert result["status"] == "created" and result["payment_url"] is None
    assert [p["starts_at"] for p in result["phases"]] == [START, later]
    invoice = result["invoice"]
    assert (invoice["status"], invoice["total"], invoice["hosted_invoice_url"]) == ("draft", 50, None)
    assert api.on_processor(invoice) == ("draft", 5000)
    assert api.plans_of("u1") == {"premium": "active", "pro": "scheduled"}
    assert_not_payable(api, invoice)
    done = api("invoices.finalize", invoice_id=invoice["stripe_id"])["invoice"]
    assert api.pay(done["hosted_invoice_url"]).status_code == 303
    assert api.plans_of("u1") == {"premium": "active", "pro": "scheduled"}  # nothing created twice
    assert invoices_of(api) == [("paid", 50, True)]


def _team_by_invoice(api: Api, customer_id: str) -> dict[str, Any]:
    """A new customer on ``team`` with 100 messages, started at once, its $30 invoice open."""
    api("customers.get_or_create", customer_id=customer_id)
    return dict(
        api(
            "billing.attach",
            customer_id=customer_id,
            plan_id="team",
            feature_quantities=[{"feature_id": "messages", "quantity": 100}],
            invoice_mode={"enabled": True, "enable_plan_immediately": True},
        )["invoice"]
    )


def test_update_by_invoice_applies_the_change_when_paid_or_at_once(api: Api) -> None:
    create_prepaid_team_plan(api)  # $20/month plus messages at $10 per pack of 100
    first = _team_by_invoice(api, "u1")
    assert (first["status"], first["total"]) == ("open", 30)
    assert api.pay(first["hosted_invoice_url"]).status_code == 303

    # Halfway through the month, 200 more messages: $20 of packs for half a month, $10 due now.
    api.clock.advance(15 * DAY)
    more = [{"feature_id": "messages", "quantity": 300}]
    mode = {"enabled": True}
    preview = api(
        "billing.preview_update", customer_id="u1", plan_id="team", feature_quantities=more, invoice_mode=mode
    )
    assert preview["total"] == 10
    result = api(
        "billing.update", customer_id="u1", plan_id="team", feature_quantities=more, invoice_mode=mode
    )
    assert result["payment_url"] is None
    invoice = result["invoice"]
    assert (invoice["status"], invoice["total"]) == ("open", 10)
    assert api.on_processor(invoice) == ("open", 1000)
    assert api.customer("u1")["balances"]["messages"]["granted"] == 100  # waits for the payment
    assert api.pay(invoice["hosted_invoice_url"]).status_code == 303
    assert api.customer("u1")["balances"]["messages"]["granted"] == 300
    assert invoices_of(api) == [("paid", 10, True), ("paid", 30, True)]
    assert api.on_processor(invoice) == ("paid", 1000)

    # A draft with enable_plan_immediately: the quantity changes now, the invoice waits for review.
    most = [{"feature_id": "messages", "quantity": 500}]
    mode = draft_mode(enable_plan_immediately=True)
    draft = api(
        "billing.update", customer_id="u1", plan_id="team", feature_quantities=most, invoice_mode=mode
    )
    invoice = draft["invoice"]
    assert (invoice["status"], invoice["total"], invoice["hosted_invoice_url"]) == ("draft", 10, None)
    assert api.on_processor(invoice) == ("draft", 1000)
    assert api.customer("u1")["balances"]["messages"]["granted"] == 500
    assert past_due(api) == [False]
    done = api("invoices.finalize", invoice_id=invoice["stripe_id"])["invoice"]
    assert api.pay(done["hosted_invoice_url"]).status_code == 303
    assert api.customer("u1")["balances"]["messages"]["granted"] == 500  # applied once
    assert invoices_of(api)[0] == ("paid", 10, True)

    # Nothing due (an uncancel): invoice mode changes nothing, no invoice.
    api("billing.update", customer_id="u1", plan_id="team", cancel_action="cancel_end_of_cycle")
    plain = api(
        "billing.update", customer_id="u1", plan_id="team", cancel_action="uncancel", invoice_mode=mode
    )
    assert "invoice" not in plain
    assert len(invoices_of(api)) == 3


def test_a_deferred_update_paid_days_later_applies_at_the_invoiced_price(api: Api) -> None:
    """An invoice-mode update that waits for its payment, paid five days after it was invoiced: its
    page is still payable (it is the invoice's own page, not a 24-hour checkout link), the change happens
    then, nothing is re-priced for the days that passed (no second charge, no credit, nothing pending for
    the renewal), and the next period bills the new quantity in full."""
    create_prepaid_team_plan(api)  # $20/month plus messages at $10 per pack of 100
    first = _team_by_invoice(api, "u1")
    assert api.pay(first["hosted_invoice_url"]).status_code == 303

    api.clock.advance(15 * DAY)  # halfway: 200 more messages cost $10 for the half month left
    more = [{"feature_id": "messages", "quantity": 300}]
    update = api(
        "billing.update",
        customer_id="u1",
        plan_id="team",
        feature_quantities=more,
        invoice_mode={"enabled": True},
    )["invoice"]
    assert (update["status"], update["total"]) == ("open", 10)

    api.clock.advance(5 * DAY)
    assert api.customer("u1")["balances"]["messages"]["granted"] == 100  # still waiting
    assert api.pay(update["hosted_invoice_url"]).status_code == 303
    customer = api.customer("u1")
    assert customer["balances"]["messages"]["granted"] == 300
    assert invoices_of(api) == [("paid", 10, True), ("paid", 30, True)]
    assert api.on_processor(update) == ("paid", 1000)
    preview = api("billing.preview_update", customer_id="u1", plan_id="team", feature_quantities=more)
    assert preview["total"] == 0  # the quantity paid for is the quantity held

    api.clock.set(START + 30 * DAY + 1)  # the renewal: $20 plus three packs, nothing carried over
    assert [i["total"] for i in api.customer("u1")["invoices"]] == [50, 10, 30]


@pytest.mark.parametrize("api", STRIPE_ONLY, indirect=True)
def test_deferred_multi_attach_schedule_and_update_paid_on_stripe_apply_once(api: Api) -> None:
    """Invoice-mode changes that wait for their payment, paid on Stripe's own invoice page instead of
    the server's: each ``invoice.paid`` event applies its change once, at the price invoiced."""
    assert api.stripe is not None
    webhook_secret(api)  # the test sends each invoice.paid itself, twice (Stripe may)
    _add_ons(api)
    create_prepaid_team_plan(api)
    mode = {"enabled": True}

    def paid_on_stripe(invoice: dict[str, Any], customer_id: str, cents: int) -> None:
        assert pay_on_stripe(api, invoice["stripe_id"], customer_id) == cents
        event = event_of(api, "invoice.paid", invoice["stripe_id"])
        assert send(api, event)["result"] == "invoice_paid"
        assert send(api, {**event, "id": event["id"] + "_again"})["result"] == "invoice_paid"

    # multi-attach: two add-ons, $30, started when paid.
    api("customers.get_or_create", customer_id="u1")
    plans = [{"plan_id": "extra"}, {"plan_id": "pack"}]
    bundle = api("billing.multi_attach", customer_id="u1", plans=plans, invoice_mode=mode)["invoice"]
    assert api.plans_of("u1") == {"free": "active"}
    paid_on_stripe(bundle, "u1", 3000)
    customer = api.customer("u1")
    assert {s["plan_id"] for s in customer["subscriptions"]} == {"free", "extra"}
    assert customer["balances"]["messages"]["granted"] == 250 + 100  # extra 200 + pack 50 + free 100
    assert invoices_of(api) == [("paid", 30, True)]

    # create_schedule: premium now and pro later, created when paid.
    api("customers.get_or_create", customer_id="u2")
    _, phases = _premium_then_pro()
    result = api("billing.create_schedule", customer_id="u2", phases=phases, invoice_mode=mode)
    assert result["status"] == "pending_payment"
    paid_on_stripe(result["invoice"], "u2", 5000)
    assert api.plans_of("u2") == {"premium": "active", "pro": "scheduled"}
    assert invoices_of(api, "u2") == [("paid", 50, True)]

    # update: 200 more messages halfway through the month, $10, granted when paid.
    first = _team_by_invoice(api, "u3")
    paid_on_stripe(first, "u3", 3000)
    api.clock.advance(15 * DAY)
    more = [{"feature_id": "messages", "quantity": 300}]
    update = api(
        "billing.update", customer_id="u3", plan_id="team", feature_quantities=more, invoice_mode=mode
    )
    assert api.customer("u3")["balances"]["messages"]["granted"] == 100
    paid_on_stripe(update["invoice"], "u3", 1000)
    assert api.customer("u3")["balances"]["messages"]["granted"] == 300
    assert invoices_of(api, "u3") == [("paid", 10, True), ("paid", 30, True)]
    for invoice, cents in ((bundle, 3000), (result["invoice"], 5000), (update["invoice"], 1000)):
        assert api.on_processor(invoice) == ("paid", cents)


def _refused(answer: dict[str, Any], message: str) -> None:
    assert (answer["code"], answer["message"]) == ("invalid_request", message), answer


def test_invoice_mode_errors_as_autumn_has_them(api: Api) -> None:
    api(
        "plans.create",
        plan_id="try",
        name="Try",
        price={"amount": 30, "interval": "month"},
        items=[{"feature_id": "messages", "included": 500, "reset": {"interval": "month"}}],
        free_trial={"duration_length": 14, "duration_type": "day", "card_required": False},
    )
    api("customers.get_or_create", customer_id="u1")
    draft = draft_mode(enable_plan_immediately=True)

    # A no-card trial billed at its end: finalize: false refused everywhere it can start one.
    _refused(
        api("billing.attach", 400, customer_id="u1", plan_id="try", invoice_mode=draft), NO_CARD_TRIAL_OPTIONS
    )
    _refused(
        api("billing.preview_attach", 400, customer_id="u1", plan_id="try", invoice_mode=draft),
        NO_CARD_TRIAL_OPTIONS,
    )
    plans = [{"plan_id": "try"}]
    _refused(
        api("billing.multi_attach", 400, customer_id="u1", plans=plans, invoice_mode=draft),
        NO_CARD_TRIAL_OPTIONS,
    )
    _refused(
        api("billing.preview_multi_attach", 400, customer_id="u1", plans=plans, invoice_mode=draft),
        NO_CARD_TRIAL_OPTIONS,
    )
    phases = [{"starts_at": START, "plans": plans}]
    _refused(
        api("billing.create_schedule", 400, customer_id="u1", phases=phases, invoice_mode=draft),
        NO_CARD_TRIAL_OPTIONS,
    )
    assert api.plans_of("u1") == {"free": "active"} and invoices_of(api) == []

    # A card-required trial keeps its options; the no-card one with the default options starts its
    # trial (nothing due now: no invoice).
    trial = {"duration_length": 7, "duration_type": "day", "card_required": True}
    allowed = api(
        "billing.preview_attach",
        customer_id="u1",
        plan_id="try",
        invoice_mode=draft,
        customize={"free_trial": trial},
    )
    assert allowed["total"] == 0
    started = api("billing.attach", customer_id="u1", plan_id="try", invoice_mode={"enabled": True})
    assert "invoice" not in started and api.plans_of("u1") == {"try": "active"}

    # Invoice mode is not set while updating a no-card trial.
    mode = {"enabled": True, "enable_plan_immediately": True}
    cancel: dict[str, Any] = {"customer_id": "u1", "plan_id": "try", "cancel_action": "cancel_end_of_cycle"}
    _refused(api("billing.update", 400, **cancel, invoice_mode=mode), UPDATE_NO_CARD_TRIAL)
    _refused(api("billing.preview_update", 400, **cancel, invoice_mode=mode), UPDATE_NO_CARD_TRIAL)
    api("billing.update", **cancel)  # without invoice mode: fine

    # Deferred activation of a downgrade has nothing to pay now.
    api("customers.get_or_create", customer_id="u2")
    up = api("billing.attach", customer_id="u2", plan_id="premium", invoice_mode=mode)["invoice"]
    assert api.pay(up["hosted_invoice_url"]).status_code == 303
    deferred = {"enabled": True}
    _refused(
        api("billing.attach", 400, customer_id="u2", plan_id="pro", invoice_mode=deferred), DEFERRED_DOWNGRADE
    )
    _refused(
        api("billing.preview_attach", 400, customer_id="u2", plan_id="pro", invoice_mode=deferred),
        DEFERRED_DOWNGRADE,
    )
    down = api("billing.attach", customer_id="u2", plan_id="pro", invoice_mode=mode)
    assert "invoice" not in down
    assert api.plans_of("u2") == {"premium": "active", "pro": "scheduled"}
    assert invoices_of(api, "u2") == [("paid", 50, True)]


def _post(tenant: Tenant, op: str, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{tenant.server.url}/v1/{op}",
        json=body,
        headers={"Authorization": f"Bearer {tenant.key}"},
        timeout=30,
    )


@pytest.mark.parametrize("op", ["multi_attach", "update"])
@pytest.mark.parametrize("when", ["write", "commit"])
def test_a_multi_attach_or_update_invoice_whose_transaction_fails_is_voided_on_stripe(
    tenant: Tenant, when: str, op: str
) -> None:
    """The rollback safety attach has (``compensation.void_after_transaction``), through the same path."""
    tenant("customers.get_or_create", customer_id="u1", email="u1@example.com")
    mode = {"enabled": True, "enable_plan_immediately": True}
    if op == "multi_attach":
        body: dict[str, Any] = {"plans": [{"plan_id": "pro"}, {"plan_id": "boost"}]}
        before: list[tuple[str, int]] = []
        due = 3500  # $20 + $15
    else:  # 200 more prepaid messages at $5 per 100 on the first day of the period: $10
        packs = [{"feature_id": "messages", "quantity": 100}]
        tenant(
            "billing.attach", customer_id="u1", plan_id="team", feature_quantities=packs, invoice_mode=mode
        )
        body = {"plan_id": "team", "feature_quantities": [{"feature_id": "messages", "quantity": 300}]}
        before = [("open", 1500)]
        due = 1000
    fail_when_opened(tenant, when)
    failed = _post(tenant, f"billing.{op}", customer_id="u1", invoice_mode=mode, **body)
    assert failed.status_code == 500, failed.text
    left = [(i.status, i.total) for i in stripe_invoices_of(tenant, "u1")]
    voided = [("void", due)] if when == "commit" else []  # a draft not yet opened is deleted
    assert sorted(left) == sorted(before + voided)
    listed = tenant.customer()["invoices"]
    assert [(i["status"], i["total"]) for i in listed] == [(s, t // 100) for s, t in before]

    repair(tenant)
    opened = _post(tenant, f"billing.{op}", customer_id="u1", invoice_mode=mode, **body)
    assert opened.status_code == 200, opened.text
    invoice = opened.json()["invoice"]
    assert (invoice["status"], invoice["total"]) == ("open", due // 100)
    stripe_invoice = tenant.invoice(invoice["stripe_id"])
    assert (stripe_invoice.status, stripe_invoice.total, stripe_invoice.collection_method) == (
        "open",
        due,
        "send_invoice",
    )
