"""The payment processor contract the billing flows call, and the outcome of a charge.

Two implementations: :class:`~reference_server.payments.local.LocalProcessor` (the reference server is its
own processor; test cards decide the outcome) and
:class:`~reference_server.payments.stripe_processor.StripeProcessor` (Stripe's API, e.g. localstripe in
tests). Both keep the server's own invoice records, so pages and API responses read one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from sqlalchemy import Connection

from reference_server.engine.billing.invoice import InvoiceDraft

from .cards import CardInput
from .records import CustomerRef, InvoiceRecord, PaymentMethodInfo


class ChargeStatus(str, Enum):
    PAID = "paid"  # the card (and/or customer credit) covered the invoice
    NOTHING_DUE = "nothing_due"  # a zero invoice
    CREDITED = "credited"  # a negative invoice: the amount became customer credit
    FAILED = "failed"  # declined
    REQUIRES_ACTION = "requires_action"  # the card needs authentication (3-D Secure)
    PAYMENT_METHOD_REQUIRED = "payment_method_required"


@dataclass(frozen=True)
class ChargeOutcome:
    status: ChargeStatus
    invoice: InvoiceRecord | None
    failure_code: str | None = None
    failure_message: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status in (ChargeStatus.PAID, ChargeStatus.NOTHING_DUE, ChargeStatus.CREDITED)

    def required_action(self) -> dict[str, Any] | None:
        """The attach response's ``required_action`` for an unsuccessful charge."""
        if self.status is ChargeStatus.REQUIRES_ACTION:
            return {"code": "3ds_required", "reason": "The payment requires authentication"}
        if self.status is ChargeStatus.PAYMENT_METHOD_REQUIRED:
            return {"code": "payment_method_required", "reason": "No payment method on file"}
        if self.status is ChargeStatus.FAILED:
            return {"code": "payment_failed", "reason": self.failure_message or "The payment failed"}
        return None


@dataclass(frozen=True)
class CardSetup:
    """A card saved from a form; ``needs_authentication`` sends the payer to the authentication step."""

    payment_method: PaymentMethodInfo
    needs_authentication: bool


class PaymentProcessor(Protocol):
    """What the billing flows need from a processor."""

    name: str

    def ensure_customer(self, conn: Connection, customer: CustomerRef) -> str | None:
        """Create the processor-side customer if needed; returns its processor id (None for local)."""
        ...

    def default_payment_method(self, conn: Connection, customer: CustomerRef) -> PaymentMethodInfo | None: ...

    def add_card(self, conn: Connection, customer: CustomerRef, card: CardInput, now: int) -> CardSetup:
        """Validate and store a card; raises :class:`~reference_server.payments.cards.CardError`."""
        ...

    def confirm_card(
        self, conn: Connection, customer: CustomerRef, payment_method: PaymentMethodInfo
    ) -> None:
        """The payer completed authentication for ``payment_method``."""
        ...

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
        """Invoice ``draft`` and collect it (credit first, then the card)."""
        ...

    def retry_invoice(
        self,
        conn: Connection,
        customer: CustomerRef,
        invoice: InvoiceRecord,
        now: int,
        payment_method: PaymentMethodInfo | None = None,
        authenticated: bool = False,
    ) -> ChargeOutcome:
        """Try to collect an open invoice again (after a decline or an authentication step)."""
        ...
