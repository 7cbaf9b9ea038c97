"""Stripe as the payment processor (the official ``stripe`` package; localstripe in tests).

Customers and cards live in Stripe.  Every server invoice that takes money from a card becomes an
itemized Stripe Invoice on the Stripe customer (see :mod:`~reference_server.processors.stripe.catalog`
for the items, Products and Prices), finalized and paid off-session with the chosen saved card (with
no card to take it from, finalized and left open, as the server's invoice is, until a card pays it or
it is voided); the Stripe invoice id is the server invoice's processor id (``invoice.stripe_id`` in
the API).  The server keeps its own invoice records, so previews, pages and the API read the same
numbers whichever processor is used, and its engine drives renewals on its own clock: no Stripe
Subscription bills.

This class is the contract's face: customers and cards are its own; the Stripe invoice is made and
read by :mod:`~reference_server.processors.stripe.invoices` (customer credit spent as a negative
item), paid by :mod:`~reference_server.processors.stripe.payments` and given back by
:mod:`~reference_server.processors.stripe.refunds`.
"""

from __future__ import annotations

from typing import Any

import stripe
from sqlalchemy import Connection

from reference_server.processors.cards import CardBehavior, CardError, CardInput, check_card
from reference_server.processors.contract import (
    CardSetup,
    ChargeOutcome,
    Collected,
    CompletedSetup,
    PaymentProcessor,
    ProcessorCoupon,
    utc_day,
)
from reference_server.processors.stripe.catalog import StripeCatalog
from reference_server.processors.stripe.checkout import (
    completed_setup,
    current_session_id,
    expire_if_open,
    open_checkout_for,
    reusable_url,
)
from reference_server.processors.stripe.coupons import find_coupon
from reference_server.processors.stripe.invoices import (
    SEND_INVOICE_DAYS_DUE,
    StripeInvoices,
    stripe_invoice_id,
)
from reference_server.processors.stripe.payments import collect, leave_unpaid
from reference_server.processors.stripe.refunds import refund_payment, reverse_payment
from reference_server.store.billing_sessions import SessionRecord
from reference_server.store.customer_lookup import CustomerRef
from reference_server.store.invoices import InvoiceRecord
from reference_server.store.payment_methods import PaymentMethodInfo, store_payment_method
from reference_server.store.stripe_customers import customer_stripe_id, set_customer_stripe_id
from reference_server.store.stripe_products import plans_of_products


class StripeProcessor(PaymentProcessor):
    """Payments through a Stripe account (``api_base`` points at localstripe in tests)."""

    name = "stripe"
    title = "Stripe"

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
        self.catalog = StripeCatalog(self.client, secret_key, stripe_account)
        self.invoices = StripeInvoices(self.client, self.catalog, self)

    # customers and cards ----------------------------------------------------------------------------------
    def ensure_customer(self, conn: Connection, customer: CustomerRef) -> str | None:
        if customer.processor_id:
            return customer.processor_id
        saved = customer_stripe_id(conn, customer.pk)
        if saved:  # created earlier in this transaction, after ``customer`` was read
            return saved
        params: dict[str, Any] = {"metadata": {"autumn_customer_id": customer.id}}
        if customer.email:
            params["email"] = customer.email
        if customer.name:
            params["name"] = customer.name
        created = self.client.v1.customers.create(params)  # type: ignore[arg-type]
        set_customer_stripe_id(conn, customer.pk, created.id)
        return str(created.id)

    def add_card(self, conn: Connection, customer: CustomerRef, card: CardInput, now: int) -> CardSetup:
        """TEST ONLY: posts a raw card number to Stripe's PaymentMethod API, which real Stripe accounts
        refuse (and which would put the server in PCI scope).  Processor-level tests use it against
        localstripe; the hosted pages never call it for a Stripe organization, whose cards are set up on
        Stripe Checkout (:mod:`~reference_server.processors.stripe.checkout`)."""
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

    def writes_metadata(self) -> bool:
        """An attach's metadata goes on the Stripe Subscription, Invoice and Checkout Session, beside the
        server's own ``autumn_*`` keys (:mod:`~reference_server.processors.stripe.metadata`)."""
        return True

    def find_coupon(
        self, conn: Connection, org_pk: int, env: str, ref: str, promotion_code: bool, now: int
    ) -> ProcessorCoupon | None:
        """A coupon of the Stripe account or one of its promotion codes (:mod:`.coupons`), its Products
        read back as the organization's plans."""

        def plans(products: list[str]) -> dict[str, str]:
            return plans_of_products(conn, org_pk, env, self.catalog.account, products) if products else {}

        return find_coupon(self.client, plans, ref, promotion_code, now)

    # Stripe Checkout (setup mode) collects the cards: see processors.stripe.checkout -----------------------
    def has_own_card_page(self) -> bool:
        return True

    def card_page_url(
        self,
        conn: Connection,
        customer: CustomerRef,
        session: SessionRecord,
        base_url: str,
        reuse_open: bool = False,
    ) -> str | None:
        """A setup-mode Checkout Session for the server session (the current one while it is open, when
        ``reuse_open``)."""
        url = reusable_url(self.client, current_session_id(conn, session.pk)) if reuse_open else None
        if url is not None:
            return url
        stripe_customer = str(self.ensure_customer(conn, customer))
        return open_checkout_for(conn, self.client, stripe_customer, customer, session, base_url)

    def completed_card_setup(self, setup_id: str) -> CompletedSetup | None:
        return completed_setup(self.client, setup_id)

    def close_card_page(self, conn: Connection, session: SessionRecord) -> None:
        expire_if_open(self.client, current_session_id(conn, session.pk))

    # charges and invoices: see processors.stripe.invoices, payments and refunds ----------------------------
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
        """Itemize the invoice on Stripe and pay it off-session with the saved card."""
        stripe_customer = str(self.ensure_customer(conn, customer))
        return collect(
            self.invoices, conn, customer, stripe_customer, invoice, payment_method, due, now, authenticated
        )

    def leave_unpaid(
        self, conn: Connection, customer: CustomerRef, invoice: InvoiceRecord, due: int, now: int
    ) -> None:
        """No card for the charge: its Stripe invoice finalized and left open (see
        :func:`~reference_server.processors.stripe.payments.leave_unpaid`)."""
        stripe_customer = str(self.ensure_customer(conn, customer))
        leave_unpaid(self.invoices, conn, customer, stripe_customer, invoice, due, now)

    def processor_invoice_id(self, processor_id: str | None) -> str | None:
        """The Stripe invoice (``in_...``) behind a server invoice; None for another id (none, or a
        payment's)."""
        return stripe_invoice_id(processor_id)

    def open_invoice(
        self,
        conn: Connection,
        customer: CustomerRef,
        invoice: InvoiceRecord,
        now: int,
        finalize: bool = True,
        net_terms_days: int = SEND_INVOICE_DAYS_DUE,
    ) -> str:
        """Invoice mode: ``invoice`` itemized and finalized on Stripe as an open ``send_invoice`` invoice
        (Stripe's books show what the customer owes, ``invoice.stripe_id`` names it).  The customer pays
        it on the server's hosted page: the card then pays this same Stripe invoice (or, when the credit
        available changed meanwhile, a new one for the new amount, this one voided).  ``finalize=False``
        (``invoice_mode.finalize: false``): a draft ``send_invoice`` invoice for manual review, finalized
        on Stripe's dashboard (its ``invoice.finalized`` event opens the server invoice) or through
        :meth:`finalize_invoice`.  Its ``days_until_due`` is ``net_terms_days`` (Stripe dates it from the
        finalization).  Voided if the transaction does not commit.  The Stripe id."""
        stripe_customer = str(self.ensure_customer(conn, customer))
        opened = self.invoices.create(
            conn,
            customer,
            stripe_customer,
            invoice,
            invoice.total,
            now,
            send_invoice=True,
            finalize=finalize,
            days_until_due=net_terms_days,
        )
        return str(opened.id)

    def finalize_invoice(self, processor_invoice_id: str) -> None:
        self.invoices.finalize_draft(processor_invoice_id)

    def mark_invoice_paid(self, processor_invoice_id: str) -> str | None:
        return self.invoices.mark_paid(processor_invoice_id)

    def void_invoice(self, conn: Connection, invoice: InvoiceRecord) -> bool:
        return self.invoices.void_for(invoice)

    def reverse_payment(self, processor_invoice_id: str, server_invoice_id: str) -> None:
        reverse_payment(self.invoices, processor_invoice_id, server_invoice_id)

    def refund_payment(self, processor_invoice_id: str, amount: int, refund_id: str) -> None:
        refund_payment(self.invoices, processor_invoice_id, amount, refund_id)
