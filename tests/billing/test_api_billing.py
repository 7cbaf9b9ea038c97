"""Paid billing through the real server over HTTP: attach, checkout, upgrades, downgrades, renewals.

The server runs with a manual clock so "halfway through the month" is exact.  Every scenario runs on
both processors (local and Stripe on localstripe) and both databases: the :class:`Api` helpers pay the
way a payer does on each (the server's own card form, or Stripe Checkout for a Stripe server), and on
Stripe each test ends by checking the server's invoices against Stripe's books to the cent.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from autumn_sdk._generated.models import (
    AttachResponse,
    PreviewAttachResponse,
    PreviewUpdateResponse,
)
from reference_server.processors.local.processor import LocalProcessor
from reference_server.processors.registry import Processors
from reference_server.processors.stripe.processor import StripeProcessor
from reference_server.testing import run_server

from .helpers import (
    DAY,
    START,
    STRIPE_KEY,
    Api,
    create_pack,
    create_prepaid_team_plan,
    create_trial_pro,
    ms,
    with_card,
)


def test_free_to_paid_without_a_card_goes_through_checkout(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    preview = PreviewAttachResponse.model_validate(
        api("billing.preview_attach", customer_id="u1", plan_id="pro")
    )
    assert preview.total == 20 and preview.redirect_to_checkout and preview.checkout_type == "stripe_checkout"
    result = AttachResponse.model_validate(
        api("billing.attach", customer_id="u1", plan_id="pro", success_url="https://example.com/done")
    )
    assert result.payment_url is not None and "/checkout/" in result.payment_url
    assert api.plans_of("u1") == {"free": "active"}  # nothing changes before payment
    declined = api.pay(result.payment_url, "4000000000000002")
    assert declined.status_code == 402
    assert api.plans_of("u1") == {"free": "active"}
    paid = api.pay(result.payment_url)
    assert (paid.status_code, paid.headers["location"]) == (303, "https://example.com/done")
    customer = api.customer("u1")
    assert {s["plan_id"] for s in customer["subscriptions"]} == {"pro"}
    sub = customer["subscriptions"][0]
    assert (sub["current_period_start"], sub["current_period_end"]) == (START, ms(2026, 5, 1))
    assert customer["balances"]["messages"]["granted"] == 1000
    (invoice,) = customer["invoices"]
    assert (invoice["total"], invoice["status"], invoice["plan_ids"]) == (20, "paid", ["pro"])


def test_upgrade_halfway_charges_fifteen_and_preview_matches(api: Api) -> None:
    with_card(api, "u1")
    first = AttachResponse.model_validate(api("billing.attach", customer_id="u1", plan_id="pro"))
    assert first.payment_url is None and first.invoice is not None and first.invoice.total == 20
    api("balances.track", customer_id="u1", feature_id="messages", value=30)
    api.clock.advance(15 * DAY)
    preview = api("billing.preview_attach", customer_id="u1", plan_id="premium")
    assert preview["total"] == 15
    assert [line["total"] for line in preview["line_items"]] == [-10, 25]
    assert preview["next_cycle"]["total"] == 50 and preview["next_cycle"]["starts_at"] == ms(2026, 5, 1)
    result = api("billing.attach", customer_id="u1", plan_id="premium")
    assert result["invoice"]["total"] == preview["total"] == 15
    customer = api.customer("u1")
    assert [s["plan_id"] for s in customer["subscriptions"]] == ["premium"]
    assert customer["subscriptions"][0]["current_period_end"] == ms(2026, 5, 1)
    messages = customer["balances"]["messages"]
    assert (messages["granted"], messages["usage"]) == (5000, 0)


def test_downgrade_is_scheduled_and_happens_at_period_end(api: Api) -> None:
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="premium")
    api.clock.advance(10 * DAY)
    preview = api("billing.preview_attach", customer_id="u1", plan_id="pro")
    assert preview["total"] == 0 and preview["incoming"][0]["effective_at"] == ms(2026, 5, 1)
    result = api("billing.attach", customer_id="u1", plan_id="pro")
    assert "invoice" not in result
    subs = {s["plan_id"]: s for s in api.customer("u1")["subscriptions"]}
    assert subs["premium"]["canceled_at"] == START + 10 * DAY
    assert subs["premium"]["expires_at"] == ms(2026, 5, 1)
    assert subs["pro"]["status"] == "scheduled"
    assert api.customer("u1")["balances"]["messages"]["granted"] == 5000
    api.clock.set(ms(2026, 5, 1) + 1000)
    customer = api.customer("u1")
    assert api.plans_of("u1") == {"pro": "active"}
    assert customer["balances"]["messages"]["granted"] == 1000
    assert customer["subscriptions"][0]["current_period_end"] == ms(2026, 6, 1)
    assert [i["total"] for i in customer["invoices"]] == [20, 50]


def test_reattaching_the_current_plan_is_409_and_cancels_a_scheduled_downgrade(api: Api) -> None:
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="premium")
    conflict = api("billing.attach", expect=409, customer_id="u1", plan_id="premium")
    assert conflict["code"] == "plan_already_attached"
    api("billing.attach", customer_id="u1", plan_id="pro")
    assert api.plans_of("u1") == {"premium": "active", "pro": "scheduled"}
    api("billing.attach", customer_id="u1", plan_id="premium")
    assert api.plans_of("u1") == {"premium": "active"}
    assert api.customer("u1")["subscriptions"][0]["canceled_at"] is None


def test_renewal_bills_the_next_period(api: Api) -> None:
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="pro")
    api.clock.set(ms(2026, 6, 2))  # two renewals: May 1 and June 1
    customer = api.customer("u1")
    assert [i["total"] for i in customer["invoices"]] == [20, 20, 20]
    sub = customer["subscriptions"][0]
    assert (sub["current_period_start"], sub["current_period_end"]) == (ms(2026, 6, 1), ms(2026, 7, 1))


def test_usage_based_overage_is_billed_at_renewal(api: Api) -> None:
    api(
        "plans.create",
        plan_id="payg",
        name="Pay as you go",
        price={"amount": 10, "interval": "month"},
        items=[
            {
                "feature_id": "messages",
                "included": 100,
                "reset": {"interval": "month"},
                "price": {"amount": 0.5, "interval": "month", "billing_method": "usage_based"},
            }
        ],
    )
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="payg")
    api("balances.track", customer_id="u1", feature_id="messages", value=200)
    api.clock.set(ms(2026, 5, 1) + 1)
    customer = api.customer("u1")
    assert [i["total"] for i in customer["invoices"]] == [60, 10]  # 10 base + 100 overage x 0.5
    assert customer["balances"]["messages"]["usage"] == 0


def test_prepaid_quantities_charge_upfront_and_update_prorates(api: Api) -> None:
    create_prepaid_team_plan(api)
    with_card(api, "u1")
    quantities = [{"feature_id": "messages", "quantity": 100}]
    preview = api("billing.preview_attach", customer_id="u1", plan_id="team", feature_quantities=quantities)
    assert preview["total"] == 30
    api("billing.attach", customer_id="u1", plan_id="team", feature_quantities=quantities)
    balance = api.customer("u1")["balances"]["messages"]
    assert balance["granted"] == 100 and balance["breakdown"][0]["prepaid_grant"] == 100
    api.clock.advance(15 * DAY)
    more = [{"feature_id": "messages", "quantity": 300}]
    preview_update = PreviewUpdateResponse.model_validate(
        api("billing.preview_update", customer_id="u1", plan_id="team", feature_quantities=more)
    )
    assert preview_update.intent == "update_quantity" and preview_update.total == 10
    result = api("billing.update", customer_id="u1", plan_id="team", feature_quantities=more)
    assert result["invoice"]["total"] == 10
    assert api.customer("u1")["balances"]["messages"]["granted"] == 300


def test_next_cycle_quantity_proration_lands_on_the_renewal_invoice(api: Api) -> None:
    """A prepaid quantity increase with ``prorate_next_cycle`` charges nothing now and adds the prorated
    amount to the renewal invoice, which also bills the new quantity for the next period."""
    create_prepaid_team_plan(
        api, proration={"on_increase": "prorate_next_cycle", "on_decrease": "prorate_next_cycle"}
    )
    with_card(api, "q")
    api(
        "billing.attach",
        customer_id="q",
        plan_id="team",
        feature_quantities=[{"feature_id": "messages", "quantity": 100}],
    )
    api.clock.advance(15 * DAY)  # half of April left
    more = [{"feature_id": "messages", "quantity": 300}]
    result = api("billing.update", customer_id="q", plan_id="team", feature_quantities=more)
    assert not result.get("invoice") or result["invoice"]["total"] == 0
    customer = api.customer("q")
    assert [i["total"] for i in customer["invoices"]] == [30]  # the pending draft is not listed
    assert customer["balances"]["messages"]["granted"] == 300

    api.clock.set(ms(2026, 5, 1) + 1)
    # $20 base + 3 x $10 for May + the April proration (2 more packs for half a month: $10)
    assert [i["total"] for i in reversed(api.customer("q")["invoices"])] == [30, 60]


def test_cancel_end_of_cycle_returns_the_default_plan(api: Api) -> None:
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="pro")
    api("billing.update", customer_id="u1", plan_id="pro", cancel_action="cancel_end_of_cycle")
    assert api.plans_of("u1") == {"pro": "active", "free": "scheduled"}
    api("billing.update", customer_id="u1", plan_id="pro", cancel_action="uncancel")
    assert api.plans_of("u1") == {"pro": "active"}
    api("billing.update", customer_id="u1", plan_id="pro", cancel_action="cancel_end_of_cycle")
    api.clock.set(ms(2026, 5, 1) + 1)
    assert api.plans_of("u1") == {"free": "active"}
    assert [i["total"] for i in api.customer("u1")["invoices"]] == [20]


def test_cancel_immediately_credits_unused_time(api: Api) -> None:
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="premium")
    api.clock.advance(15 * DAY)
    preview = api(
        "billing.preview_update", customer_id="u1", plan_id="premium", cancel_action="cancel_immediately"
    )
    assert preview["total"] == -25 and preview["intent"] == "cancel_immediately"
    result = api("billing.update", customer_id="u1", plan_id="premium", cancel_action="cancel_immediately")
    assert result["invoice"]["total"] == -25
    assert api.plans_of("u1") == {"free": "active"}
    # The credit pays for the next purchase first.
    paid = api("billing.attach", customer_id="u1", plan_id="pro")
    assert paid["invoice"]["total"] == 20 and paid["invoice"]["status"] == "paid"


def test_trial_with_card_bills_at_trial_end(api: Api) -> None:
    create_trial_pro(api, 7)
    with_card(api, "u1")
    preview = api("billing.preview_attach", customer_id="u1", plan_id="trial_pro")
    assert preview["total"] == 0 and preview["next_cycle"]["starts_at"] == START + 7 * DAY
    api("billing.attach", customer_id="u1", plan_id="trial_pro")
    sub = api.customer("u1")["subscriptions"][0]
    assert sub["trial_ends_at"] == START + 7 * DAY
    api.clock.set(START + 7 * DAY + 1)
    customer = api.customer("u1")
    assert [i["total"] for i in customer["invoices"]] == [20]
    assert customer["subscriptions"][0]["current_period_end"] == ms(2026, 5, 8)
    # A trial is used once: attaching again after cancelling charges at once.
    api("billing.update", customer_id="u1", plan_id="trial_pro", cancel_action="cancel_immediately")
    again = api("billing.attach", customer_id="u1", plan_id="trial_pro")
    assert again["invoice"]["total"] > 0


def test_trial_without_card_falls_back_to_the_default(api: Api) -> None:
    api(
        "plans.create",
        plan_id="try",
        name="Try",
        price={"amount": 30, "interval": "month"},
        items=[{"feature_id": "messages", "included": 500, "reset": {"interval": "month"}}],
        free_trial={"duration_length": 14, "duration_type": "day", "card_required": False},
    )
    api("customers.get_or_create", customer_id="u1")
    result = api("billing.attach", customer_id="u1", plan_id="try")
    assert result["payment_url"] is None
    assert api.plans_of("u1") == {"try": "active"}
    api.clock.set(START + 15 * DAY)
    assert api.plans_of("u1") == {"free": "active"}
    assert api.customer("u1")["invoices"] == []


def test_multi_attach_charges_once(api: Api) -> None:
    api(
        "plans.create",
        plan_id="extra",
        name="Extra",
        add_on=True,
        price={"amount": 20, "interval": "month"},
        items=[{"feature_id": "messages", "included": 200, "reset": {"interval": "month"}}],
    )
    create_pack(api)
    with_card(api, "u1")
    plans = [{"plan_id": "extra"}, {"plan_id": "pack"}]
    assert api("billing.preview_multi_attach", customer_id="u1", plans=plans)["total"] == 30
    result = api("billing.multi_attach", customer_id="u1", plans=plans)
    assert result["invoice"]["total"] == 30
    customer = api.customer("u1")
    assert {s["plan_id"] for s in customer["subscriptions"]} == {"free", "extra"}
    assert [p["plan_id"] for p in customer["purchases"]] == ["pack"]
    assert customer["balances"]["messages"]["granted"] == 350
    same_group = api(
        "billing.multi_attach",
        expect=400,
        customer_id="u1",
        plans=[{"plan_id": "pro"}, {"plan_id": "premium"}],
    )
    assert same_group["code"] == "invalid_request"


def test_declined_saved_card_returns_required_action(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    api.add_card("u1", "4000002760003184")  # authenticates now, and on every later charge
    result = api("billing.attach", customer_id="u1", plan_id="pro")
    assert result["required_action"]["code"] == "3ds_required"
    assert result["payment_url"] is not None
    assert api.plans_of("u1") == {"free": "active"}
    step = api.pay(result["payment_url"], "4000002760003184")
    assert api.plans_of("u1") == {"free": "active"}  # the charge waits for 3-D Secure
    assert api.authenticate(result["payment_url"], step).status_code == 303
    assert api.plans_of("u1") == {"pro": "active"}
    assert [i["status"] for i in api.customer("u1")["invoices"]] == ["paid"]


def test_portal_and_setup_urls_are_served(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1", email="ada@example.com")
    portal = api("billing.open_customer_portal", customer_id="u1", return_url="https://example.com/app")
    page = httpx.get(portal["url"])
    assert page.status_code == 200 and "ada@example.com" in page.text and 'id="portal-plans"' in page.text
    api.add_card("u1")
    api("billing.attach", customer_id="u1", plan_id="pro")
    cancel = httpx.post(portal["url"] + "/cancel", data={"plan_id": "pro"})
    assert cancel.status_code == 303
    subs = {s["plan_id"]: s for s in api.customer("u1")["subscriptions"]}
    assert subs["pro"]["canceled_at"] is not None and subs["free"]["status"] == "scheduled"
    missing = api("billing.setup_payment", expect=404, customer_id="nobody")
    assert missing["code"] == "customer_not_found"


def test_create_schedule_runs_phases_in_order(api: Api) -> None:
    with_card(api, "u1")
    later = ms(2026, 4, 11)
    result = api(
        "billing.create_schedule",
        customer_id="u1",
        phases=[
            {"starts_at": START, "plans": [{"plan_id": "premium"}]},
            {"starts_at": later, "plans": [{"plan_id": "pro"}]},
        ],
    )
    assert result["status"] == "created" and result["payment_url"] is None
    assert [p["starts_at"] for p in result["phases"]] == [START, later]
    assert all(len(p["customer_product_ids"]) == 1 for p in result["phases"])
    assert result["invoice"]["total"] == 50
    assert api.plans_of("u1") == {"premium": "active", "pro": "scheduled"}
    api.clock.set(later + 1)
    customer = api.customer("u1")
    assert api.plans_of("u1") == {"pro": "active"}
    assert customer["subscriptions"][0]["current_period_start"] == later
    assert [i["total"] for i in customer["invoices"]] == [20, 50]
    late_start = api(
        "billing.create_schedule",
        expect=400,
        customer_id="u1",
        phases=[{"starts_at": later + 30 * DAY, "plans": [{"plan_id": "premium"}]}],
    )
    assert late_start["message"] == "The first phase must start immediately"
    unordered = api(
        "billing.create_schedule",
        expect=400,
        customer_id="u1",
        phases=[
            {"starts_at": later, "plans": [{"plan_id": "premium"}]},
            {"starts_at": later, "plans": [{"plan_id": "free"}]},
        ],
    )
    assert unordered["code"] == "invalid_request"


def test_redirect_always_confirms_with_the_saved_card(api: Api) -> None:
    with_card(api, "u1")
    preview = api("billing.preview_attach", customer_id="u1", plan_id="pro", redirect_mode="always")
    assert preview["redirect_to_checkout"] and preview["checkout_type"] == "autumn_checkout"
    result = api("billing.attach", customer_id="u1", plan_id="pro", redirect_mode="always")
    page = httpx.get(result["payment_url"])
    assert 'id="pay-saved-button"' in page.text and "Visa ending in 4242" in page.text
    assert api.plans_of("u1") == {"free": "active"}
    confirmed = httpx.post(result["payment_url"], data={"use_saved": "1"})
    assert confirmed.status_code == 303
    assert api.plans_of("u1") == {"pro": "active"}


def test_update_customize_prorates_the_new_price(api: Api) -> None:
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="pro")
    api.clock.advance(15 * DAY)
    customize = {
        "price": {"amount": 30, "interval": "month"},
        "items": [{"feature_id": "messages", "included": 2000, "reset": {"interval": "month"}}],
    }
    preview = api("billing.preview_update", customer_id="u1", plan_id="pro", customize=customize)
    assert preview["intent"] == "update_plan" and preview["total"] == 5
    assert {line["plan_id"] for line in preview["line_items"]} == {"pro"}
    result = api("billing.update", customer_id="u1", plan_id="pro", customize=customize)
    assert result["invoice"]["total"] == 5
    customer = api.customer("u1")
    assert customer["balances"]["messages"]["granted"] == 2000
    assert customer["subscriptions"][0]["current_period_end"] == ms(2026, 5, 1)
    api.clock.set(ms(2026, 5, 1) + 1)
    assert [i["total"] for i in api.customer("u1")["invoices"]] == [30, 5, 20]  # renews at the custom price


def test_paid_plan_attached_to_an_entity(api: Api) -> None:
    with_card(api, "u1")
    api("entities.create", customer_id="u1", entity_id="e1", feature_id="seats", name="Seat 1")
    result = api("billing.attach", customer_id="u1", entity_id="e1", plan_id="pro")
    assert result["entity_id"] == "e1" and result["invoice"]["total"] == 20
    entity = api("entities.get", customer_id="u1", entity_id="e1")
    assert [s["plan_id"] for s in entity["subscriptions"]] == ["pro"]
    assert api.plans_of("u1") == {"free": "active"}
    upgrade = api("billing.preview_attach", customer_id="u1", entity_id="e1", plan_id="premium")
    assert upgrade["total"] == 30 and upgrade["entity_id"] == "e1"


def test_invoice_mode_sends_an_open_invoice(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    result = api("billing.attach", customer_id="u1", plan_id="pro", invoice_mode={"enabled": True})
    assert result["payment_url"] is None
    invoice = result["invoice"]
    assert (invoice["status"], invoice["total"]) == ("open", 20)
    assert api.on_processor(invoice) == ("open", 2000)  # on Stripe: an open send_invoice invoice
    assert api.plans_of("u1") == {"free": "active"}
    assert api.pay(invoice["hosted_invoice_url"]).status_code == 303
    assert api.plans_of("u1") == {"pro": "active"}
    assert [(i["status"], i["total"]) for i in api.customer("u1")["invoices"]] == [("paid", 20)]
    now = api(
        "billing.attach",
        customer_id="u1",
        plan_id="premium",
        invoice_mode={"enabled": True, "enable_plan_immediately": True},
    )
    assert now["invoice"]["status"] == "open"
    assert api.on_processor(now["invoice"]) == ("open", 3000)  # $50 less the unused $20 of pro
    assert api.plans_of("u1") == {"premium": "active"}


@pytest.mark.parametrize("with_card", [False, True])
def test_default_plan_trial_without_card_requirement(api: Api, with_card: bool) -> None:
    api(
        "plans.create",
        plan_id="starter",
        name="Starter",
        auto_enable=True,
        price={"amount": 15, "interval": "month"},
        items=[{"feature_id": "messages", "included": 300, "reset": {"interval": "month"}}],
        free_trial={"duration_length": 7, "duration_type": "day", "card_required": False},
    )
    api("customers.get_or_create", customer_id="u1")
    assert api.plans_of("u1") == {"starter": "active"}
    assert api.customer("u1")["subscriptions"][0]["trial_ends_at"] == START + 7 * DAY
    if with_card:
        api.add_card("u1")
    api.clock.set(START + 7 * DAY + 1)
    customer = api.customer("u1")
    if with_card:
        assert api.plans_of("u1") == {"starter": "active"}
        assert [i["total"] for i in customer["invoices"]] == [15]
        assert customer["subscriptions"][0]["current_period_end"] == ms(2026, 5, 8)
    else:
        assert api.plans_of("u1") == {"free": "active"}
        assert customer["invoices"] == []


def test_multi_attach_creates_its_customer_and_entity_from_their_data(api: Api) -> None:
    api(
        "plans.create",
        plan_id="boost",
        name="Boost",
        add_on=True,
        items=[{"feature_id": "messages", "included": 50}],
    )
    plans = [{"plan_id": "boost"}]
    missing = api("billing.multi_attach", expect=404, customer_id="ada", plans=plans)
    assert missing["code"] == "customer_not_found"  # no customer_data: nothing to create it from
    refused = api(
        "billing.multi_attach",
        expect=404,
        customer_id="ada",
        customer_data={"name": "Ada"},
        plans=[{"plan_id": "no_such_plan"}],
    )
    assert refused["code"] == "product_not_found"  # Autumn's code for an unknown plan
    api("customers.get", expect=404, customer_id="ada")  # a refused attach creates nothing
    api(
        "billing.multi_attach",
        customer_id="ada",
        customer_data={"name": "Ada", "email": "ada@example.com"},
        entity_id="w1",
        entity_data={"feature_id": "seats", "name": "Main workspace"},
        plans=plans,
    )
    customer = api("customers.get", customer_id="ada")
    assert (customer["name"], customer["email"]) == ("Ada", "ada@example.com")
    entity = api("entities.get", customer_id="ada", entity_id="w1")
    assert entity["name"] == "Main workspace"
    assert [s["plan_id"] for s in entity["subscriptions"] if s["plan_id"] == "boost"] == ["boost"]
    again = api(  # both exist now: their data changes nothing
        "billing.multi_attach",
        customer_id="ada",
        customer_data={"name": "Someone else"},
        entity_id="w1",
        entity_data={"feature_id": "seats", "name": "Renamed"},
        plans=plans,
    )
    assert again["customer_id"] == "ada"
    assert api("customers.get", customer_id="ada")["name"] == "Ada"
    assert api("entities.get", customer_id="ada", entity_id="w1")["name"] == "Main workspace"


def test_multi_attach_and_schedule_through_checkout(api: Api) -> None:
    api(
        "plans.create",
        plan_id="extra",
        name="Extra",
        add_on=True,
        price={"amount": 20, "interval": "month"},
        items=[{"feature_id": "messages", "included": 200, "reset": {"interval": "month"}}],
    )
    api("customers.get_or_create", customer_id="u1")
    multi = api("billing.multi_attach", customer_id="u1", plans=[{"plan_id": "pro"}, {"plan_id": "extra"}])
    assert multi["payment_url"] is not None
    assert "$40.00" in httpx.get(multi["payment_url"]).text
    assert api.pay(multi["payment_url"]).status_code == 303
    assert api.plans_of("u1") == {"pro": "active", "extra": "active"}

    api("customers.get_or_create", customer_id="u2")
    later = ms(2026, 4, 20)
    schedule = api(
        "billing.create_schedule",
        customer_id="u2",
        phases=[
            {"starts_at": START, "plans": [{"plan_id": "premium"}]},
            {"starts_at": later, "plans": [{"plan_id": "pro"}]},
        ],
    )
    assert schedule["status"] == "pending_payment" and schedule["phases"] == []
    assert api.pay(schedule["payment_url"]).status_code == 303
    assert api.plans_of("u2") == {"premium": "active", "pro": "scheduled"}


def test_failed_renewal_is_past_due_until_a_new_card_pays_it(api: Api) -> None:
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="pro")
    portal = api("billing.open_customer_portal", customer_id="u1")["url"]
    assert (
        api.pay(portal + "/payment-method", "4000 0000 0000 0341").status_code == 303
    )  # saved; charges fail
    api.clock.set(ms(2026, 5, 1) + 1)
    invoices = api.customer("u1")["invoices"]
    assert [(i["status"], i["total"]) for i in invoices] == [("open", 20), ("paid", 20)]
    assert httpx.get(portal).status_code == 410  # portal links are short-lived
    portal = api("billing.open_customer_portal", customer_id="u1")["url"]
    assert "past due" in httpx.get(portal).text
    assert api.plans_of("u1") == {"pro": "active"}  # access continues while past due
    assert api.pay(portal + "/payment-method", "4242 4242 4242 4242").status_code == 303
    assert [i["status"] for i in api.customer("u1")["invoices"]] == ["paid", "paid"]
    assert "past due" not in httpx.get(portal).text


def test_past_due_shows_on_customer_and_entity_subscriptions_until_paid(api: Api) -> None:
    with_card(api, "u1")
    api("entities.create", customer_id="u1", entity_id="e1", feature_id="seats", name="Seat 1")
    api("billing.attach", customer_id="u1", plan_id="pro")
    api("billing.attach", customer_id="u1", entity_id="e1", plan_id="premium")

    def states() -> tuple[list[tuple[str, str, bool]], list[tuple[str, str, bool]], list[bool]]:
        customer = api.customer("u1")["subscriptions"]
        entity = api("entities.get", customer_id="u1", entity_id="e1")["subscriptions"]
        listed = api("customers.list")["list"][0]["subscriptions"]
        return (
            [(s["plan_id"], s["status"], s["past_due"]) for s in customer],
            [(s["plan_id"], s["status"], s["past_due"]) for s in entity],
            [s["past_due"] for s in listed],
        )

    assert states() == ([("pro", "active", False)], [("premium", "active", False)], [False])
    card = api("customers.get", customer_id="u1", expand=["payment_method"])["payment_method"]
    assert (card["type"], card["card"]["last4"]) == ("card", "4242")
    api.add_card("u1", "4000000000000341")  # saved, but every charge is declined
    api.clock.set(ms(2026, 5, 1) + 1)
    assert states() == ([("pro", "active", True)], [("premium", "active", True)], [True])
    assert sorted(i["status"] for i in api.customer("u1")["invoices"]) == ["open", "open", "paid", "paid"]
    api.add_card("u1")  # a working card pays the open renewals
    assert states() == ([("pro", "active", False)], [("premium", "active", False)], [False])
    assert [i["status"] for i in api.customer("u1")["invoices"]] == ["paid"] * 4


class Held:
    """Mixed into a processor: each charge is held until the test lets it go (a slow payment network)."""

    charging: threading.Event
    go_on: threading.Event

    def charge(self, *args: Any, **kwargs: Any) -> Any:
        self.charging.set()
        assert self.go_on.wait(60), "the test never released the charge"
        return super().charge(*args, **kwargs)  # type: ignore[misc]


class HeldLocal(Held, LocalProcessor):
    pass


class HeldStripe(Held, StripeProcessor):
    pass


def held_charges(api: Api) -> Held:
    """The test's processor (local, or Stripe with the server's key), holding its charges."""
    held: Held = HeldLocal() if api.stripe is None else HeldStripe(STRIPE_KEY, api.stripe_api)
    held.charging, held.go_on = threading.Event(), threading.Event()
    return held


def test_a_second_billing_change_while_one_is_in_flight_gets_429(api: Api) -> None:
    with_card(api, "u1")
    held = held_charges(api)
    api.server.app.state.autumn.processors = Processors(default=held)
    # A second server process on the same database: the lock must hold across workers too.
    with run_server(api.server.database_url, clock=api.clock) as other, ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(api, "billing.attach", customer_id="u1", plan_id="pro")
        assert held.charging.wait(60)  # the first attach is now inside its charge
        second = httpx.Client(base_url=other.url, headers=other.headers, timeout=60)
        # A SQLite server answers one request at a time (on its event loop), so there the second
        # request can only come through the other process; PostgreSQL servers run requests in threads.
        clients = [second] if api.server.database_url.startswith("sqlite") else [api.http, second]
        for op, body in (
            ("billing.attach", {"plan_id": "premium"}),
            ("billing.update", {"plan_id": "free", "cancel_action": "cancel_end_of_cycle"}),
            ("billing.multi_attach", {"plans": [{"plan_id": "premium"}]}),
        ):
            for client in clients:
                response = client.post(f"/v1/{op}", json={"customer_id": "u1", **body})
                assert response.status_code == 429, (op, response.text)
                assert response.json()["code"] == "lock_already_exists"
        held.go_on.set()
        assert in_flight.result()["invoice"]["total"] == 20
        second.close()
    assert api.plans_of("u1") == {"pro": "active"}
    upgrade = api("billing.attach", customer_id="u1", plan_id="premium")  # the lock was released
    assert upgrade["invoice"]["total"] == 30


def test_unpaid_retry_links_expire_and_void_their_invoice(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    api.add_card("u1", "4000002760003184")
    result = api("billing.attach", customer_id="u1", plan_id="pro")
    assert result["required_action"]["code"] == "3ds_required"
    assert httpx.get(result["payment_url"]).status_code == 200
    api.clock.advance(11 * 60_000)
    assert httpx.get(result["payment_url"]).status_code == 410
    assert [i["status"] for i in api.customer("u1")["invoices"]] == ["void"]
    assert api.plans_of("u1") == {"free": "active"}


def test_trial_needing_a_card_collects_it_at_checkout_without_an_invoice(api: Api) -> None:
    create_trial_pro(api, 7)
    api("customers.get_or_create", customer_id="u1")
    result = api("billing.attach", customer_id="u1", plan_id="trial_pro")
    page = httpx.get(result["payment_url"])
    assert "$0.00" in page.text and f">{api.card_button('$0.00')}<" in page.text
    assert api.pay(result["payment_url"]).status_code == 303
    customer = api.customer("u1")
    assert customer["subscriptions"][0]["trial_ends_at"] == START + 7 * DAY
    assert customer["invoices"] == []
    api.clock.set(START + 7 * DAY + 1)
    assert [i["total"] for i in api.customer("u1")["invoices"]] == [20]


def test_a_unique_fingerprint_trial_is_used_once_per_fingerprint(api: Api) -> None:
    trial = {"duration_length": 7, "duration_type": "day", "card_required": True}
    for plan_id, extra in (("fp_pro", {"unique_fingerprint": True}), ("any_pro", {})):
        api(
            "plans.create",
            plan_id=plan_id,
            name=plan_id,
            group=plan_id,
            price={"amount": 20, "interval": "month"},
            items=[{"feature_id": "messages", "included": 1000, "reset": {"interval": "month"}}],
            free_trial={**trial, **extra},
        )
    assert api("plans.get", plan_id="fp_pro")["free_trial"]["unique_fingerprint"] is True
    for customer_id, fingerprint in (("u1", "device-1"), ("u2", "device-1"), ("u3", "device-2")):
        api("customers.get_or_create", customer_id=customer_id, fingerprint=fingerprint)
        api.add_card(customer_id)

    def attach(customer_id: str, plan_id: str) -> tuple[int | None, list[int]]:
        api("billing.attach", customer_id=customer_id, plan_id=plan_id)
        customer = api.customer(customer_id)
        (sub,) = [s for s in customer["subscriptions"] if s["plan_id"] == plan_id]
        return sub["trial_ends_at"], [i["total"] for i in customer["invoices"]]

    def trial_available(customer_id: str) -> bool:
        plan = api("plans.get", plan_id="fp_pro", customer_id=customer_id)
        return bool(plan["customer_eligibility"]["trial_available"])

    trial_end = START + 7 * DAY
    assert (trial_available("u1"), trial_available("u2")) == (True, True)
    assert attach("u1", "fp_pro") == (trial_end, [])
    assert (trial_available("u2"), trial_available("u3")) == (False, True)
    assert attach("u2", "fp_pro") == (None, [20])  # same fingerprint: the trial is gone, billed now
    assert attach("u3", "fp_pro") == (trial_end, [])  # another fingerprint still gets it
    assert attach("u1", "any_pro") == (trial_end, [])
    assert attach("u2", "any_pro") == (trial_end, [20])  # without the option, per customer only


def test_upgrade_carries_over_usage_or_balance_when_asked(api: Api) -> None:
    for customer_id, option in (("u1", "carry_over_usages"), ("u2", "carry_over_balances")):
        with_card(api, customer_id)
        api("billing.attach", customer_id=customer_id, plan_id="pro")
        api("balances.track", customer_id=customer_id, feature_id="messages", value=300)
        api("billing.attach", customer_id=customer_id, plan_id="premium", **{option: {"enabled": True}})
    usage_kept = api.customer("u1")["balances"]["messages"]
    assert (usage_kept["granted"], usage_kept["remaining"], usage_kept["usage"]) == (5000, 4700, 300)
    balance_kept = api.customer("u2")["balances"]["messages"]
    assert (balance_kept["granted"], balance_kept["remaining"]) == (5700, 5700)
    rows = sorted(row["included_grant"] for row in balance_kept["breakdown"])
    assert rows == [700, 5000]


def test_per_seat_example_prepaid_and_usage_based(api: Api) -> None:
    seats_price = {"amount": 10, "interval": "month", "billing_units": 1}
    api(
        "plans.create",
        plan_id="team",
        name="Team",
        group="seats",
        price={"amount": 20, "interval": "month"},
        items=[{"feature_id": "seats", "included": 5, "price": {**seats_price, "billing_method": "prepaid"}}],
    )
    api(
        "plans.create",
        plan_id="team_payg",
        name="Team PAYG",
        group="seats",
        price={"amount": 20, "interval": "month"},
        items=[
            {"feature_id": "seats", "included": 5, "price": {**seats_price, "billing_method": "usage_based"}}
        ],
    )
    api(
        "plans.create",
        plan_id="seats_free",
        name="Seats free",
        group="seats",
        auto_enable=True,
        items=[{"feature_id": "seats", "included": 3}],
    )
    api("customers.get_or_create", customer_id="org")
    api("balances.track", customer_id="org", feature_id="seats", value=2)
    api.add_card("org")
    attach = api(
        "billing.attach",
        customer_id="org",
        plan_id="team",
        feature_quantities=[{"feature_id": "seats", "quantity": 8}],
    )
    assert attach["invoice"]["total"] == 50  # $20 base + 3 extra seats x $10
    seats = api.customer("org")["balances"]["seats"]
    assert (seats["granted"], seats["usage"]) == (8, 2)  # seat usage carries over from the free plan
    api.clock.advance(15 * DAY)
    update = api(
        "billing.update",
        customer_id="org",
        plan_id="team",
        feature_quantities=[{"feature_id": "seats", "quantity": 10}],
    )
    assert update["invoice"]["total"] == 10  # 2 more seats x $10 for half the month

    with_card(api, "org2")
    api("billing.attach", customer_id="org2", plan_id="team_payg")
    api("balances.track", customer_id="org2", feature_id="seats", value=10)
    api.clock.set(ms(2026, 5, 16) + 1)  # org2 subscribed on April 16
    totals = [i["total"] for i in api.customer("org2")["invoices"]]
    # the tracked seats are billed at once (5 over the 5 included x $10, a full period left), then the
    # renewal: $20 base + the 5 seats over
    assert totals == [70, 50, 20]


def test_entities_on_paid_seats_bill_per_the_items_proration(api: Api) -> None:
    def seats_plan(plan_id: str, method: str, **proration: str) -> None:
        item: dict[str, Any] = {
            "feature_id": "seats",
            "included": 2,
            "price": {"amount": 10, "interval": "month", "billing_method": method},
        }
        if proration:
            item["proration"] = proration
        api(
            "plans.create",
            plan_id=plan_id,
            name=plan_id,
            price={"amount": 20, "interval": "month"},
            items=[item],
        )

    seats_plan("seats_prorated", "usage_based")  # Autumn's default: prorate both ways
    seats_plan("seats_full", "usage_based", on_increase="bill_immediately", on_decrease="none")
    seats_plan("seats_prepaid", "prepaid")

    def invoices(customer_id: str) -> list[int | float]:
        return [i["total"] for i in reversed(api.customer(customer_id)["invoices"])]

    def seat(customer_id: str, n: int, create: bool = True) -> None:
        if create:
            api(
                "entities.create", customer_id=customer_id, entity_id=f"{customer_id}-{n}", feature_id="seats"
            )
        else:
            api("entities.delete", customer_id=customer_id, entity_id=f"{customer_id}-{n}")

    for customer_id, plan_id in (("a", "seats_prorated"), ("b", "seats_full"), ("c", "seats_prepaid")):
        with_card(api, customer_id)
        quantities = (
            {"feature_quantities": [{"feature_id": "seats", "quantity": 3}]}
            if plan_id == "seats_prepaid"
            else {}
        )
        api("billing.attach", customer_id=customer_id, plan_id=plan_id, **quantities)
        seat(customer_id, 1)
        seat(customer_id, 2)  # the two included seats cost nothing more
    assert (invoices("a"), invoices("b"), invoices("c")) == ([20], [20], [30])

    api.clock.advance(15 * DAY)  # half of April left
    for customer_id in ("a", "b", "c"):
        seat(customer_id, 3)
    assert invoices("a") == [20, 5]  # a third seat: $10 for the half month left
    assert invoices("b") == [20, 10]  # bill_immediately: the full $10
    assert invoices("c") == [30]  # prepaid: the third seat was bought upfront
    assert api.customer("c")["balances"]["seats"]["remaining"] == 0
    denied = api("entities.create", expect=400, customer_id="c", entity_id="c-4", feature_id="seats")
    assert denied["code"] == "feature_limit_reached"  # beyond the prepaid quantity

    api.clock.advance(6 * DAY)  # 9 of 30 days left
    for customer_id in ("a", "b"):
        seat(customer_id, 3, create=False)
    assert invoices("a") == [20, 5, -3]  # credit for the 9 unused days of the removed seat
    assert invoices("b") == [20, 10]  # on_decrease none: no credit
    seat("a", 3)
    seat("a", 4)  # two more seats beyond the included: $10 x 9/30 each
    assert invoices("a") == [20, 5, -3, 3, 3]

    api.clock.set(ms(2026, 5, 1) + 1)  # renewal: base plus the seats in use beyond the included, upfront
    assert invoices("a")[-1] == 40
    assert invoices("b")[-1] == 20
    assert invoices("c")[-1] == 30


def test_one_off_prepaid_top_ups_stack(api: Api) -> None:
    api("features.create", feature_id="credits", name="Credits", type="metered", consumable=True)
    api(
        "plans.create",
        plan_id="credit_pack",
        name="Credit pack",
        add_on=True,
        items=[
            {
                "feature_id": "credits",
                "included": 0,
                "price": {
                    "amount": 5,
                    "interval": "one_off",
                    "billing_method": "prepaid",
                    "billing_units": 100,
                },
            }
        ],
    )
    with_card(api, "u1")
    pack = [{"feature_id": "credits", "quantity": 250}]  # rounds up to 3 packs of 100
    assert (
        api("billing.preview_attach", customer_id="u1", plan_id="credit_pack", feature_quantities=pack)[
            "total"
        ]
        == 15
    )
    api("billing.attach", customer_id="u1", plan_id="credit_pack", feature_quantities=pack)
    api(
        "billing.attach",
        customer_id="u1",
        plan_id="credit_pack",
        feature_quantities=[{"feature_id": "credits", "quantity": 100}],
    )
    customer = api.customer("u1")
    assert customer["balances"]["credits"]["granted"] == 400
    assert [p["plan_id"] for p in customer["purchases"]] == ["credit_pack", "credit_pack"]
    assert [i["total"] for i in customer["invoices"]] == [5, 15]


def test_an_unpaid_seat_charge_creates_no_entity_and_voids_its_invoice(api: Api) -> None:
    """Money and balances move together: a declined or off-session 3-D Secure seat charge changes nothing."""
    api(
        "plans.create",
        plan_id="team",
        name="Team",
        price={"amount": 20, "interval": "month"},
        items=[
            {
                "feature_id": "seats",
                "included": 1,
                "price": {"amount": 10, "interval": "month", "billing_method": "usage_based"},
            }
        ],
    )
    with_card(api, "t")
    api("billing.attach", customer_id="t", plan_id="team")
    api("entities.create", customer_id="t", entity_id="t-1", feature_id="seats")  # the included seat
    api.clock.advance(15 * DAY)

    def invoices() -> list[tuple[int | float, str]]:
        return [(i["total"], i["status"]) for i in reversed(api.customer("t")["invoices"])]

    for card, reason in (("4000000000000341", "declined"), ("4000002760003184", "authentication")):
        api.add_card("t", card)
        failed = api("entities.create", expect=402, customer_id="t", entity_id="t-2", feature_id="seats")
        assert failed["code"] == "invoice_payment_failed" and reason in failed["message"]
        assert api("entities.get", expect=404, customer_id="t", entity_id="t-2")["code"] == "entity_not_found"
        seats = api.customer("t")["balances"]["seats"]
        assert (seats["usage"], seats["remaining"]) == (1, 0)
    assert invoices() == [(20, "paid"), (5, "void"), (5, "void")]  # each attempt kept, nothing owed

    api.add_card("t")
    api("entities.create", customer_id="t", entity_id="t-2", feature_id="seats")
    assert invoices() == [(20, "paid"), (5, "void"), (5, "void"), (5, "paid")]
    assert api.customer("t")["balances"]["seats"]["usage"] == 2


def test_next_cycle_seat_prorations_land_on_the_renewal_invoice(api: Api) -> None:
    """``prorate_next_cycle`` charges or credits nothing now; the prorated amounts are added at renewal."""
    api(
        "plans.create",
        plan_id="team",
        name="Team",
        price={"amount": 20, "interval": "month"},
        items=[
            {
                "feature_id": "seats",
                "included": 1,
                "price": {"amount": 10, "interval": "month", "billing_method": "usage_based"},
                "proration": {"on_increase": "prorate_next_cycle", "on_decrease": "prorate_next_cycle"},
            }
        ],
    )
    with_card(api, "n")
    api("billing.attach", customer_id="n", plan_id="team")

    def charged() -> list[int | float]:
        invoices = reversed(api.customer("n")["invoices"])
        return [i["total"] for i in invoices if i["status"] != "draft"]

    api("entities.create", customer_id="n", entity_id="n-1", feature_id="seats")  # the included seat
    api.clock.advance(15 * DAY)  # half of April left
    api("entities.create", customer_id="n", entity_id="n-2", feature_id="seats")  # +$5.00 pending
    api.clock.advance(6 * DAY)  # 9 of 30 days left
    api("entities.create", customer_id="n", entity_id="n-3", feature_id="seats")  # +$3.00 pending
    api("entities.delete", customer_id="n", entity_id="n-2")  # -$3.00 pending
    assert charged() == [20]  # nothing charged or credited mid-cycle
    assert api.customer("n")["balances"]["seats"]["usage"] == 2

    api.clock.set(ms(2026, 5, 1) + 1)
    # $20 base + 1 seat beyond the included for May ($10) + the April prorations (5 + 3 - 3)
    assert charged() == [20, 35]
    assert [i["status"] for i in api.customer("n")["invoices"]] == ["paid", "paid"]  # no pending left


def test_credit_that_covers_an_open_invoice_pays_it_and_nothing_stays_owed(api: Api) -> None:
    """An invoice-mode invoice paid when the customer's credit covers it: paid from the credit, the card
    is not charged, and the processor holds nothing open for it (on Stripe, its invoice is voided)."""
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="premium")
    api.clock.advance(15 * DAY)
    cancel = api("billing.update", customer_id="u1", plan_id="premium", cancel_action="cancel_immediately")
    assert cancel["invoice"]["total"] == -25  # $25 of credit
    opened = api("billing.attach", customer_id="u1", plan_id="pro", invoice_mode={"enabled": True})
    invoice = opened["invoice"]
    assert (invoice["status"], invoice["total"]) == ("open", 20)
    assert api.on_processor(invoice) == ("open", 2000)
    page = httpx.post(invoice["hosted_invoice_url"], data={"use_saved": "1"})
    assert page.status_code == 303, page.text
    assert api.plans_of("u1") == {"pro": "active"}
    customer = api.customer("u1")
    assert [(i["status"], i["total"]) for i in customer["invoices"]] == [
        ("paid", 20),
        ("paid", -25),
        ("paid", 50),
    ]
    assert api.on_processor(customer["invoices"][0])[0] in ("paid", "void")
    # the $5 left pays part of the next invoice ($50 for premium less the unused $20 of pro)
    upgrade = api("billing.attach", customer_id="u1", plan_id="premium")
    assert (upgrade["invoice"]["total"], upgrade["invoice"]["status"]) == (30, "paid")
    assert api.on_processor(upgrade["invoice"]) == ("paid", 2500)  # the card paid $25 of it


def test_a_declined_saved_card_gets_a_retry_link_that_a_new_card_pays(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    api.add_card("u1", "4000000000000341")  # saved, but every charge is declined
    result = api("billing.attach", customer_id="u1", plan_id="pro")
    assert result["required_action"]["code"] == "payment_failed" and result["payment_url"] is not None
    assert api.plans_of("u1") == {"free": "active"}
    (invoice,) = api.customer("u1")["invoices"]
    assert (invoice["status"], invoice["total"]) == ("open", 20)
    assert api.on_processor(invoice) == ("open", 2000)
    assert api.pay(result["payment_url"], "4000000000000002").status_code == 402  # declined again
    assert api.plans_of("u1") == {"free": "active"}
    assert api.pay(result["payment_url"]).status_code == 303
    assert api.plans_of("u1") == {"pro": "active"}
    (invoice,) = api.customer("u1")["invoices"]
    assert api.on_processor(invoice) == ("paid", 2000)
    card = api("customers.get", customer_id="u1", expand=["payment_method"])["payment_method"]
    assert card["card"]["last4"] == "4242"  # the new card is the default now


def test_a_card_authenticated_when_saved_pays_later_charges_without_asking_again(api: Api) -> None:
    """``4000 0025 0000 3155`` asks for 3-D Secure when it is saved; once saved that way, later charges
    (an attach, a renewal) go through without the customer."""
    api("customers.get_or_create", customer_id="u1")
    api.add_card("u1", "4000002500003155")
    result = api("billing.attach", customer_id="u1", plan_id="pro")
    assert result["payment_url"] is None and result["invoice"]["status"] == "paid"
    api.clock.set(ms(2026, 5, 1) + 1)
    invoices = api.customer("u1")["invoices"]
    assert [(i["status"], i["total"]) for i in invoices] == [("paid", 20), ("paid", 20)]
    assert [api.on_processor(i) for i in invoices] == [("paid", 2000), ("paid", 2000)]
