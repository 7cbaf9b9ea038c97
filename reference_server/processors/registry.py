"""Choosing the payment processor per organization: its own Stripe account, or the server default.

An organization that saved a Stripe secret key for an environment (platform API
``POST /platform/organizations/stripe``) is charged through :class:`StripeProcessor` with that key;
one that named only a connected account is charged with the server's platform key on that account.
Everyone else gets the server-wide default (``AUTUMN_PAYMENT_PROCESSOR``: local unless set to stripe).
The router itself is a :class:`PaymentProcessor`, so billing flows keep calling one object and every
call is handed to the customer's processor.
"""

from __future__ import annotations

import threading

from sqlalchemy import Connection, select

from reference_server.billing.records import CustomerRef, InvoiceRecord, PaymentMethodInfo
from reference_server.engine.billing.invoice import InvoiceDraft
from reference_server.processors.contract import CardSetup, ChargeOutcome, Collected, PaymentProcessor
from reference_server.processors.local.cards import CardInput
from reference_server.processors.stripe.processor import StripeProcessor
from reference_server.store.billing_tables import invoices
from reference_server.store.org_stripe import stripe_config
from reference_server.store.tables import customers


class OrgProcessorRouter(PaymentProcessor):
    """Hands each call to the processor of the customer's organization and environment."""

    name = "router"

    def __init__(
        self, default: PaymentProcessor, api_base: str | None = None, platform_key: str | None = None
    ) -> None:
        self.default = default
        self.api_base = api_base
        self.platform_key = platform_key
        self._stripe: dict[tuple[str, str | None], StripeProcessor] = {}
        self._lock = threading.Lock()

    def _stripe_processor(self, secret_key: str, account_id: str | None) -> StripeProcessor:
        """One client per (key, account): clients hold connection pools, so they are reused."""
        with self._lock:
            processor = self._stripe.get((secret_key, account_id))
            if processor is None:
                processor = StripeProcessor(secret_key, self.api_base, account_id)
                self._stripe[(secret_key, account_id)] = processor
            return processor

    def for_org(self, conn: Connection, org_pk: int, env: str) -> PaymentProcessor:
        config = stripe_config(conn, org_pk, env)
        if config is not None and config.secret_key:
            return self._stripe_processor(config.secret_key, None)
        if config is not None and config.account_id and self.platform_key:
            return self._stripe_processor(self.platform_key, config.account_id)
        return self.default

    def resolve(self, conn: Connection, customer_pk: int) -> PaymentProcessor:
        row = conn.execute(
            select(customers.c.org_pk, customers.c.env).where(customers.c.pk == customer_pk)
        ).one()
        return self.for_org(conn, int(row.org_pk), str(row.env))

    # every call goes to the customer's processor -----------------------------------------------------------
    def ensure_customer(self, conn: Connection, customer: CustomerRef) -> str | None:
        return self.resolve(conn, customer.pk).ensure_customer(conn, customer)

    def default_payment_method(self, conn: Connection, customer: CustomerRef) -> PaymentMethodInfo | None:
        return self.resolve(conn, customer.pk).default_payment_method(conn, customer)

    def add_card(self, conn: Connection, customer: CustomerRef, card: CardInput, now: int) -> CardSetup:
        return self.resolve(conn, customer.pk).add_card(conn, customer, card, now)

    def confirm_card(
        self, conn: Connection, customer: CustomerRef, payment_method: PaymentMethodInfo
    ) -> None:
        self.resolve(conn, customer.pk).confirm_card(conn, customer, payment_method)

    def void_invoice(self, conn: Connection, invoice: InvoiceRecord) -> bool:
        customer_pk = conn.execute(
            select(invoices.c.customer_pk).where(invoices.c.pk == invoice.pk)
        ).scalar_one()
        return self.resolve(conn, int(customer_pk)).void_invoice(conn, invoice)

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
        processor = self.resolve(conn, customer.pk)
        return processor.collect_card(conn, customer, invoice, payment_method, due, now, authenticated)

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
        return self.resolve(conn, customer.pk).charge(
            conn, customer, draft, reason, now, base_url, entity_id, payment_method, authenticated
        )

    def retry_invoice(
        self,
        conn: Connection,
        customer: CustomerRef,
        invoice: InvoiceRecord,
        now: int,
        payment_method: PaymentMethodInfo | None = None,
        authenticated: bool = False,
    ) -> ChargeOutcome:
        return self.resolve(conn, customer.pk).retry_invoice(
            conn, customer, invoice, now, payment_method, authenticated
        )
