"""The payment processor contract: everything the server asks of a processor, and a charge's outcome.

A processor collects payment methods (on this server's hosted card form, or on its own page such as
Stripe Checkout in setup mode), charges and refunds, keeps its own invoices in step with the server's
(opens, finalizes, voids, marks them paid) and says which of its invoices is the server's.  What a
processor cannot do is a method answering what that means for it (``None``, ``False`` or nothing),
never a type check by its callers.  Settings, per-organization credentials and event ingestion are
part of a processor's registration (:mod:`~reference_server.processors.registration`).

Two implementations:
:class:`~reference_server.processors.local.processor.LocalProcessor` (the reference server is its
own processor; test cards decide the outcome) and
:class:`~reference_server.processors.stripe.processor.StripeProcessor` (Stripe's API, e.g. localstripe in
tests). Both keep the server's own invoice records, so pages and API responses read one place.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import AttachRequiredActionJson
from reference_server.engine.billing.discounts import CouponKind
from reference_server.engine.billing.invoice import InvoiceDraft
from reference_server.processors.cards import CardBehavior, CardInput
from reference_server.store.billing_sessions import SessionRecord
from reference_server.store.credits import add_credit, credit_balance
from reference_server.store.customer_lookup import CustomerRef
from reference_server.store.invoices import (
    InvoiceRecord,
    create_invoice,
    invoice_record,
    record_charge,
    set_invoice_status,
)
from reference_server.store.payment_methods import (
    PaymentMethodInfo,
    default_payment_method,
    payment_method_by_pk,
    payment_method_pk_by_processor_id,
    set_payment_method_behavior,
    store_payment_method,
)


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

    def required_action(self) -> AttachRequiredActionJson | None:
        """The attach response's ``required_action`` for an unsuccessful charge."""
        if self.status is ChargeStatus.REQUIRES_ACTION:
            return {"code": "3ds_required", "reason": "The payment requires authentication"}
        if self.status is ChargeStatus.PAYMENT_METHOD_REQUIRED:
            return {"code": "payment_method_required", "reason": "No payment method found"}
        if self.status is ChargeStatus.FAILED:
            return {"code": "payment_failed", "reason": self.failure_message or "The payment failed"}
        return None


@dataclass(frozen=True)
class CardSetup:
    """A card saved from a form; ``needs_authentication`` sends the payer to the authentication step."""

    payment_method: PaymentMethodInfo
    needs_authentication: bool


@dataclass(frozen=True)
class CompletedSetup:
    """A card setup finished on the processor's own page, and the card it saved."""

    checkout_session_id: str
    server_session_id: str
    server_session_kind: str
    stripe_customer: str | None
    payment_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class ProcessorCoupon:
    """A coupon the processor keeps (Stripe: a coupon, named by its id or by one of its promotion codes),
    in the terms this server's engine applies an Autumn reward's coupon with."""

    id: str
    """The processor's coupon id (kept as the discount's ``reward_id``)."""
    name: str
    kind: CouponKind
    value: Decimal
    """A percentage (``20`` is 20%) or, for a fixed amount, major units of ``currency``."""
    currency: str | None
    """A fixed amount's currency (None for a percentage)."""
    plan_ids: tuple[str, ...] | None
    """The plans it applies to (None: every plan; empty: none this server bills)."""
    duration_type: str
    """``one_off``, ``months`` or ``forever`` (as a reward's ``duration_type``)."""
    duration_length: int | None
    problem: str | None = None
    """Why it cannot be applied now (no longer valid, expired, used up, inactive), None when it can."""


class PaymentProcessor(ABC):
    """What the billing flows need from a processor, and the invoicing both processors share.

    Every processor keeps the server's own invoice and credit records the same way: a negative
    invoice becomes customer credit, a zero one is paid, and otherwise credit is spent before the
    card.  Only taking the rest from a card differs (:meth:`collect_card`).
    """

    name: str
    """The processor's registered name (``AUTUMN_PAYMENT_PROCESSOR``, invoices' ``processor``)."""
    title: str
    """How messages name it ("Stripe")."""

    # customers and payment methods ------------------------------------------------------------------------
    @abstractmethod
    def ensure_customer(self, conn: Connection, customer: CustomerRef) -> str | None:
        """Create the processor-side customer if needed; returns its processor id (None for local)."""

    def default_payment_method(self, conn: Connection, customer: CustomerRef) -> PaymentMethodInfo | None:
        return default_payment_method(conn, customer.pk)

    @abstractmethod
    def add_card(self, conn: Connection, customer: CustomerRef, card: CardInput, now: int) -> CardSetup:
        """Validate and store a card; raises :class:`~reference_server.processors.cards.CardError`."""

    def confirm_card(
        self, conn: Connection, customer: CustomerRef, payment_method: PaymentMethodInfo
    ) -> None:
        """The payer completed authentication for ``payment_method``: it becomes the default card."""
        behavior = payment_method.behavior
        if behavior == CardBehavior.AUTHENTICATE_ONCE.value:
            behavior = CardBehavior.SUCCEED.value
        set_payment_method_behavior(conn, payment_method.pk, behavior, make_default=True)

    @abstractmethod
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
        """Take ``due`` (minor units) from the card: the failure, or what was collected."""

    def can_charge(self, payment_method: PaymentMethodInfo) -> bool:
        """Whether this processor can charge the stored card at all."""
        return True

    def leave_unpaid(
        self, conn: Connection, customer: CustomerRef, invoice: InvoiceRecord, due: int, now: int
    ) -> None:
        """No card can pay ``due`` (minor units) of the open ``invoice`` (none saved, or none this
        processor can charge): the processor's books show it open all the same, to be paid later (a
        payment link, a card saved afterwards), as Autumn leaves its Stripe invoice finalized and unpaid
        with ``required_action: payment_method_required``.  The local processor keeps nothing outside
        the server's records."""
        return None

    def writes_metadata(self) -> bool:
        """Whether a caller's metadata (``billing.attach``'s ``metadata``) lands on the processor's own
        objects: the subscription mirroring a plan instance, the invoice, the card page's session.  The
        local processor keeps nothing outside the server's records, whose answers show no metadata, so
        an organization it charges is refused it (:mod:`reference_server.billing.stripe_metadata`)."""
        return False

    # coupons ---------------------------------------------------------------------------------------------
    def find_coupon(
        self, conn: Connection, org_pk: int, env: str, ref: str, promotion_code: bool, now: int
    ) -> ProcessorCoupon | None:
        """The processor's coupon ``ref`` names (its id, or with ``promotion_code`` one of its promotion
        codes), for a billing change's ``discounts`` no Autumn reward answers; None when it names none.
        ``now`` (epoch ms) decides expiry.  The local processor keeps no coupons."""
        return None

    # the processor's own card page ------------------------------------------------------------------------
    @abstractmethod
    def has_own_card_page(self) -> bool:
        """Whether payers enter cards on the processor's own page (this server's form takes none)."""

    @abstractmethod
    def card_page_url(
        self,
        conn: Connection,
        customer: CustomerRef,
        session: SessionRecord,
        base_url: str,
        reuse_open: bool = False,
    ) -> str | None:
        """The processor's page collecting a card for the server's hosted ``session`` (one still open
        when ``reuse_open``, else a new one); None when this server's card form collects it."""

    @abstractmethod
    def completed_card_setup(self, setup_id: str) -> CompletedSetup | None:
        """The card a finished setup on the processor's page saved; None unless it completed."""

    def save_card_setup(
        self, conn: Connection, customer: CustomerRef, setup: CompletedSetup, now: int
    ) -> PaymentMethodInfo:
        """The card of a completed setup as the customer's default, on the processor and in the server's
        records (once per processor payment method id)."""
        existing = payment_method_pk_by_processor_id(conn, customer.pk, setup.payment_method_id)
        if existing is not None:
            info = payment_method_by_pk(conn, existing)
            assert info is not None
        else:
            info = store_payment_method(
                conn,
                customer.pk,
                self.name,
                setup.brand,
                setup.last4,
                setup.exp_month,
                setup.exp_year,
                "succeed",  # the processor decides what a charge does; the behaviour is the local one's
                now,
                processor_id=setup.payment_method_id,
            )
        self.confirm_card(conn, customer, info)  # the default on the processor and here
        refreshed = payment_method_by_pk(conn, info.pk)
        assert refreshed is not None
        return refreshed

    @abstractmethod
    def close_card_page(self, conn: Connection, session: SessionRecord) -> None:
        """The processor's card page of the server's hosted ``session``, if one is still open, is closed:
        nobody should finish it any more (the session completed otherwise)."""

    # the processor's invoices -----------------------------------------------------------------------------
    @abstractmethod
    def processor_invoice_id(self, processor_id: str | None) -> str | None:
        """The processor's own invoice behind a server invoice's ``processor_id``; None when it has none
        (the local processor keeps nothing outside the server's records)."""

    @abstractmethod
    def open_invoice(
        self,
        conn: Connection,
        customer: CustomerRef,
        invoice: InvoiceRecord,
        now: int,
        finalize: bool = True,
        net_terms_days: int = 30,
    ) -> str | None:
        """Invoice mode: show ``invoice`` on the processor's books as one the customer is sent to pay
        within ``net_terms_days`` of its finalization (left a draft unless ``finalize``); its id there,
        None when the processor keeps no books (the server's invoice records the due date)."""

    @abstractmethod
    def finalize_invoice(self, processor_invoice_id: str) -> None:
        """Finalize the processor's draft of an invoice-mode invoice."""

    @abstractmethod
    def mark_invoice_paid(self, processor_invoice_id: str) -> str | None:
        """Mark the processor's open invoice paid outside the processor; None when it is (or already
        was) paid, else its status there, which refuses it."""

    def void_invoice(self, conn: Connection, invoice: InvoiceRecord) -> bool:
        """The server is voiding ``invoice``: void its processor-side invoice too.  False when the
        processor already collected it (the server invoice must not be voided then).  The local
        processor keeps nothing outside the server's records."""
        return True

    # refunds ---------------------------------------------------------------------------------------------
    @abstractmethod
    def reverse_payment(self, processor_invoice_id: str, server_invoice_id: str) -> None:
        """Give back what ``processor_invoice_id`` collected though the server never recorded it
        (idempotent; see :mod:`~reference_server.processors.compensation`).  The local processor's
        payments live in the server's transaction, so none is ever taken unrecorded."""

    def refund_payment(self, processor_invoice_id: str, amount: int, refund_id: str) -> None:
        """Refund ``amount`` (minor units) of what ``processor_invoice_id`` collected, as the server's
        refund ``refund_id`` once the transaction recording it committed (idempotent per ``refund_id``;
        see :func:`~reference_server.processors.compensation.refund_after_transaction`).  The local
        processor holds no money outside the server's records: its refund is the recorded charge alone."""
        return None

    # charges ---------------------------------------------------------------------------------------------

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
        metadata: dict[str, str] | None = None,
    ) -> ChargeOutcome:
        """Invoice ``draft`` and collect it (credit first, then the card); ``metadata``: the caller's keys
        for the processor's invoice (an attach's ``metadata``; Stripe writes them beside its own)."""
        invoice = create_invoice(
            conn,
            customer.pk,
            draft,
            reason,
            self.name,
            now,
            base_url,
            entity_id,
            processor_metadata=metadata,
        )
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
        """Try to collect an open invoice again (after a decline or an authentication step)."""
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
        processor_id: str | None = None
        # The credit pays it all: an earlier attempt's processor invoice is owed no more (voided), unless
        # the processor collected it meanwhile (then the card paid it, and the credit is kept).
        if due == 0 and not self.void_invoice(conn, invoice_record(conn, invoice.pk)):
            credit, due = 0, total
        if due > 0:
            pm = payment_method or default_payment_method(conn, customer.pk)
            if pm is None or not self.can_charge(pm):
                self.leave_unpaid(conn, customer, invoice, due, now)
                return ChargeOutcome(ChargeStatus.PAYMENT_METHOD_REQUIRED, invoice_record(conn, invoice.pk))
            collected = self.collect_card(conn, customer, invoice, pm, due, now, authenticated)
            if isinstance(collected, ChargeOutcome):
                return collected
            processor_id = collected.processor_id
        if credit > 0:
            add_credit(
                conn, customer.pk, invoice.currency, -credit, f"Applied to {invoice.id}", now, invoice.pk
            )
        set_invoice_status(
            conn, invoice.pk, "paid", now, amount_paid=due, credit_applied=credit, processor_id=processor_id
        )
        return ChargeOutcome(ChargeStatus.PAID, invoice_record(conn, invoice.pk))


@dataclass(frozen=True)
class Collected:
    """A card charge that went through (``processor_id``: the processor's payment id, if any)."""

    processor_id: str | None = None


def card_succeeded(
    conn: Connection,
    invoice: InvoiceRecord,
    payment_method: PaymentMethodInfo,
    due: int,
    now: int,
    processor_id: str | None = None,
) -> Collected:
    record_charge(conn, invoice.pk, payment_method.pk, due, "succeeded", now)
    return Collected(processor_id)


def card_failed(
    conn: Connection,
    invoice: InvoiceRecord,
    payment_method: PaymentMethodInfo,
    due: int,
    now: int,
    code: str,
    message: str,
) -> ChargeOutcome:
    record_charge(conn, invoice.pk, payment_method.pk, due, "failed", now, code, message)
    return ChargeOutcome(ChargeStatus.FAILED, invoice, code, message)


def card_needs_authentication(
    conn: Connection, invoice: InvoiceRecord, payment_method: PaymentMethodInfo, due: int, now: int
) -> ChargeOutcome:
    record_charge(conn, invoice.pk, payment_method.pk, due, "requires_action", now, "authentication_required")
    return ChargeOutcome(
        ChargeStatus.REQUIRES_ACTION,
        invoice,
        "authentication_required",
        "The payment requires authentication",
    )


def utc_day(now: int) -> dt.date:
    """The UTC calendar day of ``now`` (card expiry is checked against it)."""
    return dt.datetime.fromtimestamp(now / 1000, tz=dt.timezone.utc).date()
