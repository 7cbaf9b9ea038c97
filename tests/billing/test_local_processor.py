"""The local processor against a real migrated database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from reference_server.engine.billing import quote_attach, quote_cancel
from reference_server.engine.billing.invoice import InvoiceDraft
from reference_server.processors.cards import CardError, CardInput
from reference_server.processors.contract import ChargeStatus
from reference_server.processors.local.processor import LocalProcessor
from reference_server.store.credits import credit_balance
from reference_server.store.customer_lookup import CustomerRef
from reference_server.store.db import Database
from reference_server.store.invoice_lines import invoice_lines_of
from reference_server.store.tables.billing import charges, invoices
from tests.engine.builders import PREMIUM, PRO, ms

from .fixtures_db import add_customer, add_org, migrated_database

NOW = ms(2026, 4, 1)
BASE = "http://127.0.0.1:9999"


def card(number: str) -> CardInput:
    return CardInput(number, 12, 2030, "123")


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Database, CustomerRef]]:
    db = migrated_database(tmp_path)
    org = add_org(db)
    customer = CustomerRef(add_customer(db, org, "cus_1"), "cus_1")
    yield db, customer
    db.dispose()


def test_charge_without_a_card_needs_a_payment_method(setup: tuple[Database, CustomerRef]) -> None:
    db, customer = setup
    processor = LocalProcessor()
    with db.write() as conn:
        outcome = processor.charge(conn, customer, quote_attach(None, PRO, NOW).due_now, "attach", NOW, BASE)
    assert outcome.status is ChargeStatus.PAYMENT_METHOD_REQUIRED
    assert outcome.required_action() == {
        "code": "payment_method_required",
        "reason": "No payment method found",
    }
    assert outcome.invoice is not None and outcome.invoice.status == "open"


def test_successful_card_pays_and_records_lines(setup: tuple[Database, CustomerRef]) -> None:
    db, customer = setup
    processor = LocalProcessor()
    with db.write() as conn:
        setup_result = processor.add_card(conn, customer, card("4242 4242 4242 4242"), NOW)
        assert not setup_result.needs_authentication
        assert processor.default_payment_method(conn, customer) == setup_result.payment_method
        outcome = processor.charge(conn, customer, quote_attach(None, PRO, NOW).due_now, "attach", NOW, BASE)
        assert outcome.status is ChargeStatus.PAID
        assert outcome.invoice is not None
        assert outcome.invoice.to_api() == {
            "status": "paid",
            "stripe_id": outcome.invoice.id,
            "total": 20,
            "currency": "usd",
            "hosted_invoice_url": f"{BASE}/invoices/{outcome.invoice.id}",
        }
        (line,) = invoice_lines_of(conn, outcome.invoice.pk)
        assert (line.amount, line.plan_id, line.kind) == (2000, "pro", "base")
        (charge,) = conn.execute(select(charges)).all()
        assert (charge.amount, charge.status) == (2000, "succeeded")


def test_invalid_and_declined_cards_are_refused(setup: tuple[Database, CustomerRef]) -> None:
    db, customer = setup
    processor = LocalProcessor()
    with db.write() as conn:
        with pytest.raises(CardError) as declined:
            processor.add_card(conn, customer, card("4000 0000 0000 0002"), NOW)
        assert declined.value.code == "card_declined"
        with pytest.raises(CardError) as wrong:
            processor.add_card(conn, customer, card("4242 4242 4242 4241"), NOW)
        assert wrong.value.code == "incorrect_number"
        with pytest.raises(CardError) as expired:
            processor.add_card(conn, customer, CardInput("4242424242424242", 1, 2020, "123"), NOW)
        assert expired.value.code == "expired_card"
        assert processor.default_payment_method(conn, customer) is None


def test_authentication_card_requires_action_until_confirmed(setup: tuple[Database, CustomerRef]) -> None:
    db, customer = setup
    processor = LocalProcessor()
    draft = quote_attach(None, PRO, NOW).due_now
    with db.write() as conn:
        result = processor.add_card(conn, customer, card("4000002500003155"), NOW)
        assert result.needs_authentication
        assert processor.default_payment_method(conn, customer) is None  # not usable before authentication
        outcome = processor.charge(
            conn, customer, draft, "attach", NOW, BASE, payment_method=result.payment_method
        )
        assert outcome.status is ChargeStatus.REQUIRES_ACTION
        assert outcome.required_action() is not None
        assert outcome.required_action()["code"] == "3ds_required"  # type: ignore[index]
        assert outcome.invoice is not None
        paid = processor.retry_invoice(
            conn, customer, outcome.invoice, NOW, result.payment_method, authenticated=True
        )
        assert paid.status is ChargeStatus.PAID
        processor.confirm_card(conn, customer, result.payment_method)
        later = processor.charge(conn, customer, draft, "renewal", NOW, BASE)  # off-session now succeeds
        assert later.status is ChargeStatus.PAID


def test_negative_invoices_become_credit_spent_before_the_card(setup: tuple[Database, CustomerRef]) -> None:
    db, customer = setup
    processor = LocalProcessor()
    from reference_server.engine.billing import Subscription

    current = Subscription(PRO, anchor=NOW, started_at=NOW, period_start=NOW, period_end=ms(2026, 5, 1))
    refund = quote_cancel(current, ms(2026, 4, 16), immediately=True).due_now
    with db.write() as conn:
        credited = processor.charge(conn, customer, refund, "cancel", NOW, BASE)
        assert credited.status is ChargeStatus.CREDITED
        assert credit_balance(conn, customer.pk, "usd") == 1000
        processor.add_card(conn, customer, card("4242424242424242"), NOW)
        upgrade = quote_attach(None, PREMIUM, NOW).due_now
        paid = processor.charge(conn, customer, upgrade, "attach", NOW, BASE)
        assert paid.status is ChargeStatus.PAID
        assert credit_balance(conn, customer.pk, "usd") == 0
        row = conn.execute(select(invoices).where(invoices.c.pk == paid.invoice.pk)).one()  # type: ignore[union-attr]
        assert (row.total, row.credit_applied, row.amount_paid) == (5000, 1000, 4000)
        zero = processor.charge(conn, customer, InvoiceDraft(()), "update", NOW, BASE)
        assert zero.status is ChargeStatus.NOTHING_DUE
