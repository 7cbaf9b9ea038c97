"""``redirect_mode: "never"`` for a customer without a saved card, through the real server over HTTP on
SQLite and PostgreSQL, locally and on Stripe (localstripe).

As Autumn does (its Stripe invoice is created, finalized and left open when there is no payment method
to pay it, the response carrying ``required_action: payment_method_required``), the charge is attempted:
the server's invoice stays open, the processor's books show it open too (on Stripe one finalized
``charge_automatically`` invoice, which the fixture's books check holds to the server's), the change
waits, and the payment link pays that same invoice (or, expired, voids it on both sides).  A renewal
with no card to charge is left open the same way.
"""

from __future__ import annotations

from typing import Any

from .helpers import DAY, MAY, Api


def _never_attach(api: Api, customer_id: str) -> dict[str, Any]:
    api("customers.get_or_create", customer_id=customer_id)
    done = api("billing.attach", customer_id=customer_id, plan_id="pro", redirect_mode="never")
    assert done["required_action"]["code"] == "payment_method_required"
    assert done["payment_url"] and done["invoice"]["status"] == "open" and done["invoice"]["total"] == 20
    assert api.plans_of(customer_id) == {"free": "active"}  # the change waits for the payment
    return done


def test_attach_never_without_a_card_leaves_the_invoice_open_on_the_processor(api: Api) -> None:
    done = _never_attach(api, "nocard")
    (invoice,) = api.customer("nocard")["invoices"]
    assert (invoice["status"], invoice["total"]) == ("open", 20)
    assert api.on_processor(invoice) == ("open", 2000)  # Stripe: one open invoice, as the server's
    # The payment link pays that same invoice and makes the change.
    assert api.pay(done["payment_url"]).status_code == 303
    assert api.plans_of("nocard") == {"pro": "active"}
    (paid,) = api.customer("nocard")["invoices"]
    assert (paid["status"], paid["stripe_id"]) == ("paid", invoice["stripe_id"])
    assert api.on_processor(paid) == ("paid", 2000)


def test_attach_never_without_a_card_expired_link_voids_the_invoice_on_both_sides(api: Api) -> None:
    done = _never_attach(api, "nocard")
    api.clock.advance(DAY)  # the payment link expired: opening it voids the invoice
    assert api.http.get(done["payment_url"]).status_code == 410
    (invoice,) = api.customer("nocard")["invoices"]
    assert invoice["status"] == "void"
    assert api.on_processor(invoice)[0] == "void"
    assert api.plans_of("nocard") == {"free": "active"}


def test_attach_never_without_a_card_then_a_saved_card_pays_a_new_attach(api: Api) -> None:
    """The open invoice does not stand in the way: with a card saved later, an attach charges it."""
    _never_attach(api, "nocard")
    api.add_card("nocard")
    again = api("billing.attach", customer_id="nocard", plan_id="pro", redirect_mode="never")
    assert again["payment_url"] is None and again["invoice"]["status"] == "paid"
    assert api.on_processor(again["invoice"]) == ("paid", 2000)
    assert api.plans_of("nocard") == {"pro": "active"}


def test_a_renewal_without_a_card_is_open_on_the_processor_until_a_card_pays_it(api: Api) -> None:
    """A plan started by invoice (no card saved) renews by a charge with no card to take it from: the
    renewal invoice is open on the processor too, until a card saved later pays that same invoice."""
    api("customers.get_or_create", customer_id="u1")
    mode = {"enabled": True, "enable_plan_immediately": True}
    api("billing.attach", customer_id="u1", plan_id="pro", invoice_mode=mode)
    api.clock.set(MAY + 1)
    renewal, by_invoice = api.customer("u1")["invoices"]
    assert [(i["status"], i["total"]) for i in (renewal, by_invoice)] == [("open", 20), ("open", 20)]
    assert api.on_processor(renewal) == ("open", 2000)  # Stripe: a charge_automatically invoice, open
    assert [s["past_due"] for s in api.customer("u1")["subscriptions"]] == [True]
    api.add_card("u1")  # the card pays the renewal (the invoice-mode one stays the customer's to pay)
    paid, still_open = api.customer("u1")["invoices"]
    assert (paid["status"], paid["stripe_id"]) == ("paid", renewal["stripe_id"])
    assert api.on_processor(paid) == ("paid", 2000)
    assert api.on_processor(still_open) == ("open", 2000)
    assert [s["past_due"] for s in api.customer("u1")["subscriptions"]] == [False]
