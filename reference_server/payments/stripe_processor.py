"""Stripe as the payment processor (the official ``stripe`` package; localstripe in tests).

Customers and cards live in Stripe; money is collected with off-session PaymentIntents on the
customer's default card. The server keeps its own invoice records (with the PaymentIntent id as the
processor id), so previews, pages and the API read the same numbers whichever processor is used.
Customer credit from prorated downgrades stays in the server's credit ledger and is spent first.
"""

from __future__ import annotations

from typing import Any

import stripe
from sqlalchemy import Connection, update

from reference_server.store.tables import customers

from .cards import DECLINE_MESSAGES, CardBehavior, CardError, CardInput, check_card
from .processor import (
    CardSetup,
    ChargeOutcome,
    Collected,
    PaymentProcessor,
    card_failed,
    card_needs_authentication,
    card_succeeded,
    utc_day,
)
from .records import CustomerRef, InvoiceRecord, PaymentMethodInfo, store_payment_method

LOCAL_TEST_API = ("http://127.0.0.1", "http://localhost")


class StripeProcessor(PaymentProcessor):
    """Payments through a Stripe account (``api_base`` points at localstripe in tests)."""

    name = "stripe"

    def __init__(
        self, secret_key: str, api_base: str | None = None, stripe_account: str | None = None
    ) -> None:
        """``secret_key`` travels with every request of this client (never the global ``stripe.api_key``),
        so processors of different organizations never share a key; ``stripe_account`` acts on a
        connected account with a platform key."""
        base = {"api": api_base} if api_base else None
        self.secret_key = secret_key
        self.stripe_account = stripe_account
        self.client = stripe.StripeClient(
            secret_key,
            stripe_account=stripe_account,
            base_addresses=base,  # type: ignore[arg-type]
        )
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

    def add_card(self, conn: Connection, customer: CustomerRef, card: CardInput, now: int) -> CardSetup:
        checked = check_card(card, utc_day(now))
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
        super().confirm_card(conn, customer, payment_method)

    # charges ------------------------------------------------------------------------------------------------
    def _authenticate_in_test_mode(self, intent: Any) -> Any:
        """Complete 3-D Secure the way a browser would; only test servers (localstripe) offer this."""
        response = self.client.raw_request(
            "post",
            f"/v1/payment_intents/{intent.id}/_authenticate",
            client_secret=intent.client_secret,
            success="true",
        )
        return self.client.deserialize(response, api_mode="V1")

    def can_charge(self, payment_method: PaymentMethodInfo) -> bool:
        return payment_method.processor_id is not None

    def collect_card(
        self,
        conn: Connection,
        customer: CustomerRef,
        invoice: InvoiceRecord,
        payment_method: PaymentMethodInfo,
        due: int,
        now: int,
        authenticated: bool,
    ) -> ChargeOutcome | Collected:
        """An off-session PaymentIntent on the saved card, confirmed at once."""
        stripe_customer = self.ensure_customer(conn, customer)
        try:
            intent = self.client.v1.payment_intents.create(
                {
                    "amount": due,
                    "currency": invoice.currency,
                    "customer": str(stripe_customer),
                    "payment_method": str(payment_method.processor_id),
                    "confirm": True,
                    "off_session": True,
                    "metadata": {"autumn_invoice_id": invoice.id},
                }
            )
        except stripe.CardError as exc:
            message = exc.user_message or DECLINE_MESSAGES[CardBehavior.DECLINE][1]
            return card_failed(conn, invoice, payment_method, due, now, exc.code or "card_declined", message)
        if intent.status == "requires_action" and authenticated:
            intent = self._authenticate_in_test_mode(intent)
        if intent.status == "requires_action":
            return card_needs_authentication(conn, invoice, payment_method, due, now)
        if intent.status != "succeeded":
            message = DECLINE_MESSAGES[CardBehavior.DECLINE][1]
            return card_failed(conn, invoice, payment_method, due, now, "card_declined", message)
        return card_succeeded(conn, invoice, payment_method, due, now, str(intent.id))
