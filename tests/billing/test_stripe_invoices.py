"""Each charge of a Stripe organization is an itemized Stripe Invoice; plans are Stripe Products and Prices.

Through the real server over HTTP, with the organization's own key on localstripe (SQLite and
PostgreSQL): the Stripe objects are read back from localstripe and compared to the cent with the
server's invoices.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData

from reference_server.store.db import Database
from reference_server.store.stripe_objects import STRIPE_OBJECT_TABLES
from reference_server.store.tables.core import INITIAL_TABLES, metadata
from reference_server.testing import fresh_database_url, postgres_available

from .helpers import AUTHENTICATE_ALWAYS, DAY, DECLINING, GOOD, JUNE, MAY, START, Tenant, seconds
from .localstripe_server import pay_through_stripe_checkout


def only_invoice(customer: dict[str, Any]) -> dict[str, Any]:
    (invoice,) = customer["invoices"]
    return dict(invoice)


def test_an_attach_is_an_itemized_stripe_invoice_on_the_plans_product(tenant: Tenant) -> None:
    invoice = only_invoice(tenant.subscribe("u1", "pro"))
    assert invoice["status"] == "paid" and invoice["stripe_id"].startswith("in_")
    paid = tenant.invoice(invoice["stripe_id"])
    assert (paid.status, paid.total, paid.amount_due, paid.amount_paid) == ("paid", 2000, 2000, 2000)
    assert paid.customer == tenant.stripe_customer() and paid.currency == "usd"
    assert tenant.rows(paid.id).id == paid.metadata["autumn_invoice_id"]
    assert [p.payment.payment_intent for p in paid.payments.data] != []
    (line,) = tenant.lines(paid.id)
    assert (line.amount, line.quantity, line.currency) == (2000, 1, "usd")
    assert (line.period.start, line.period.end) == (seconds(START), seconds(MAY))
    assert line.metadata["autumn_plan_id"] == "pro" and line.metadata["autumn_plan_version"] == "1"
    assert line.metadata["autumn_invoice_id"] == paid.metadata["autumn_invoice_id"]

    # The plan is a Product; its base price a recurring Price.  Stripe takes no recurring Price on an
    # invoice item, so the line is priced inline on the Product and names the Price in its metadata.
    product = tenant.stripe.v1.products.retrieve(line.pricing.price_details.product)
    assert product.name == "Pro"
    assert product.metadata.to_dict() == {
        "autumn_plan_id": "pro",
        "autumn_plan_version": "1",
        "autumn_env": "sandbox",
    }
    price = tenant.stripe.v1.prices.retrieve(line.metadata["autumn_stripe_price"])
    assert (price.product, price.unit_amount, price.currency, price.type) == (
        product.id,
        2000,
        "usd",
        "recurring",
    )
    assert (price.recurring.interval, price.recurring.interval_count) == ("month", 1)
    assert tenant.pending_items() == []
    assert tenant.catalog_rows() == [("pro", 1, "", product.id), ("pro", 1, "base", price.id)]

    # A one-off plan's price is a one-time Price, and the line references it with a quantity.
    boost = tenant("billing.attach", customer_id="u1", plan_id="boost")["invoice"]
    assert (boost["total"], boost["status"]) == (15, "paid")
    (boost_line,) = tenant.lines(boost["stripe_id"])
    boost_price = tenant.stripe.v1.prices.retrieve(boost_line.pricing.price_details.price)
    assert (boost_price.type, boost_price.unit_amount, boost_line.quantity, boost_line.amount) == (
        "one_time",
        1500,
        1,
        1500,
    )
    assert tenant.invoice(boost["stripe_id"]).amount_paid == 1500

    # Another customer of the same plan version reuses its Product and Price.
    second = only_invoice(tenant.subscribe("u2", "pro"))
    (second_line,) = tenant.lines(second["stripe_id"])
    assert second_line.pricing.price_details.product == product.id
    assert second_line.metadata["autumn_stripe_price"] == price.id
    assert len(tenant.catalog_rows()) == 4  # pro product and price, boost product and price
    assert len(tenant.stripe.v1.products.list({"limit": 100}).data) == 2

    # A new version of the plan (its price changed while it has customers) gets its own objects.
    tenant("plans.update", plan_id="pro", price={"amount": 25, "interval": "month"})
    third = only_invoice(tenant.subscribe("u3", "pro"))
    (third_line,) = tenant.lines(third["stripe_id"])
    assert (third_line.amount, third_line.metadata["autumn_plan_version"]) == (2500, "2")
    assert third_line.pricing.price_details.product != product.id
    v2 = tenant.stripe.v1.products.retrieve(third_line.pricing.price_details.product)
    assert (v2.name, v2.metadata["autumn_plan_version"]) == ("Pro (v2)", "2")
    assert tenant.stripe.v1.prices.retrieve(third_line.metadata["autumn_stripe_price"]).unit_amount == 2500


def test_an_upgrade_bills_its_prorations_as_amounts_on_each_plans_product(tenant: Tenant) -> None:
    tenant.subscribe("u1", "pro")
    tenant.clock.set(START + 15 * DAY)  # half of April's 30 days left
    upgrade = tenant("billing.attach", customer_id="u1", plan_id="premium")["invoice"]
    assert (upgrade["total"], upgrade["status"]) == (15, "paid")
    paid = tenant.invoice(upgrade["stripe_id"])
    assert (paid.total, paid.amount_paid, paid.status) == (1500, 1500, "paid")
    lines = {line.metadata["autumn_plan_id"]: line for line in tenant.lines(paid.id)}
    assert {plan: line.amount for plan, line in lines.items()} == {"premium": 2500, "pro": -1000}
    products = {
        plan: tenant.stripe.v1.products.retrieve(line.metadata["autumn_stripe_product"]).metadata[
            "autumn_plan_id"
        ]
        for plan, line in lines.items()
    }
    assert products == {"premium": "premium", "pro": "pro"}
    for line in lines.values():  # prorated: no Price, the period is what is left of April
        assert line.pricing is None and "autumn_stripe_price" not in line.metadata
        assert (line.period.start, line.period.end) == (seconds(START + 15 * DAY), seconds(MAY))
    assert sum(line.amount for line in lines.values()) == paid.total
    assert tenant.pending_items() == []


def test_prepaid_quantities_are_the_pack_price_times_the_packs(tenant: Tenant) -> None:
    customer = tenant.subscribe(
        "u1", "team", feature_quantities=[{"feature_id": "messages", "quantity": 300}]
    )
    invoice = only_invoice(customer)
    assert invoice["total"] == 25  # $10 base + 3 packs of 100 messages at $5
    paid = tenant.invoice(invoice["stripe_id"])
    assert (paid.total, paid.amount_paid) == (2500, 2500)
    lines = {line.metadata.to_dict().get("autumn_feature_id", "base"): line for line in tenant.lines(paid.id)}
    assert {k: (line.amount, line.quantity) for k, line in lines.items()} == {
        "base": (1000, 1),
        "messages": (1500, 3),
    }
    pack = tenant.stripe.v1.prices.retrieve(lines["messages"].metadata["autumn_stripe_price"])
    assert (pack.unit_amount, pack.type, pack.recurring.interval) == (500, "recurring", "month")
    assert pack.metadata["autumn_price"] == "prepaid:messages"
    assert lines["messages"].pricing.price_details.product == lines["base"].pricing.price_details.product


def test_credit_from_an_early_cancellation_is_a_negative_line_of_the_next_invoice(tenant: Tenant) -> None:
    tenant.subscribe("u1", "pro")
    tenant.clock.set(START + 15 * DAY)
    tenant("billing.update", customer_id="u1", plan_id="pro", cancel_action="cancel_immediately")
    refund = tenant.customer()["invoices"][0]
    assert (refund["total"], refund["status"]) == (-10, "paid")  # credit, nothing collected
    stripe_invoices = tenant.stripe.v1.invoices.list({"customer": tenant.stripe_customer()}).data
    assert len(stripe_invoices) == 1  # a credit collects nothing: no Stripe invoice for it

    attach = tenant("billing.attach", customer_id="u1", plan_id="premium")["invoice"]
    assert attach["total"] == 50
    paid = tenant.invoice(attach["stripe_id"])
    row = tenant.rows(paid.id)
    assert (row.amount_paid, row.credit_applied) == (4000, 1000)
    assert (paid.total, paid.amount_due, paid.amount_paid) == (4000, 4000, 4000)  # what the card paid
    amounts = sorted((line.amount, line.description) for line in tenant.lines(paid.id))
    assert amounts[0] == (-1000, "Applied customer credit")
    assert [a for a, _ in amounts] == [-1000, 5000]
    assert tenant.pending_items() == []


def test_a_declined_renewal_stays_one_open_stripe_invoice_until_a_new_card_pays_it(tenant: Tenant) -> None:
    tenant.subscribe("u1", "pro")
    tenant.save_card("u1", DECLINING)
    tenant.clock.set(MAY + 1)
    customer = tenant.customer()
    renewal = customer["invoices"][0]
    assert (renewal["total"], renewal["status"]) == (20, "open")
    assert [s["past_due"] for s in customer["subscriptions"]] == [True]
    open_invoice = tenant.invoice(renewal["stripe_id"])
    assert (open_invoice.status, open_invoice.amount_due, open_invoice.amount_paid) == ("open", 2000, 0)
    (line,) = tenant.lines(open_invoice.id)
    assert (line.period.start, line.period.end, line.amount) == (seconds(MAY), seconds(JUNE), 2000)
    assert tenant.pending_items() == []  # nothing left behind for a later invoice

    tenant.save_card("u1", GOOD)  # retries the open renewal with the new card
    customer = tenant.customer()
    assert [s["past_due"] for s in customer["subscriptions"]] == [False]
    assert next((i["stripe_id"], i["status"]) for i in customer["invoices"]) == (open_invoice.id, "paid")
    paid = tenant.invoice(open_invoice.id)
    assert (paid.status, paid.amount_paid) == ("paid", 2000)
    assert [p.status for p in paid.payments.data] == [
        "canceled",
        "paid",
    ]  # the declined attempt, the new card

    tenant.clock.set(JUNE + 1)  # the next renewal is charged on the engine's clock
    june = tenant.customer()["invoices"][0]
    assert (june["total"], june["status"]) == (20, "paid") and june["stripe_id"] != open_invoice.id
    (june_line,) = tenant.lines(june["stripe_id"])
    assert (june_line.period.start, june_line.amount) == (seconds(JUNE), 2000)
    assert tenant.invoice(june["stripe_id"]).amount_paid == 2000
    assert len(tenant.stripe.v1.invoices.list({"customer": tenant.stripe_customer()}).data) == 3


def test_three_d_secure_at_the_charge_completes_the_same_stripe_invoice(tenant: Tenant) -> None:
    tenant("customers.get_or_create", customer_id="u1")
    url = tenant("billing.attach", customer_id="u1", plan_id="pro")["payment_url"]
    back = pay_through_stripe_checkout(url, AUTHENTICATE_ALWAYS)
    assert back.status_code == 303 and back.headers["location"].endswith("/authenticate")
    (waiting,) = tenant.stripe.v1.invoices.list({"customer": tenant.stripe_customer()}).data
    intent = tenant.stripe.v1.payment_intents.retrieve(
        tenant.invoice(waiting.id).payments.data[-1].payment.payment_intent
    )
    assert (waiting.status, intent.status) == ("open", "requires_action")
    assert httpx.post(f"{url}/authenticate", data={"decision": "complete"}).status_code == 303
    invoice = only_invoice(tenant.customer())
    assert (invoice["stripe_id"], invoice["status"]) == (waiting.id, "paid")
    assert tenant.invoice(waiting.id).amount_paid == 2000


def test_an_unpaid_seat_charge_voids_its_stripe_invoice(tenant: Tenant) -> None:
    tenant.subscribe("u1", "team")
    tenant("entities.create", customer_id="u1", entity_id="e1", feature_id="seats")  # the included seat
    tenant.clock.set(START + 15 * DAY)
    tenant.save_card("u1", DECLINING)
    failed = tenant("entities.create", expect=402, customer_id="u1", entity_id="e2", feature_id="seats")
    assert failed["code"] == "invoice_payment_failed"
    voided = tenant.customer()["invoices"][0]
    assert (voided["total"], voided["status"]) == (5, "void")
    stripe_invoice = tenant.invoice(voided["stripe_id"])
    assert (stripe_invoice.status, stripe_invoice.amount_paid) == ("void", 0)
    (line,) = tenant.lines(stripe_invoice.id)
    assert (line.amount, line.metadata["autumn_feature_id"]) == (500, "seats")
    assert tenant.pending_items() == []

    tenant.save_card("u1", GOOD)
    tenant("entities.create", customer_id="u1", entity_id="e2", feature_id="seats")
    seat = tenant.customer()["invoices"][0]
    assert (seat["total"], seat["status"]) == (5, "paid") and seat["stripe_id"] != stripe_invoice.id
    assert tenant.invoice(seat["stripe_id"]).amount_paid == 500


def test_stripe_invoice_events_reach_the_invoice_once_with_its_payment_intent_events(tenant: Tenant) -> None:
    """A renewal paid on Stripe's side (the dashboard) announces itself twice: the PaymentIntent's
    event and the invoice's.  Our invoice is paid once, with the card's amount."""
    tenant.listen("payment_intent.succeeded", "invoice.paid", "invoice.payment_failed")
    tenant.subscribe("u1", "pro")  # paid at once: its own two events change nothing when they come
    tenant.save_card("u1", DECLINING)
    tenant.clock.set(MAY + 1)
    renewal = tenant.customer()["invoices"][0]
    assert renewal["status"] == "open"

    good = tenant.stripe.v1.payment_methods.create(
        {"type": "card", "card": {"number": GOOD, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    tenant.stripe.v1.payment_methods.attach(good.id, {"customer": tenant.stripe_customer()})
    tenant.stripe.v1.invoices.pay(renewal["stripe_id"], {"payment_method": good.id, "off_session": True})
    delivered = tenant.wait_for_events(5)
    assert sorted(delivered) == sorted(
        ["invoice.paid", "payment_intent.succeeded"] * 2 + ["invoice.payment_failed"]  # attach, renewal
    )

    customer = tenant.customer()
    assert [(i["stripe_id"], i["status"]) for i in customer["invoices"]] == [
        (renewal["stripe_id"], "paid"),
        (customer["invoices"][1]["stripe_id"], "paid"),
    ]
    assert [s["past_due"] for s in customer["subscriptions"]] == [False]
    row = tenant.rows(renewal["stripe_id"])
    assert (row.status, row.amount_paid, row.credit_applied) == ("paid", 2000, 0)


def test_signed_invoice_events_are_applied_once_per_event_id(tenant: Tenant) -> None:
    tenant("customers.get_or_create", customer_id="u1")
    opened = tenant(
        "billing.attach",
        customer_id="u1",
        plan_id="pro",
        invoice_mode={"enabled": True, "enable_plan_immediately": True},
    )["invoice"]
    assert opened["status"] == "open"
    stripe_id = opened["stripe_id"]  # invoice mode: an open send_invoice invoice on Stripe
    sent = tenant.invoice(stripe_id)
    assert (sent.status, sent.collection_method, sent.amount_due) == ("open", "send_invoice", 2000)

    def event(kind: str, event_id: str, **fields: Any) -> dict[str, Any]:
        obj = {"id": stripe_id, "object": "invoice", "status": "open", "amount_paid": 0, "total": 2000}
        obj.update(fields, metadata={"autumn_invoice_id": tenant.rows(stripe_id).id})
        return {"id": event_id, "object": "event", "type": kind, "data": {"object": obj}}

    assert tenant.send(event("invoice.payment_failed", "evt_failed"))["result"] == "past_due"
    assert [s["past_due"] for s in tenant.customer()["subscriptions"]] == [True]
    paid_event = event("invoice.paid", "evt_paid", status="paid", amount_paid=2000)
    assert tenant.send(paid_event)["result"] == "invoice_paid"
    assert tenant.send(paid_event) == {"received": True, "duplicate": True}
    late = event("payment_intent.succeeded", "evt_intent", object="payment_intent", amount=2000)
    assert tenant.send(late)["result"] == "invoice_paid"  # the same payment, already applied
    customer = tenant.customer()
    assert [s["past_due"] for s in customer["subscriptions"]] == [False]
    assert [i["status"] for i in customer["invoices"]] == ["paid"]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_migration_0005_builds_the_stripe_objects_table(kind: str) -> None:
    if kind == "postgres" and not postgres_available():
        pytest.skip("PostgreSQL is not available")
    with fresh_database_url(kind) as url:
        db = Database(url)
        db.migrate()
        core = MetaData(naming_convention=metadata.naming_convention)
        for table in (*INITIAL_TABLES, *STRIPE_OBJECT_TABLES):
            table.to_metadata(core)
        names = {t.name for t in STRIPE_OBJECT_TABLES}

        def ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
            """Only this revision's table (the organizations table is here for its foreign key)."""
            table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
            return table in names

        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": ours})
            diffs = compare_metadata(context, core)
            version = context.get_current_revision()
        db.dispose()
    assert diffs == [] and version is not None
