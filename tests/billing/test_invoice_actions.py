"""``invoices.void`` and ``invoices.pay`` (official SDK operations) on open invoice-mode invoices.

Every processor (local, Stripe through localstripe) and database, through the real server over HTTP.
"""

from __future__ import annotations

from typing import Any

import httpx

from .helpers import Api


def _open_invoice(api: Api, customer_id: str = "u1") -> dict[str, Any]:
    api("customers.get_or_create", customer_id=customer_id)
    result = api(
        "billing.attach",
        customer_id=customer_id,
        plan_id="pro",
        invoice_mode={"enabled": True, "finalize": True},
    )
    invoice: dict[str, Any] = result["invoice"]
    assert invoice["status"] == "open" and invoice["hosted_invoice_url"] is not None
    assert api.plans_of(customer_id) == {"free": "active"}  # the plan waits for the payment
    return invoice


def test_pay_marks_an_open_invoice_paid_out_of_band_and_starts_its_plan(api: Api) -> None:
    invoice = _open_invoice(api)
    paid = api("invoices.pay", invoice_id=invoice["stripe_id"])["invoice"]
    assert (paid["stripe_id"], paid["status"], paid["customer_id"]) == (invoice["stripe_id"], "paid", "u1")
    assert paid["amount_paid"] == 20
    assert api.plans_of("u1") == {"pro": "active"}
    assert api.on_processor(invoice)[0] == "paid"
    again = api("invoices.pay", invoice_id=invoice["stripe_id"])["invoice"]  # already paid: unchanged
    assert again == paid
    assert api.plans_of("u1") == {"pro": "active"}
    refused = api("invoices.void", 409, invoice_id=invoice["stripe_id"])
    assert refused["code"] == "invoice_not_voidable"


def test_void_closes_the_invoice_and_its_plan_never_starts(api: Api) -> None:
    invoice = _open_invoice(api)
    voided = api("invoices.void", invoice_id=invoice["stripe_id"])["invoice"]
    assert (voided["stripe_id"], voided["status"]) == (invoice["stripe_id"], "void")
    assert api.on_processor(invoice)[0] == "void"
    assert api("invoices.void", invoice_id=invoice["stripe_id"])["invoice"] == voided  # unchanged
    # its page takes no payment any more, and marking it paid is refused
    page = httpx.get(invoice["hosted_invoice_url"])
    assert page.status_code >= 400 or 'type="submit"' not in page.text
    assert api("invoices.pay", 409, invoice_id=invoice["stripe_id"])["code"] == "invoice_not_open"
    assert api.plans_of("u1") == {"free": "active"}


def test_refusals(api: Api) -> None:
    assert api("invoices.void", 404, invoice_id="in_missing")["code"] == "invoice_not_found"
    assert api("invoices.pay", 404, invoice_id="in_missing")["code"] == "invoice_not_found"
    assert api("invoices.pay", 400)["code"] == "invalid_inputs"
    api("customers.get_or_create", customer_id="u2")
    draft = api(
        "billing.attach",
        customer_id="u2",
        plan_id="pro",
        invoice_mode={"enabled": True, "finalize": False},
    )["invoice"]
    refused = api("invoices.void", 409, invoice_id=draft["stripe_id"])
    assert refused["code"] == "invoice_not_voidable" and "draft" in refused["message"]
    assert api("invoices.pay", 409, invoice_id=draft["stripe_id"])["code"] == "invoice_not_open"
    # another organization's invoice is not found
    invoice = _open_invoice(api, "u3")
    other = httpx.post(
        f"{api.server.url}/v1/invoices.void",
        json={"invoice_id": invoice["stripe_id"]},
        headers={"Authorization": "Bearer am_sk_test_" + "x" * 40},
    )
    assert other.status_code == 401


def test_the_operations_without_a_counterpart_here_are_refused(api: Api) -> None:
    for name, body in (
        ("invoices.create", {"customer_id": "u1"}),
        ("invoices.update", {"invoice_id": "in_x", "payment_method_types": ["card"]}),
        ("invoices.reissue", {"invoice_id": "in_x"}),
        ("invoices.issue_credit_note", {"invoice_id": "in_x", "amount": 5}),
        ("invoices.listTemplates", {}),  # invoices.list_templates
    ):
        refused = api(name, 400, **body)
        assert refused["code"] == "unsupported_operation", refused
        shown = "invoices.list_templates" if name == "invoices.listTemplates" else name
        assert refused["message"].startswith(f"{shown} is part of Autumn's API but the reference server")
