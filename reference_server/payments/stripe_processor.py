"""Stripe as the payment processor (the official ``stripe`` package; localstripe in tests).

Customers and cards live in Stripe; money is collected with off-session PaymentIntents on the
customer's default card. The server keeps its own invoice records (with the PaymentIntent id as the
processor id), so previews, pages and the API read the same numbers whichever processor is used.
Customer credit from prorated downgrades stays in the server's credit ledger and is spent first.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import stripe
from sqlalchemy import Connection, update

from reference_server.engine.billing.invoice import InvoiceDraft
from reference_server.store.tables import customers

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

LOCAL_TEST_API = ("http://127.0.0.1", "http://localhost")


class StripeProcessor:
    """Payments through a Stripe account (``api_base`` points at localstripe in tests)."""

    name = "stripe"

    def __init__(self, secret_key: str, api_base: str | None = None) -> None:
        base = {"api": api_base} if api_base else None
        self.client = stripe.StripeClient(secret_key, base_addresses=base)  # type: ignore[arg-type]
        self.api_base = api_base or "https://api.stripe.com"

    # customers and cards ----------------------------------------------------------------------------------
    def ensure_customer(self, conn: Connection, customer: CustomerRef) -> str | None:
        if customer.processor_id:
            return customer.processor_id
        params: dict[str, Any] = {"metadata": {"autumn_customer_id": customer.id}}
        if customer.email:
            params["email"] = customer.email
        if customer.name:
            params["name"] = customer.name
        created = self.client.v1.customers.create(params)  # type: ignore[arg-type]
        conn.execute(update(customers).where(customers.c.pk == customer.pk).values(stripe_id=created.id))
        return str(created.id)

    def default_payment_method(self, conn: Connection, customer: CustomerRef) -> PaymentMethodInfo | None:
        return default_payment_method(conn, customer.pk)

    def add_card(self, conn: Connection, customer: CustomerRef, card: CardInput, now: int) -> CardSetup:
        today = dt.datetime.fromtimestamp(now / 1000, tz=dt.timezone.utc).date()
        checked = check_card(card, today)
        stripe_customer = self.ensure_customer(conn, customer)
        try:
            pm = self.client.v1.payment_methods.create(
                {
                    "type": "card",
                    "card": {
                        "number": checked.number,
                        "exp_month": checked.exp_month,
                        "exp_year": checked.exp_year,
                        "cvc": card.cvc,
                    },
                }
            )
            self.client.v1.payment_methods.attach(pm.id, {"customer": str(stripe_customer)})
        except stripe.CardError as exc:
            raise CardError(
                exc.code or "card_declined", exc.user_message or "Your card was declined."
            ) from exc
        needs_auth = checked.behavior in (CardBehavior.AUTHENTICATE_ONCE, CardBehavior.AUTHENTICATE_ALWAYS)
        if not needs_auth:
            self._make_default(str(stripe_customer), pm.id)
        info = store_payment_method(
            conn,
            customer.pk,
            self.name,
            checked.brand,
            checked.last4,
            checked.exp_month,
            checked.exp_year,
            checked.behavior.value,
            now,
            processor_id=pm.id,
            make_default=not needs_auth,
        )
        return CardSetup(info, needs_auth)

    def _make_default(self, stripe_customer: str, pm_id: str) -> None:
        self.client.v1.customers.update(
            stripe_customer, {"invoice_settings": {"default_payment_method": pm_id}}
        )

    def confirm_card(
        self, conn: Connection, customer: CustomerRef, payment_method: PaymentMethodInfo
    ) -> None:
        stripe_customer = self.ensure_customer(conn, customer)
        if payment_method.processor_id:
            self._make_default(str(stripe_customer), payment_method.processor_id)
        behavior = payment_method.behavior
        if behavior == CardBehavior.AUTHENTICATE_ONCE.value:
            behavior = CardBehavior.SUCCEED.value
        set_payment_method_behavior(conn, payment_method.pk, behavior, make_default=True)

    # charges ------------------------------------------------------------------------------------------------
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

    def _authenticate_in_test_mode(self, intent: Any) -> Any:
        """Complete 3-D Secure the way a browser would; only test servers (localstripe) offer this."""
        response = self.client.raw_request(
            "post",
            f"/v1/payment_intents/{intent.id}/_authenticate",
            client_secret=intent.client_secret,
            success="true",
        )
        return self.client.deserialize(response, api_mode="V1")

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
        intent_id: str | None = None
        if due > 0:
            pm = payment_method or default_payment_method(conn, customer.pk)
            if pm is None or pm.processor_id is None:
                return ChargeOutcome(ChargeStatus.PAYMENT_METHOD_REQUIRED, invoice)
            stripe_customer = self.ensure_customer(conn, customer)
            try:
                intent = self.client.v1.payment_intents.create(
                    {
                        "amount": due,
                        "currency": invoice.currency,
                        "customer": str(stripe_customer),
                        "payment_method": pm.processor_id,
                        "confirm": True,
                        "off_session": True,
                        "metadata": {"autumn_invoice_id": invoice.id},
                    }
                )
            except stripe.CardError as exc:
                message = exc.user_message or DECLINE_MESSAGES[CardBehavior.DECLINE][1]
                record_charge(
                    conn, invoice.pk, pm.pk, due, "failed", now, exc.code or "card_declined", message
                )
                return ChargeOutcome(ChargeStatus.FAILED, invoice, exc.code or "card_declined", message)
            if intent.status == "requires_action" and authenticated:
                intent = self._authenticate_in_test_mode(intent)
            if intent.status == "requires_action":
                record_charge(conn, invoice.pk, pm.pk, due, "requires_action", now, "authentication_required")
                return ChargeOutcome(
                    ChargeStatus.REQUIRES_ACTION,
                    invoice,
                    "authentication_required",
                    "The payment requires authentication",
                )
            if intent.status != "succeeded":
                message = DECLINE_MESSAGES[CardBehavior.DECLINE][1]
                record_charge(conn, invoice.pk, pm.pk, due, "failed", now, "card_declined", message)
                return ChargeOutcome(ChargeStatus.FAILED, invoice, "card_declined", message)
            record_charge(conn, invoice.pk, pm.pk, due, "succeeded", now)
            intent_id = str(intent.id)
        if credit > 0:
            add_credit(
                conn, customer.pk, invoice.currency, -credit, f"Applied to {invoice.id}", now, invoice.pk
            )
        set_invoice_status(
            conn, invoice.pk, "paid", now, amount_paid=due, credit_applied=credit, processor_id=intent_id
        )
        return ChargeOutcome(ChargeStatus.PAID, invoice_record(conn, invoice.pk))
