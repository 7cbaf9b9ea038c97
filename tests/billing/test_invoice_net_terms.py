"""``invoice_mode.net_terms_days``: the days an invoice-mode invoice gives the customer to pay, on both
processors and databases.

The invoice is due that many days (default 30, Autumn's) after it is finalized: at once for an open
invoice, when a ``finalize: false`` draft is finalized.  On Stripe the ``send_invoice`` Stripe invoice
gets ``days_until_due``; every invoice object of the API shows ``net_terms_days`` and ``due_at`` (beyond
the spec: Autumn's invoice objects have no due date).  ``invoice_mode.invoice_template_id`` stays
refused: Autumn's invoice templates live in its dashboard's settings, which this server has none of.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from reference_server.billing.invoice_mode import NO_CARD_TRIAL_OPTIONS
from reference_server.store.tables.billing import invoices

from .helpers import DAY, START, Api, create_prepaid_team_plan


def _stripe_days(api: Api, invoice: dict[str, Any]) -> tuple[str, int | None]:
    """The Stripe invoice's ``collection_method`` and ``days_until_due``."""
    assert api.stripe is not None
    found = api.stripe.v1.invoices.retrieve(str(invoice["stripe_id"]))
    return str(found.collection_method), found.days_until_due


def _server_id(api: Api, invoice: dict[str, Any]) -> str:
    """The server's own id of an API invoice (its page is ``/invoices/{id}``)."""
    match = (invoices.c.id == invoice["stripe_id"]) | (invoices.c.processor_id == invoice["stripe_id"])
    with api.server.app.state.autumn.db.read() as conn:
        return str(conn.execute(select(invoices.c.id).where(match)).scalar_one())


def _shown(api: Api, invoice: dict[str, Any], customer_id: str = "u1") -> list[tuple[int, int | None]]:
    """The invoice's (net_terms_days, due_at) as ``customers.get`` and ``invoices.list`` show it."""
    listed = [i for i in api.customer(customer_id)["invoices"] if i["stripe_id"] == invoice["stripe_id"]]
    page = api("invoices.list", customer_id=customer_id)["list"]
    found = [i for i in page if i["stripe_id"] == invoice["stripe_id"]]
    return [(i["net_terms_days"], i["due_at"]) for i in listed + found]


def test_net_terms_days_sets_the_due_date(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    api.clock.advance(2 * DAY)
    now = START + 2 * DAY
    mode = {"enabled": True, "net_terms_days": 45}
    invoice = api("billing.attach", customer_id="u1", plan_id="pro", invoice_mode=mode)["invoice"]
    assert (invoice["status"], invoice["total"]) == ("open", 20)
    assert (invoice["net_terms_days"], invoice["due_at"]) == (45, now + 45 * DAY)
    assert _shown(api, invoice) == [(45, now + 45 * DAY)] * 2
    if api.stripe is not None:
        assert _stripe_days(api, invoice) == ("send_invoice", 45)
    page = httpx.get(f"{api.server.url}/invoices/{_server_id(api, invoice)}").text
    assert '<dd id="invoice-due">2026-05-18</dd>' in page  # April 3rd + 45 days
    assert api.pay(invoice["hosted_invoice_url"]).status_code == 303
    assert api.plans_of("u1") == {"pro": "active"}
    assert _shown(api, invoice) == [(45, now + 45 * DAY)] * 2  # paid: its terms stay on record


def test_without_net_terms_days_the_invoice_is_due_in_30_days(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    invoice = api("billing.attach", customer_id="u1", plan_id="pro", invoice_mode={"enabled": True})[
        "invoice"
    ]
    assert (invoice["net_terms_days"], invoice["due_at"]) == (30, START + 30 * DAY)
    if api.stripe is not None:
        assert _stripe_days(api, invoice) == ("send_invoice", 30)
    # An invoice that is not an invoice-mode one has no net terms to show.
    api("customers.get_or_create", customer_id="u2")
    checkout = api("billing.attach", customer_id="u2", plan_id="pro")
    assert api.pay(checkout["payment_url"]).status_code == 303
    charged = api.customer("u2")["invoices"]
    assert [i["status"] for i in charged] == ["paid"]
    assert all("net_terms_days" not in i and "due_at" not in i for i in charged)


def test_a_draft_is_due_its_net_terms_after_it_is_finalized(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    mode = {"enabled": True, "finalize": False, "net_terms_days": 10}
    invoice = api("billing.attach", customer_id="u1", plan_id="pro", invoice_mode=mode)["invoice"]
    assert (invoice["status"], invoice["net_terms_days"], invoice["due_at"]) == ("draft", 10, None)
    assert _shown(api, invoice) == [(10, None)] * 2
    if api.stripe is not None:
        assert _stripe_days(api, invoice) == ("send_invoice", 10)
    api.clock.advance(3 * DAY)
    done = api("invoices.finalize", invoice_id=invoice["stripe_id"])["invoice"]
    assert (done["status"], done["net_terms_days"], done["due_at"]) == ("open", 10, START + 13 * DAY)
    assert _shown(api, invoice) == [(10, START + 13 * DAY)] * 2
    if api.stripe is not None:
        found = api.stripe.v1.invoices.retrieve(str(invoice["stripe_id"]))
        assert (found.status, found.days_until_due) == ("open", 10)
        assert found.due_date is not None


def test_multi_attach_schedule_and_update_take_net_terms_days(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    mode = {"enabled": True, "enable_plan_immediately": True, "net_terms_days": 7}
    invoice = api("billing.multi_attach", customer_id="u1", plans=[{"plan_id": "pro"}], invoice_mode=mode)[
        "invoice"
    ]
    assert (invoice["net_terms_days"], invoice["due_at"]) == (7, START + 7 * DAY)
    if api.stripe is not None:
        assert _stripe_days(api, invoice) == ("send_invoice", 7)

    api("customers.get_or_create", customer_id="u2")
    phases = [{"starts_at": START, "plans": [{"plan_id": "premium"}]}]
    mode = {"enabled": True, "net_terms_days": 14}
    scheduled = api("billing.create_schedule", customer_id="u2", phases=phases, invoice_mode=mode)["invoice"]
    assert (scheduled["net_terms_days"], scheduled["due_at"]) == (14, START + 14 * DAY)


def test_update_takes_net_terms_days(api: Api) -> None:
    create_prepaid_team_plan(api)  # $20/month plus messages at $10 per pack of 100
    api("customers.get_or_create", customer_id="u1")
    first = api(
        "billing.attach",
        customer_id="u1",
        plan_id="team",
        feature_quantities=[{"feature_id": "messages", "quantity": 100}],
        invoice_mode={"enabled": True, "enable_plan_immediately": True},
    )["invoice"]
    assert api.pay(first["hosted_invoice_url"]).status_code == 303
    api.clock.advance(15 * DAY)
    more = [{"feature_id": "messages", "quantity": 300}]
    mode = {"enabled": True, "net_terms_days": 60}
    invoice = api(
        "billing.update", customer_id="u1", plan_id="team", feature_quantities=more, invoice_mode=mode
    )["invoice"]
    assert (invoice["total"], invoice["net_terms_days"], invoice["due_at"]) == (10, 60, START + 75 * DAY)
    if api.stripe is not None:
        assert _stripe_days(api, invoice) == ("send_invoice", 60)
    over = {"enabled": True, "net_terms_days": 2000}
    for op in ("billing.preview_update", "billing.update"):
        refused = api(op, 400, customer_id="u1", plan_id="team", feature_quantities=more, invoice_mode=over)
        assert refused["code"] == "invalid_inputs"


def test_bad_net_terms_days_are_refused_before_anything_is_written(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    for bad in (0, -3, 1.5, "soon", 1826):
        answer = api(
            "billing.attach",
            400,
            customer_id="u1",
            plan_id="pro",
            invoice_mode={"enabled": True, "net_terms_days": bad},
        )
        assert answer["code"] == "invalid_inputs", (bad, answer)
        assert "net_terms_days" in answer["message"], (bad, answer)
    for op in ("billing.preview_attach", "billing.attach"):
        over = api(
            op, 400, customer_id="u1", plan_id="pro", invoice_mode={"enabled": True, "net_terms_days": 1826}
        )
        assert over["message"] == "invoice_mode.net_terms_days: must be at most 1825 days"
    mode = {"enabled": True, "net_terms_days": 1825}
    assert api("billing.preview_attach", customer_id="u1", plan_id="pro", invoice_mode=mode)["total"] == 20
    # Invoice mode switched off: its options ask for nothing (as in Autumn).
    assert (
        api(
            "billing.preview_attach",
            customer_id="u1",
            plan_id="pro",
            invoice_mode={"enabled": False, "net_terms_days": 5000},
        )["total"]
        == 20
    )
    template = api(
        "billing.attach",
        400,
        customer_id="u1",
        plan_id="pro",
        invoice_mode={"enabled": True, "invoice_template_id": "tmpl_1"},
    )
    assert template["code"] == "unsupported_field"
    assert "invoice_mode.invoice_template_id" in template["message"]
    assert api.plans_of("u1") == {"free": "active"}
    assert api.customer("u1")["invoices"] == []


def test_a_no_card_trial_takes_only_the_default_net_terms(api: Api) -> None:
    api(
        "plans.create",
        plan_id="try",
        name="Try",
        price={"amount": 30, "interval": "month"},
        items=[{"feature_id": "messages", "included": 500, "reset": {"interval": "month"}}],
        free_trial={"duration_length": 14, "duration_type": "day", "card_required": False},
    )
    api("customers.get_or_create", customer_id="u1")
    custom = {"enabled": True, "net_terms_days": 45}
    for op in ("billing.preview_attach", "billing.attach"):
        refused = api(op, 400, customer_id="u1", plan_id="try", invoice_mode=custom)
        assert (refused["code"], refused["message"]) == ("invalid_request", NO_CARD_TRIAL_OPTIONS)
    plans = [{"plan_id": "try"}]
    refused = api("billing.multi_attach", 400, customer_id="u1", plans=plans, invoice_mode=custom)
    assert refused["message"] == NO_CARD_TRIAL_OPTIONS
    # A card-required trial keeps custom terms; the default (30) is no custom option.
    trial = {"duration_length": 7, "duration_type": "day", "card_required": True}
    allowed = api(
        "billing.preview_attach",
        customer_id="u1",
        plan_id="try",
        invoice_mode=custom,
        customize={"free_trial": trial},
    )
    assert allowed["total"] == 0
    default = {"enabled": True, "net_terms_days": 30}
    started = api("billing.attach", customer_id="u1", plan_id="try", invoice_mode=default)
    assert "invoice" not in started and api.plans_of("u1") == {"try": "active"}
