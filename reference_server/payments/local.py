"""The reference server as its own payment processor.

Cards never leave the database (only brand, last four digits, expiry and the test-card behaviour are
kept). Negative invoices become customer credit, and credit is spent before the card on later invoices,
which is how a prorated downgrade or cancellation pays back.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection

from reference_server.engine.billing.invoice import InvoiceDraft

from .cards import DECLINE_MESSAGES, CardBehavior, CardError, CardInput, check_card
from .processor import CardSetup, ChargeOutcome, ChargeStatus
from .records import (
    CustomerRef,
    InvoiceRecord,
    PaymentMethodInfo,
    add_credit,
    create_invoice,
    credit_balance,
    default_payment_method,
    invoice_record,
    record_charge,
    set_invoice_status,
    set_payment_method_behavior,
    store_payment_method,
)


def _today(now: int) -> dt.date:
    return dt.datetime.fromtimestamp(now / 1000, tz=dt.timezone.utc).date()


class LocalProcessor:
    """Default processor: invoices, charges and cards live in the server's own tables."""

    name = "local"

    def ensure_customer(self, conn: Connection, customer: CustomerRef) -> str | None:
        return None

    def default_payment_method(self, conn: Connection, customer: CustomerRef) -> PaymentMethodInfo | None:
        return default_payment_method(conn, customer.pk)

    def add_card(self, conn: Connection, customer: CustomerRef, card: CardInput, now: int) -> CardSetup:
        checked = check_card(card, _today(now))
        if checked.behavior in DECLINE_MESSAGES and checked.behavior is not CardBehavior.DECLINE_ON_CHARGE:
            code, message = DECLINE_MESSAGES[checked.behavior]
            raise CardError(code, message)
        needs_auth = checked.behavior in (CardBehavior.AUTHENTICATE_ONCE, CardBehavior.AUTHENTICATE_ALWAYS)
        pm = store_payment_method(
            conn,
            customer.pk,
            self.name,
            checked.brand,
            checked.last4,
            checked.exp_month,
            checked.exp_year,
            checked.behavior.value,
            now,
            # A card waiting for authentication is not usable for off-session charges yet.
            make_default=not needs_auth,
        )
        return CardSetup(pm, needs_auth)

    def confirm_card(
        self, conn: Connection, customer: CustomerRef, payment_method: PaymentMethodInfo
    ) -> None:
        behavior = payment_method.behavior
        if behavior == CardBehavior.AUTHENTICATE_ONCE.value:
            behavior = CardBehavior.SUCCEED.value
        set_payment_method_behavior(conn, payment_method.pk, behavior, make_default=True)

    def charge(
        self,
        conn: Connection,
        customer: CustomerRef,
        draft: InvoiceDraft,
        reason: str,
        now: int,
        base_url: str,
        entity_id: str | None = None,
        payment_method: PaymentMethodInfo | None = None,
        authenticated: bool = False,
    ) -> ChargeOutcome:
        invoice = create_invoice(conn, customer.pk, draft, reason, self.name, now, base_url, entity_id)
        return self.retry_invoice(conn, customer, invoice, now, payment_method, authenticated)

    def retry_invoice(
        self,
        conn: Connection,
        customer: CustomerRef,
        invoice: InvoiceRecord,
        now: int,
        payment_method: PaymentMethodInfo | None = None,
        authenticated: bool = False,
    ) -> ChargeOutcome:
        total = invoice.total
        if total < 0:
            add_credit(
                conn, customer.pk, invoice.currency, -total, f"Credit from {invoice.id}", now, invoice.pk
            )
            set_invoice_status(conn, invoice.pk, "paid", now, amount_paid=0)
            return ChargeOutcome(ChargeStatus.CREDITED, invoice_record(conn, invoice.pk))
        if total == 0:
            set_invoice_status(conn, invoice.pk, "paid", now, amount_paid=0)
            return ChargeOutcome(ChargeStatus.NOTHING_DUE, invoice_record(conn, invoice.pk))
        credit = min(credit_balance(conn, customer.pk, invoice.currency), total)
        due = total - credit
        if due > 0:
            pm = payment_method or default_payment_method(conn, customer.pk)
            if pm is None:
                return ChargeOutcome(ChargeStatus.PAYMENT_METHOD_REQUIRED, invoice)
            behavior = CardBehavior(pm.behavior)
            if behavior in DECLINE_MESSAGES:
                code, message = DECLINE_MESSAGES[behavior]
                record_charge(conn, invoice.pk, pm.pk, due, "failed", now, code, message)
                return ChargeOutcome(ChargeStatus.FAILED, invoice, code, message)
            needs_auth = behavior in (CardBehavior.AUTHENTICATE_ALWAYS, CardBehavior.AUTHENTICATE_ONCE)
            if needs_auth and not authenticated:
                record_charge(conn, invoice.pk, pm.pk, due, "requires_action", now, "authentication_required")
                return ChargeOutcome(
                    ChargeStatus.REQUIRES_ACTION,
                    invoice,
                    "authentication_required",
                    "The payment requires authentication",
                )
            record_charge(conn, invoice.pk, pm.pk, due, "succeeded", now)
        if credit > 0:
            add_credit(
                conn, customer.pk, invoice.currency, -credit, f"Applied to {invoice.id}", now, invoice.pk
            )
        set_invoice_status(conn, invoice.pk, "paid", now, amount_paid=due, credit_applied=credit)
        return ChargeOutcome(ChargeStatus.PAID, invoice_record(conn, invoice.pk))
