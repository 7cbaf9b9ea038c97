"""The Stripe processor against localstripe (nothing leaves the machine)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from reference_server.billing.sessions import create_checkout_session
from reference_server.clock import ManualClock
from reference_server.engine.billing import Subscription, quote_attach, quote_cancel
from reference_server.pages import PageActions, PagesContext, billing_page_routes
from reference_server.processors.cards import CardError, CardInput
from reference_server.processors.contract import ChargeStatus
from reference_server.processors.registry import Processors
from reference_server.processors.stripe.processor import StripeProcessor
from reference_server.store.credits import credit_balance
from reference_server.store.customer_lookup import CustomerRef
from reference_server.store.db import Database
from reference_server.store.tables.billing import invoices
from reference_server.store.tables.core import customers
from tests.engine.builders import PREMIUM, PRO, ms

from .fixtures_db import add_customer, add_org, migrated_database
from .localstripe_server import localstripe, stripe_checkout_url, submit_stripe_card
from .serve import serve

NOW = ms(2026, 4, 1)
BASE = "http://127.0.0.1:9999"


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[str]:
    with localstripe() as url:
        yield url


@pytest.fixture
def setup(tmp_path: Path, stripe_api: str) -> Iterator[tuple[Database, CustomerRef, StripeProcessor]]:
    db = migrated_database(tmp_path)
    org = add_org(db)
    customer = CustomerRef(add_customer(db, org, "cus_1", "ada@example.com"), "cus_1", "ada@example.com")
    yield db, customer, StripeProcessor("sk_test_reference", stripe_api)
    db.dispose()


def card(number: str) -> CardInput:
    return CardInput(number, 12, 2030, "123")


def invoice_intent(processor: StripeProcessor, stripe_invoice_id: str) -> Any:
    """The Stripe invoice a server invoice became, and the PaymentIntent that paid it."""
    invoice = processor.client.v1.invoices.retrieve(stripe_invoice_id, {"expand": ["payments"]})
    intent_id = invoice.payments.data[-1].payment.payment_intent
    return invoice, processor.client.v1.payment_intents.retrieve(str(intent_id))


def refreshed(db: Database, customer: CustomerRef) -> CustomerRef:
    with db.read() as conn:
        stripe_id = conn.execute(select(customers.c.stripe_id).where(customers.c.pk == customer.pk)).scalar()
    return CustomerRef(customer.pk, customer.id, customer.email, customer.name, stripe_id)


def test_customer_card_and_charge_live_in_stripe(
    setup: tuple[Database, CustomerRef, StripeProcessor],
) -> None:
    db, customer, processor = setup
    with db.write() as conn:
        saved = processor.add_card(conn, customer, card("4242424242424242"), NOW)
    customer = refreshed(db, customer)
    assert customer.processor_id is not None and customer.processor_id.startswith("cus_")
    remote = processor.client.v1.customers.retrieve(customer.processor_id)
    assert remote.email == "ada@example.com"
    assert remote.invoice_settings.default_payment_method == saved.payment_method.processor_id
    with db.write() as conn:
        outcome = processor.charge(conn, customer, quote_attach(None, PRO, NOW).due_now, "attach", NOW, BASE)
    assert outcome.status is ChargeStatus.PAID
    assert outcome.invoice is not None and outcome.invoice.to_api()["total"] == 20
    stripe_invoice, intent = invoice_intent(processor, str(outcome.invoice.processor_id))
    assert (intent.amount, intent.status, intent.customer) == (2000, "succeeded", customer.processor_id)
    assert stripe_invoice.metadata["autumn_invoice_id"] == outcome.invoice.id


def test_declines_surface_as_card_errors(setup: tuple[Database, CustomerRef, StripeProcessor]) -> None:
    db, customer, processor = setup
    with db.write() as conn, pytest.raises(CardError) as caught:
        processor.add_card(conn, customer, card("4000000000000002"), NOW)
    assert caught.value.code == "card_declined"
    with db.write() as conn:
        processor.add_card(conn, customer, card("4000000000000341"), NOW)  # attaches, then fails to charge
        outcome = processor.charge(
            conn, refreshed(db, customer), quote_attach(None, PRO, NOW).due_now, "attach", NOW, BASE
        )
    assert outcome.status is ChargeStatus.FAILED
    assert outcome.required_action() == {"code": "payment_failed", "reason": "Your card was declined."}


def test_authentication_then_authenticated_retry(
    setup: tuple[Database, CustomerRef, StripeProcessor],
) -> None:
    db, customer, processor = setup
    with db.write() as conn:
        saved = processor.add_card(conn, customer, card("4000002500003155"), NOW)
        assert saved.needs_authentication
        ref = refreshed(db, customer)
        first = processor.charge(
            conn,
            ref,
            quote_attach(None, PRO, NOW).due_now,
            "attach",
            NOW,
            BASE,
            payment_method=saved.payment_method,
        )
        assert first.status is ChargeStatus.REQUIRES_ACTION
        assert first.invoice is not None
        paid = processor.retry_invoice(
            conn, ref, first.invoice, NOW, saved.payment_method, authenticated=True
        )
    assert paid.status is ChargeStatus.PAID
    _, intent = invoice_intent(processor, str(paid.invoice.processor_id))  # type: ignore[union-attr]
    assert intent.status == "succeeded"


def test_credit_from_a_cancellation_is_spent_first(
    setup: tuple[Database, CustomerRef, StripeProcessor],
) -> None:
    db, customer, processor = setup
    current = Subscription(PRO, anchor=NOW, started_at=NOW, period_start=NOW, period_end=ms(2026, 5, 1))
    with db.write() as conn:
        processor.add_card(conn, customer, card("4242424242424242"), NOW)
        ref = refreshed(db, customer)
        refund = processor.charge(
            conn, ref, quote_cancel(current, ms(2026, 4, 16), True).due_now, "cancel", NOW, BASE
        )
        assert refund.status is ChargeStatus.CREDITED
        paid = processor.charge(conn, ref, quote_attach(None, PREMIUM, NOW).due_now, "attach", NOW, BASE)
        assert credit_balance(conn, customer.pk, "usd") == 0
        row = conn.execute(select(invoices).where(invoices.c.pk == paid.invoice.pk)).one()  # type: ignore[union-attr]
    assert (row.amount_paid, row.credit_applied) == (4000, 1000)
    assert invoice_intent(processor, row.processor_id)[1].amount == 4000


def test_hosted_checkout_page_with_the_stripe_processor(
    setup: tuple[Database, CustomerRef, StripeProcessor],
) -> None:
    db, customer, processor = setup
    completed: list[str] = []
    hooks = PageActions(complete_checkout=lambda conn, session, invoice, now: completed.append(invoice.id))  # type: ignore[union-attr]
    app = Starlette(
        routes=billing_page_routes(PagesContext(db, ManualClock(NOW), Processors(default=processor), hooks))
    )
    with serve(app) as base_url, httpx.Client(base_url=base_url) as client:
        with db.write() as conn:
            _, url = create_checkout_session(
                conn, customer.pk, quote_attach(None, PRO, NOW).due_now, {"op": "attach"}, NOW, base_url
            )
        # The page takes no card numbers with Stripe: the card is set up (with 3-D Secure) on Stripe Checkout.
        page = client.get(url)
        assert 'id="stripe-button"' in page.text and 'name="card_number"' not in page.text
        form = {"card_number": "4000 0025 0000 3155", "expiry": "12/30", "cvc": "123"}
        assert client.post(url, data=form).status_code == 400
        stripe_done = submit_stripe_card(stripe_checkout_url(url, client), "4000002500003155")
        assert stripe_done.status_code == 303
        done = client.get(str(stripe_done.headers["location"]))
        assert done.status_code == 303
    assert len(completed) == 1
    with db.read() as conn:
        row = conn.execute(select(invoices)).one()
    assert row.status == "paid"
    assert invoice_intent(processor, row.processor_id)[1].status == "succeeded"
