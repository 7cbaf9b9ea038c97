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

from reference_server.store.billing_tables import billing_sessions, invoices
from reference_server.store.org_stripe import save_stripe_config
from reference_server.store.stripe_tables import stripe_events
from reference_server.store.tables import organizations

from . import test_api_billing, test_stripe_invoices
from .test_api_billing import DAY, Api
from .test_stripe_invoices import Tenant

# The fixtures of those suites: every processor and database (``api``), an organization's own Stripe
# account (``tenant``).
api = test_api_billing.api
shared_localstripe = test_api_billing.shared_localstripe
tenant = test_stripe_invoices.tenant

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

    # Days of review: the page's window counts from the finalization, not from the attach.
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
    again = api("invoices.finalize", 409, invoice_id=invoice["stripe_id"])
    assert again["code"] == "invoice_not_draft"
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
    assert api("invoices.finalize", 409, invoice_id=invoice["stripe_id"])["code"] == "invoice_not_draft"
    assert api.pay(invoice["hosted_invoice_url"]).status_code == 303
    assert api.plans_of("u1") == {"pro": "active"}


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
    card = api.stripe.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    stripe_customer = api.customer("u1")["processors"]["stripe"]["id"]
    api.stripe.v1.payment_methods.attach(card.id, {"customer": stripe_customer})
    api.stripe.v1.invoices.finalize_invoice(stripe_id)
    paid = api.stripe.v1.invoices.pay(stripe_id, {"payment_method": card.id})
    assert (paid.status, paid.amount_paid) == ("paid", 2000)

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
