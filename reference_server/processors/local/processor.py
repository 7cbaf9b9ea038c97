"""The reference server as its own payment processor (cards typed into its hosted form).

Cards never leave the database (only brand, last four digits, expiry and the test-card behaviour are
kept). Negative invoices become customer credit, and credit is spent before the card on later invoices,
which is how a prorated downgrade or cancellation pays back.
"""

from __future__ import annotations

from sqlalchemy import Connection

from reference_server.processors.cards import (
    DECLINE_MESSAGES,
    CardBehavior,
    CardError,
    CardInput,
    check_card,
)
from reference_server.processors.contract import (
    CardSetup,
    ChargeOutcome,
    Collected,
    CompletedSetup,
    PaymentProcessor,
    card_failed,
    card_needs_authentication,
    card_succeeded,
    utc_day,
)
from reference_server.store.billing_sessions import SessionRecord
from reference_server.store.customer_lookup import CustomerRef
from reference_server.store.invoices import InvoiceRecord
from reference_server.store.payment_methods import PaymentMethodInfo, store_payment_method


class LocalProcessor(PaymentProcessor):
    """Default processor: invoices, charges and cards live in the server's own tables."""

    name = "local"
    title = "the reference server"

    def ensure_customer(self, conn: Connection, customer: CustomerRef) -> str | None:
        return None

    def add_card(self, conn: Connection, customer: CustomerRef, card: CardInput, now: int) -> CardSetup:
        checked = check_card(card, utc_day(now))
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
        """The test card's behaviour decides: decline, ask for authentication, or pay."""
        behavior = CardBehavior(payment_method.behavior)
        if behavior in DECLINE_MESSAGES:
            code, message = DECLINE_MESSAGES[behavior]
            return card_failed(conn, invoice, payment_method, due, now, code, message)
        needs_auth = behavior in (CardBehavior.AUTHENTICATE_ALWAYS, CardBehavior.AUTHENTICATE_ONCE)
        if needs_auth and not authenticated:
            return card_needs_authentication(conn, invoice, payment_method, due, now)
        return card_succeeded(conn, invoice, payment_method, due, now)

    # what the local processor does not have: its own card page, its own invoices, unrecorded payments ------
    def has_own_card_page(self) -> bool:
        return False  # cards are typed into this server's hosted form (add_card)

    def card_page_url(
        self,
        conn: Connection,
        customer: CustomerRef,
        session: SessionRecord,
        base_url: str,
        reuse_open: bool = False,
    ) -> str | None:
        return None

    def completed_card_setup(self, setup_id: str) -> CompletedSetup | None:
        return None

    def close_card_page(self, conn: Connection, session: SessionRecord) -> None:
        return None

    def processor_invoice_id(self, processor_id: str | None) -> str | None:
        return None  # the server's invoice is the only one

    def open_invoice(
        self,
        conn: Connection,
        customer: CustomerRef,
        invoice: InvoiceRecord,
        now: int,
        finalize: bool = True,
        net_terms_days: int = 30,
    ) -> str | None:
        return None

    def finalize_invoice(self, processor_invoice_id: str) -> None:
        return None

    def mark_invoice_paid(self, processor_invoice_id: str) -> str | None:
        return None

    def reverse_payment(self, processor_invoice_id: str, server_invoice_id: str) -> None:
        return None  # a local charge is part of the server's transaction: never taken unrecorded
