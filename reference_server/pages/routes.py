"""Starlette routes and handlers of the hosted billing pages.

Every POST runs in one database transaction: the card, the charge and the hook that activates the plan
commit together or not at all, and the session row is locked so a double submit cannot pay twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from reference_server.billing.invoice_mode import is_open_invoice_mode_invoice
from reference_server.billing.records import (
    CustomerRef,
    InvoiceRecord,
    PaymentMethodInfo,
    SessionRecord,
    customer_invoices,
    invoice_by_id,
    invoice_lines_of,
    invoice_record,
    load_session,
    payment_method_by_pk,
    set_invoice_status,
    update_session,
)
from reference_server.clock import Clock
from reference_server.engine.billing.money import currency_exponent, minor_to_major
from reference_server.errors import AutumnError
from reference_server.processors.contract import ChargeOutcome, ChargeStatus, PaymentProcessor
from reference_server.processors.local.cards import TEST_CARD_HINTS, CardError, CardInput, parse_expiry
from reference_server.processors.stripe.checkout import (
    APPLIED_KEY,
    BASE_URL_KEY,
    ERROR_KEY,
    CompletedSetup,
    completed_setup,
    current_session_id,
    expire_if_open,
    open_checkout_for,
    reusable_url,
    save_setup_card,
    stripe_processor_for,
)
from reference_server.processors.stripe.processor import StripeProcessor
from reference_server.store.billing_tables import charges, subscription_billing
from reference_server.store.dashboard_tables import Branding, branding_of
from reference_server.store.db import Database
from reference_server.store.tables import customer_plans, customers, plans

from .invoice_pdf import InvoiceDocument, invoice_pdf
from .security import StaticHeaders, secured

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
STATIC_DIR = Path(__file__).parent / "static"

_CURRENCY_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}


def format_money(minor: int, currency: str) -> str:
    """``$20.00``, ``-$10.00``, ``¥1000``; unknown currencies as ``20.00 CHF``."""
    major = minor_to_major(abs(minor), currency)
    sign = "-" if minor < 0 else ""
    symbol = _CURRENCY_SYMBOLS.get(currency.lower())
    places = currency_exponent(currency)
    text = f"{major:,.{places}f}"
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency.upper()}"


def _date(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class PortalSubscription:
    plan_id: str
    name: str
    status: str
    until: str | None
    cancelable: bool
    price: str | None = None

    @property
    def date_label(self) -> str:
        """What the date column says: never blank."""
        if self.until is None:
            return "No end date"
        verb = {
            "scheduled": "Starts",
            "canceling": "Ends",
            "trialing": "Trial ends",
            "past due": "Due since",
        }.get(self.status, "Renews")
        return f"{verb} {self.until}"


def price_label(price: Mapping[str, Any] | None, currency: str = "usd") -> str | None:
    """A plan's base price as people read it: ``$20.00/month``, ``$99.00 once``; None when free."""
    if not price or price.get("amount") in (None, 0):
        return None
    minor = int(Decimal(str(price["amount"])) * 10 ** currency_exponent(currency))
    amount = format_money(minor, currency)
    interval = str(price.get("interval") or "month")
    if interval == "one_off":
        return f"{amount} once"
    count = int(price.get("interval_count") or 1)
    return f"{amount}/{interval}" if count == 1 else f"{amount} every {count} {interval}s"


@dataclass
class BillingHooks:
    """What the core does when a page completes; every hook runs inside the page's transaction."""

    complete_checkout: Callable[[Connection, SessionRecord, InvoiceRecord | None, int], None] | None = None
    complete_setup: Callable[[Connection, SessionRecord, PaymentMethodInfo, int], None] | None = None
    cancel_subscription: Callable[[Connection, int, str, int], None] | None = None
    subscriptions: Callable[[Connection, int, int], list[PortalSubscription]] | None = None
    customer_now: Callable[[Connection, int], int] | None = None
    # A new card from the portal or a setup page: e.g. retry the invoices of past-due subscriptions.
    payment_method_saved: Callable[[Connection, int, PaymentMethodInfo, int], None] | None = None
    # The portal's undo of a cancel (the API's ``cancel_action: "uncancel"``): (conn, customer, plan, now).
    uncancel_subscription: Callable[[Connection, int, str, int], None] | None = None
    # Plan switching in the portal, through the API's own preview and attach: the preview body
    # (``billing.preview_attach``) of (customer pk, plan id), run in its own transaction ...
    preview_switch: Callable[[int, str], dict[str, Any]] | None = None
    # ... and the switch itself inside the page's transaction: a payment URL when the customer must
    # pay on a checkout page first, else None (switched, or scheduled for the end of the period).
    switch_plan: Callable[[Connection, int, str, int], str | None] | None = None


@dataclass
class PagesContext:
    db: Database
    clock: Clock
    processor: PaymentProcessor
    hooks: BillingHooks = field(default_factory=BillingHooks)


STRIPE_CARD_ENTRY = "Card details are entered on Stripe's page: use the Continue to Stripe button."

DRAFT_NOTICE = "This invoice is a draft: it is not finalized yet, so there is nothing to pay."

NOTICES = {
    "card_saved": "Your card was saved.",
    "canceled": "The plan was canceled. It stays active until the end of the billing period.",
    "uncanceled": "Your plan will renew as before.",
    "switched": "Your plan was changed.",
}

CARD_FIELDS = ("card_number", "expiry", "cvc")
_EMPTY_FIELD = {
    "card_number": CardError("incomplete_number", "Enter your card number."),
    "expiry": CardError("incomplete_expiry", "Enter your card's expiry date (MM/YY)."),
    "cvc": CardError("incomplete_cvc", "Enter your card's security code."),
}
_ERROR_FIELDS = {
    "incomplete_number": "card_number",
    "incorrect_number": "card_number",
    "card_declined": "card_number",
    "insufficient_funds": "card_number",
    "incomplete_expiry": "expiry",
    "invalid_expiry": "expiry",
    "invalid_expiry_month": "expiry",
    "invalid_expiry_year": "expiry",
    "expired_card": "expiry",
    "incomplete_cvc": "cvc",
    "incorrect_cvc": "cvc",
}


def typed_back(form: Mapping[str, Any] | None) -> dict[str, str]:
    """What the payer typed that the form shows again after an error: never the card number or code."""
    if not form:
        return {}
    return {key: str(form.get(key, ""))[:100] for key in ("name", "expiry")}


def default_portal_subscriptions(conn: Connection, customer_pk: int, now: int) -> list[PortalSubscription]:
    """The customer's active and scheduled plans, read from the core's tables."""
    rows = conn.execute(
        select(
            customer_plans.c.plan_id,
            customer_plans.c.status,
            customer_plans.c.canceled_at,
            customer_plans.c.expires_at,
            customer_plans.c.current_period_end,
            customer_plans.c.trial_ends_at,
            customer_plans.c.starts_at,
            customer_plans.c.started_at,
            customer_plans.c.current_period_start,
            plans.c.name,
            plans.c.price,
            plans.c.add_on,
            subscription_billing.c.past_due,
        )
        .select_from(
            customer_plans.join(plans, customer_plans.c.plan_pk == plans.c.pk).outerjoin(
                subscription_billing, subscription_billing.c.customer_plan_pk == customer_plans.c.pk
            )
        )
        .where(
            customer_plans.c.customer_pk == customer_pk,
            customer_plans.c.status.in_(("active", "scheduled")),
            customer_plans.c.entity_pk.is_(None),
        )
        .order_by(customer_plans.c.pk)
    ).all()
    result = []
    for row in rows:
        if row.status == "scheduled":
            status, until = "scheduled", _date(row.starts_at or row.current_period_start)
        elif row.past_due:
            status, until = "past due", _date(row.current_period_end)
        elif row.canceled_at is not None:
            status, until = "canceling", _date(row.expires_at)
        elif row.trial_ends_at is not None and row.trial_ends_at > now:
            status, until = "trialing", _date(row.trial_ends_at)
        else:
            status, until = "active", _date(row.current_period_end)
        cancelable = row.status == "active" and row.canceled_at is None and row.current_period_end is not None
        price = price_label(row.price)
        result.append(PortalSubscription(row.plan_id, row.name, status, until, cancelable, price))
    return result


def switch_options(
    conn: Connection, customer_pk: int, current: list[PortalSubscription]
) -> list[dict[str, Any]]:
    """Plans the customer can switch to in the portal: the latest version of each main (not add-on)
    plan of the groups they are in, other than the ones they have."""
    owner = conn.execute(
        select(customers.c.org_pk, customers.c.env).where(customers.c.pk == customer_pk)
    ).one()
    held = {sub.plan_id for sub in current}
    groups = set(
        conn.execute(
            select(plans.c.group)
            .select_from(customer_plans.join(plans, customer_plans.c.plan_pk == plans.c.pk))
            .where(
                customer_plans.c.customer_pk == customer_pk,
                customer_plans.c.status == "active",
                customer_plans.c.entity_pk.is_(None),
                plans.c.add_on.is_(False),
            )
        ).scalars()
    )
    if not groups:
        return []
    rows = conn.execute(
        select(plans.c.id, plans.c.name, plans.c.price)
        .where(
            plans.c.org_pk == owner.org_pk,
            plans.c.env == owner.env,
            plans.c.is_latest.is_(True),
            plans.c.archived.is_(False),
            plans.c.add_on.is_(False),
            plans.c.group.in_(groups),
        )
        .order_by(plans.c.pk)
    ).all()
    return [
        {"plan_id": r.id, "name": r.name, "price": price_label(r.price) or "Free"}
        for r in rows
        if r.id not in held
    ]


def _window_passed(conn: Connection, session: SessionRecord, now: int) -> bool:
    """The session's link can no longer be used: its window passed.  The page of an open invoice-mode
    invoice has none: it is the invoice's own page, payable until the invoice is paid or voided."""
    if now < session.expires_at:
        return False
    invoice_pk = session.invoice_pk
    if session.kind != "checkout" or invoice_pk is None:
        return True
    return not is_open_invoice_mode_invoice(conn, invoice_pk)


def _customer_ref(conn: Connection, customer_pk: int) -> CustomerRef:
    row = conn.execute(select(customers).where(customers.c.pk == customer_pk)).one()
    return CustomerRef(row.pk, row.id, row.email, row.name, row.stripe_id)


def _label(customer: CustomerRef) -> str:
    return customer.email or customer.name or customer.id


def _origin(url: str | None) -> str | None:
    """``https://app.example.com`` of a success URL: where "back to the app" goes."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}/"


class _Pages:
    def __init__(self, ctx: PagesContext) -> None:
        self.ctx = ctx

    def _card_saved(self, conn: Connection, customer_pk: int, pm: PaymentMethodInfo, now: int) -> None:
        if self.ctx.hooks.payment_method_saved is not None:
            self.ctx.hooks.payment_method_saved(conn, customer_pk, pm, now)

    # helpers -----------------------------------------------------------------------------------------
    def _now(self, conn: Connection, customer_pk: int) -> int:
        hook = self.ctx.hooks.customer_now
        return hook(conn, customer_pk) if hook else self.ctx.clock.now_ms()

    def _render(self, request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        values.setdefault("hints", TEST_CARD_HINTS)
        values.setdefault("error", None)
        values.setdefault("error_field", None)
        values.setdefault("stripe_action", None)
        values.setdefault("brand", None)
        values.setdefault("test_mode", False)
        values.setdefault("back_url", None)
        return TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)

    @staticmethod
    def _chrome(conn: Connection, customer_pk: int, back_url: str | None = None) -> dict[str, Any]:
        """The page's frame: the organization's name and logo, the test-mode badge, the way back."""
        owner = conn.execute(
            select(customers.c.org_pk, customers.c.env).where(customers.c.pk == customer_pk)
        ).one()
        brand = branding_of(conn, int(owner.org_pk))
        return {
            "brand": brand,
            "test_mode": owner.env != "live",
            "back_url": back_url or brand.website_url,
        }

    @staticmethod
    def _recurring(
        conn: Connection, customer_pk: int, plan_id: Any, currency: str
    ) -> tuple[str | None, str | None]:
        """(plan name, "Then $20.00/month") for the plan a session attaches; Nones without one."""
        if not plan_id:
            return None, None
        owner = conn.execute(
            select(customers.c.org_pk, customers.c.env).where(customers.c.pk == customer_pk)
        ).one()
        row = conn.execute(
            select(plans.c.name, plans.c.price)
            .where(
                plans.c.org_pk == owner.org_pk,
                plans.c.env == owner.env,
                plans.c.id == str(plan_id),
                plans.c.is_latest.is_(True),
            )
            .limit(1)
        ).first()
        if row is None:
            return None, None
        label = price_label(row.price, currency)
        if label is None or label.endswith(" once"):
            return str(row.name), None
        return str(row.name), f"Then {label} until you cancel."

    def _not_found(self, request: Request) -> HTMLResponse:
        return self._render(
            request, "done.html", 404, heading="Not found", message="This link is not valid.", link=None
        )

    def _not_finalized(self, request: Request, invoice_id: str) -> HTMLResponse:
        return self._render(
            request,
            "done.html",
            409,
            heading="Invoice not finalized",
            message=DRAFT_NOTICE,
            link=request.url_for("invoice_page", invoice_id=invoice_id).path,
        )

    def _expired(self, request: Request) -> HTMLResponse:
        return self._render(
            request, "done.html", 410, heading="Link expired", message="This link has expired.", link=None
        )

    @staticmethod
    def _card_from_form(form: Mapping[str, Any]) -> CardInput:
        """The typed card; :class:`CardError` for the first empty field, in the form's order."""
        for key in CARD_FIELDS:
            if not str(form.get(key, "")).strip():
                raise _EMPTY_FIELD[key]
        month, year = parse_expiry(str(form.get("expiry", "")))
        return CardInput(str(form.get("card_number", "")), month, year, str(form.get("cvc", "")).strip())

    def _authentication_step(
        self,
        conn: Connection,
        request: Request,
        session: SessionRecord,
        kind: str,
        payment_method_pk: int,
        **session_values: Any,
    ) -> Response:
        """Park the session until the payer authenticates the card, and send them to that step."""
        self._park_for_authentication(conn, session, payment_method_pk, **session_values)
        return RedirectResponse(request.url_for(f"{kind}_authenticate", session_id=session.id).path, 303)

    @staticmethod
    def _park_for_authentication(
        conn: Connection, session: SessionRecord, payment_method_pk: int, **session_values: Any
    ) -> None:
        update_session(
            conn,
            session.pk,
            status="requires_action",
            pending_payment_method_pk=payment_method_pk,
            **session_values,
        )

    def _stripe(self, conn: Connection, customer_pk: int) -> StripeProcessor | None:
        """The customer's Stripe processor: their card is collected by Stripe Checkout, never typed here."""
        return stripe_processor_for(self.ctx.processor, conn, customer_pk)

    def _stripe_action(self, request: Request, conn: Connection, session: SessionRecord) -> str | None:
        if self._stripe(conn, session.customer_pk) is None:
            return None
        return str(request.url_for(f"{session.kind}_stripe_start", session_id=session.id).path)

    def _save_card(
        self,
        conn: Connection,
        request: Request,
        session: SessionRecord,
        customer: CustomerRef,
        form: Mapping[str, Any],
        now: int,
        error_page: Callable[[int, str, str | None], Response],
    ) -> PaymentMethodInfo | Response:
        """Save the card typed into a session's form (checkout, setup or portal).

        The saved card, or the response to send instead: ``error_page(status, message, field)`` for a
        refused card (402 for a decline; ``field`` is the form field at fault), or the redirect to the
        authentication step.  A Stripe organization's pages take no card numbers at all (Stripe
        Checkout collects them).
        """
        if self._stripe(conn, customer.pk) is not None:
            return error_page(400, STRIPE_CARD_ENTRY, None)
        try:
            setup = self.ctx.processor.add_card(conn, customer, self._card_from_form(form), now)
        except CardError as exc:
            return error_page(
                402 if exc.code in ("card_declined", "insufficient_funds") else 400,
                exc.message,
                _ERROR_FIELDS.get(exc.code),
            )
        if setup.needs_authentication:
            return self._authentication_step(conn, request, session, session.kind, setup.payment_method.pk)
        return setup.payment_method

    @staticmethod
    def _base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def _checkout_view(
        self, request: Request, conn: Connection, session: SessionRecord, customer: CustomerRef, **extra: Any
    ) -> Any:
        draft = session.draft
        saved_card = self.ctx.processor.default_payment_method(conn, customer)
        plan_id = session.action.get("plan_id") or (session.action.get("body") or {}).get("plan_id")
        plan_name, recurring = self._recurring(conn, customer.pk, plan_id, draft.currency)
        return {
            **self._chrome(conn, customer.pk, _origin(session.success_url)),
            "plan_name": plan_name,
            "recurring": recurring,
            "lines": [
                {"description": line.description, "amount": format_money(line.amount, draft.currency)}
                for line in draft.lines
            ],
            "total": format_money(draft.total, draft.currency),
            "customer_label": _label(customer),
            "saved_card": saved_card,
            "action": request.url_for("checkout_pay", session_id=session.id).path,
            "button_label": f"Pay {format_money(draft.total, draft.currency)}"
            if draft.total > 0
            else "Confirm",
            "stripe_action": self._stripe_action(request, conn, session),
            "stripe_label": "Pay with another card on Stripe" if saved_card else "Continue to Stripe",
            **extra,
        }

    def _done_redirect(self, request: Request, session: SessionRecord, url: str | None) -> Response:
        target = url or request.url_for(f"{session.kind}_complete", session_id=session.id).path
        return RedirectResponse(target, status_code=303)

    def _open_session(
        self, conn: Connection, request: Request, session_id: str, kind: str, lock: bool = False
    ) -> tuple[SessionRecord | None, Response | None, int]:
        session = load_session(conn, session_id, kind, lock=lock)
        if session is None:
            return None, self._not_found(request), 0
        now = self._now(conn, session.customer_pk)
        if kind == "checkout" and session.invoice_pk is not None and session.status != "complete":
            draft = invoice_record(conn, session.invoice_pk)
            if draft.status == "draft":  # invoice_mode.finalize: false: nothing to pay until finalized
                return None, self._not_finalized(request, draft.id), now
        if (session.status != "complete" or kind == "portal") and _window_passed(conn, session, now):
            return None, self._expired(request), now
        return session, None, now

    def _void_expired(self, session_id: str) -> None:
        """An expired retry link voids its open invoice, so a stale invoice can never be paid later."""
        with self.ctx.db.write() as conn:
            session = load_session(conn, session_id, "checkout", lock=True)
            if session is None or session.status in ("complete", "expired"):
                return
            update_session(conn, session.pk, status="expired", pending_payment_method_pk=None)
            invoice_pk = session.invoice_pk
            voidable = session.action.get("void_on_expiry") and invoice_pk is not None
            if voidable and invoice_pk is not None:
                invoice = invoice_record(conn, invoice_pk)
                # the processor's invoice first: one it already collected keeps ours open (recorded later)
                if invoice.status == "open" and self.ctx.processor.void_invoice(conn, invoice):
                    set_invoice_status(conn, invoice_pk, "void")

    # checkout ----------------------------------------------------------------------------------------
    def checkout_page(self, request: Request, session_id: str) -> Response:
        with self.ctx.db.read() as conn:
            session, problem, _ = self._open_session(conn, request, session_id, "checkout")
        if problem is not None and problem.status_code == 410:
            self._void_expired(session_id)
        with self.ctx.db.read() as conn:
            session, problem, _ = self._open_session(conn, request, session_id, "checkout")
            if problem is not None or session is None:
                return problem or self._not_found(request)
            if session.status == "complete":
                return self._done_redirect(request, session, session.success_url)
            if session.status == "requires_action":
                return RedirectResponse(
                    request.url_for("checkout_authenticate", session_id=session.id).path, status_code=303
                )
            customer = _customer_ref(conn, session.customer_pk)
            return self._render(
                request, "checkout.html", **self._checkout_view(request, conn, session, customer)
            )

    def checkout_pay(self, request: Request, session_id: str, form: Mapping[str, Any]) -> Response:
        with self.ctx.db.write() as conn:
            session, problem, now = self._open_session(conn, request, session_id, "checkout", lock=True)
            if problem is not None or session is None:
                return problem or self._not_found(request)
            if session.status == "complete":
                return self._done_redirect(request, session, session.success_url)
            customer = _customer_ref(conn, session.customer_pk)
            if form.get("use_saved"):
                saved = self.ctx.processor.default_payment_method(conn, customer)
                if saved is None:
                    view = self._checkout_view(
                        request, conn, session, customer, error="There is no saved card."
                    )
                    return self._render(request, "checkout.html", 400, **view)
                return self._finish_checkout(conn, request, session, customer, saved, now, False)
            open_session = session

            def refused(status: int, message: str, error_field: str | None) -> Response:
                view = self._checkout_view(
                    request,
                    conn,
                    open_session,
                    customer,
                    error=message,
                    error_field=error_field,
                    **typed_back(form),
                )
                return self._render(request, "checkout.html", status, **view)

            card = self._save_card(conn, request, session, customer, form, now, refused)
            if not isinstance(card, PaymentMethodInfo):
                return card
            return self._finish_checkout(conn, request, session, customer, card, now, False)

    def _finish_checkout(
        self,
        conn: Connection,
        request: Request,
        session: SessionRecord,
        customer: CustomerRef,
        pm: PaymentMethodInfo,
        now: int,
        authenticated: bool,
    ) -> Response:
        outcome = self._settle_checkout(
            conn, session, customer, pm, now, authenticated, self._base_url(request)
        )
        if outcome.status is ChargeStatus.REQUIRES_ACTION:
            return RedirectResponse(
                request.url_for("checkout_authenticate", session_id=session.id).path, status_code=303
            )
        if not outcome.succeeded:
            return self._checkout_failed(
                request, conn, session, customer, outcome.failure_message or "The payment failed."
            )
        return self._done_redirect(request, session, session.success_url)

    def _checkout_failed(
        self, request: Request, conn: Connection, session: SessionRecord, customer: CustomerRef, message: str
    ) -> Response:
        refreshed = load_session(conn, session.id, "checkout")
        assert refreshed is not None
        view = self._checkout_view(request, conn, refreshed, customer, error=message)
        return self._render(request, "checkout.html", 402, **view)

    def _settle_checkout(
        self,
        conn: Connection,
        session: SessionRecord,
        customer: CustomerRef,
        pm: PaymentMethodInfo,
        now: int,
        authenticated: bool,
        base_url: str,
    ) -> ChargeOutcome:
        """Charge the checkout with ``pm`` and move the session on: complete (and the completion hook
        runs), parked for authentication, or open again with its unpaid invoice after a decline."""
        processor = self.ctx.processor
        if session.invoice_pk is not None:
            invoice = invoice_record(conn, session.invoice_pk)
            outcome = processor.retry_invoice(conn, customer, invoice, now, pm, authenticated)
        elif not session.draft.lines:  # nothing to charge (a trial): saving the card was the point
            outcome = ChargeOutcome(ChargeStatus.NOTHING_DUE, None)
        else:
            outcome = processor.charge(
                conn,
                customer,
                session.draft,
                str(session.action.get("reason", "checkout")),
                now,
                base_url,
                entity_id=session.action.get("entity_id"),
                payment_method=pm,
                authenticated=authenticated,
            )
        invoice_pk = outcome.invoice.pk if outcome.invoice else None
        if outcome.status is ChargeStatus.REQUIRES_ACTION:
            self._park_for_authentication(conn, session, pm.pk, invoice_pk=invoice_pk)
            return outcome
        if not outcome.succeeded:
            update_session(
                conn, session.pk, status="open", pending_payment_method_pk=None, invoice_pk=invoice_pk
            )
            return outcome
        update_session(
            conn,
            session.pk,
            status="complete",
            completed_at=now,
            invoice_pk=invoice_pk,
            pending_payment_method_pk=None,
        )
        if self.ctx.hooks.complete_checkout is not None:
            self.ctx.hooks.complete_checkout(conn, session, outcome.invoice, now)
        expire_stripe = self._stripe(conn, session.customer_pk)
        if expire_stripe is not None:  # paid: a Checkout still open for this session must not finish later
            expire_if_open(expire_stripe, current_session_id(conn, session.pk))
        return outcome

    # authentication (all session kinds) ----------------------------------------------------------------
    def authenticate_page(self, request: Request, kind: str, session_id: str) -> Response:
        with self.ctx.db.read() as conn:
            session, problem, _ = self._open_session(conn, request, session_id, kind)
            if problem is not None or session is None:
                return problem or self._not_found(request)
            if session.status != "requires_action" or session.pending_payment_method_pk is None:
                return RedirectResponse(request.url_for(f"{kind}_page", session_id=session.id).path, 303)
            pm = payment_method_by_pk(conn, session.pending_payment_method_pk)
            assert pm is not None
            total = format_money(session.amount, session.currency) if kind == "checkout" else None
            return self._render(
                request,
                "authenticate.html",
                **self._chrome(conn, session.customer_pk),
                last4=pm.last4,
                total=total,
                action=request.url_for(f"{kind}_authenticate", session_id=session.id).path,
            )

    def authenticate_submit(self, request: Request, kind: str, session_id: str, decision: str) -> Response:
        with self.ctx.db.write() as conn:
            session, problem, now = self._open_session(conn, request, session_id, kind, lock=True)
            if problem is not None or session is None:
                return problem or self._not_found(request)
            if session.status != "requires_action" or session.pending_payment_method_pk is None:
                return RedirectResponse(request.url_for(f"{kind}_page", session_id=session.id).path, 303)
            customer = _customer_ref(conn, session.customer_pk)
            pm = payment_method_by_pk(conn, session.pending_payment_method_pk)
            assert pm is not None
            if decision != "complete":
                update_session(conn, session.pk, status="open", pending_payment_method_pk=None)
                message = "Authentication failed. Try again or use another card."
                if kind == "checkout":
                    view = self._checkout_view(request, conn, session, customer, error=message)
                    return self._render(request, "checkout.html", 402, **view)
                if kind == "setup":
                    return self._render(
                        request,
                        "setup.html",
                        402,
                        **self._setup_view(request, conn, session, customer, error=message),
                    )
                return self._render(
                    request,
                    "portal.html",
                    402,
                    **self._portal_view(request, conn, session, customer, now, error=message),
                )
            self.ctx.processor.confirm_card(conn, customer, pm)
            if kind == "checkout":
                return self._finish_checkout(conn, request, session, customer, pm, now, True)
            if kind == "setup":
                return self._finish_setup(conn, request, session, pm, now)
            update_session(conn, session.pk, status="open", pending_payment_method_pk=None)
            self._card_saved(conn, session.customer_pk, pm, now)
            target = request.url_for("portal_page", session_id=session.id).include_query_params(
                notice="card_saved"
            )
            return RedirectResponse(f"{target.path}?{target.query}", status_code=303)

    def complete_page(self, request: Request, kind: str, session_id: str) -> Response:
        with self.ctx.db.read() as conn:
            session = load_session(conn, session_id, kind)
            if session is None:
                return self._not_found(request)
            if session.status != "complete":
                return RedirectResponse(request.url_for(f"{kind}_page", session_id=session.id).path, 303)
            chrome = self._chrome(conn, session.customer_pk, _origin(session.success_url))
            brand: Branding = chrome["brand"]
            amount = receipt_url = recurring = None
            if kind == "checkout":
                message = "Payment received. Your plan is active."
                plan_id = session.action.get("plan_id") or (session.action.get("body") or {}).get("plan_id")
                _, recurring = self._recurring(conn, session.customer_pk, plan_id, session.currency)
                amount = format_money(session.amount, session.currency)
                if session.invoice_pk is not None:
                    paid = invoice_record(conn, session.invoice_pk)
                    amount = format_money(paid.total, paid.currency)
                    receipt_url = request.url_for("invoice_page", invoice_id=paid.id).path
            else:
                message = "Your card was saved."
            return self._render(
                request,
                "done.html",
                **chrome,
                heading="Thank you",
                message=message,
                amount=amount,
                recurring=recurring.removeprefix("Then ") if recurring else None,
                receipt_url=receipt_url,
                link=chrome["back_url"],
                link_label=f"Return to {brand.name}",
            )

    # setup ---------------------------------------------------------------------------------------------
    def _setup_view(
        self, request: Request, conn: Connection, session: SessionRecord, customer: CustomerRef, **extra: Any
    ) -> Any:
        plan_name, recurring = self._recurring(conn, customer.pk, session.action.get("plan_id"), "usd")
        return {
            **self._chrome(conn, customer.pk, _origin(session.success_url)),
            "recurring": recurring,
            "customer_label": _label(customer),
            "plan_id": plan_name or session.action.get("plan_id"),
            "action": request.url_for("setup_submit", session_id=session.id).path,
            "button_label": "Save card",
            "stripe_action": self._stripe_action(request, conn, session),
            "stripe_label": "Continue to Stripe",
            **extra,
        }

    def setup_page(self, request: Request, session_id: str) -> Response:
        with self.ctx.db.read() as conn:
            session, problem, _ = self._open_session(conn, request, session_id, "setup")
            if problem is not None or session is None:
                return problem or self._not_found(request)
            if session.status == "complete":
                return self._done_redirect(request, session, session.success_url)
            customer = _customer_ref(conn, session.customer_pk)
            return self._render(request, "setup.html", **self._setup_view(request, conn, session, customer))

    def setup_submit(self, request: Request, session_id: str, form: Mapping[str, Any]) -> Response:
        with self.ctx.db.write() as conn:
            session, problem, now = self._open_session(conn, request, session_id, "setup", lock=True)
            if problem is not None or session is None:
                return problem or self._not_found(request)
            if session.status == "complete":
                return self._done_redirect(request, session, session.success_url)
            customer = _customer_ref(conn, session.customer_pk)
            open_session = session

            def refused(status: int, message: str, error_field: str | None) -> Response:
                view = self._setup_view(
                    request,
                    conn,
                    open_session,
                    customer,
                    error=message,
                    error_field=error_field,
                    **typed_back(form),
                )
                return self._render(request, "setup.html", status, **view)

            card = self._save_card(conn, request, session, customer, form, now, refused)
            if not isinstance(card, PaymentMethodInfo):
                return card
            return self._finish_setup(conn, request, session, card, now)

    def _finish_setup(
        self, conn: Connection, request: Request, session: SessionRecord, pm: PaymentMethodInfo, now: int
    ) -> Response:
        self._settle_setup(conn, session, pm, now)
        return self._done_redirect(request, session, session.success_url)

    def _settle_setup(
        self, conn: Connection, session: SessionRecord, pm: PaymentMethodInfo, now: int
    ) -> None:
        update_session(conn, session.pk, status="complete", completed_at=now, pending_payment_method_pk=None)
        self._card_saved(conn, session.customer_pk, pm, now)
        if self.ctx.hooks.complete_setup is not None:
            self.ctx.hooks.complete_setup(conn, session, pm, now)

    # portal --------------------------------------------------------------------------------------------
    def _portal_view(
        self,
        request: Request,
        conn: Connection,
        session: SessionRecord,
        customer: CustomerRef,
        now: int,
        **extra: Any,
    ) -> Any:
        lister = self.ctx.hooks.subscriptions or default_portal_subscriptions
        pm = self.ctx.processor.default_payment_method(conn, customer)
        subscriptions = lister(conn, customer.pk, now)
        can_switch = self.ctx.hooks.switch_plan is not None and self.ctx.hooks.preview_switch is not None
        return {
            **self._chrome(conn, customer.pk, session.return_url),
            "customer_label": _label(customer),
            "subscriptions": subscriptions,
            "switch_options": switch_options(conn, customer.pk, subscriptions) if can_switch else [],
            "switch_action": request.url_for("portal_switch", session_id=session.id).path,
            "can_cancel": self.ctx.hooks.cancel_subscription is not None,
            "can_uncancel": self.ctx.hooks.uncancel_subscription is not None,
            "cancel_action": request.url_for("portal_cancel", session_id=session.id).path,
            "uncancel_action": request.url_for("portal_uncancel", session_id=session.id).path,
            "payment_method": pm,
            "invoices": [
                {
                    "url": request.url_for("invoice_page", invoice_id=inv.id).path,
                    "date": _date(inv.created_at),
                    "status": inv.status,
                    "total": format_money(inv.total, inv.currency),
                }
                for inv in customer_invoices(conn, customer.pk)
            ],
            "return_url": session.return_url,
            "action": request.url_for("portal_payment_method", session_id=session.id).path,
            "button_label": "Save card",
            "stripe_action": self._stripe_action(request, conn, session),
            "stripe_label": "Update card on Stripe",
            "name": customer.name,
            "notice": None,
            **extra,
        }

    def portal_page(self, request: Request, session_id: str) -> Response:
        with self.ctx.db.read() as conn:
            session, problem, now = self._open_session(conn, request, session_id, "portal")
            if problem is not None or session is None:
                return problem or self._not_found(request)
            customer = _customer_ref(conn, session.customer_pk)
            notice = NOTICES.get(request.query_params.get("notice", ""))
            return self._render(
                request,
                "portal.html",
                **self._portal_view(request, conn, session, customer, now, notice=notice),
            )

    def portal_payment_method(self, request: Request, session_id: str, form: Mapping[str, Any]) -> Response:
        with self.ctx.db.write() as conn:
            session, problem, now = self._open_session(conn, request, session_id, "portal", lock=True)
            if problem is not None or session is None:
                return problem or self._not_found(request)
            customer = _customer_ref(conn, session.customer_pk)
            open_session = session

            def refused(status: int, message: str, error_field: str | None) -> Response:
                view = self._portal_view(
                    request,
                    conn,
                    open_session,
                    customer,
                    now,
                    error=message,
                    error_field=error_field or "card_number",
                    **typed_back(form),
                )
                return self._render(request, "portal.html", status, **view)

            card = self._save_card(conn, request, session, customer, form, now, refused)
            if not isinstance(card, PaymentMethodInfo):
                return card
            self._card_saved(conn, session.customer_pk, card, now)
            target = request.url_for("portal_page", session_id=session.id).include_query_params(
                notice="card_saved"
            )
            return RedirectResponse(f"{target.path}?{target.query}", status_code=303)

    def _portal_plan(
        self, conn: Connection, customer_pk: int, plan_id: str, now: int
    ) -> PortalSubscription | None:
        lister = self.ctx.hooks.subscriptions or default_portal_subscriptions
        return next((sub for sub in lister(conn, customer_pk, now) if sub.plan_id == plan_id), None)

    def _portal_redirect(self, request: Request, session: SessionRecord, notice: str) -> Response:
        target = request.url_for("portal_page", session_id=session.id).include_query_params(notice=notice)
        return RedirectResponse(f"{target.path}?{target.query}", status_code=303)

    def _confirm_page(
        self, request: Request, conn: Connection, session: SessionRecord, status: int = 200, **values: Any
    ) -> Response:
        values.setdefault("preview", None)
        values.setdefault("confirm_action", None)
        return self._render(
            request,
            "portal_confirm.html",
            status,
            **self._chrome(conn, session.customer_pk, session.return_url),
            portal_url=request.url_for("portal_page", session_id=session.id).path,
            **values,
        )

    def portal_cancel_confirm(self, request: Request, session_id: str, plan_id: str) -> Response:
        """The step before cancelling: what ends, and when; the undo stays possible until then."""
        with self.ctx.db.read() as conn:
            session, problem, now = self._open_session(conn, request, session_id, "portal")
            if problem is not None or session is None:
                return problem or self._not_found(request)
            sub = self._portal_plan(conn, session.customer_pk, plan_id, now)
            if sub is None or not sub.cancelable or self.ctx.hooks.cancel_subscription is None:
                return self._confirm_page(
                    request,
                    conn,
                    session,
                    404,
                    heading="Nothing to cancel",
                    message_lines=["This plan is not active, or it is already canceled."],
                )
            ends = f" It stays active until {sub.until}, and you can keep it until then." if sub.until else ""
            return self._confirm_page(
                request,
                conn,
                session,
                heading=f"Cancel {sub.name}?",
                message_lines=[f"Your {sub.name} plan will not renew.{ends}"],
                plan_id=plan_id,
                confirm_action=request.url_for("portal_cancel", session_id=session.id).path,
                confirm_label="Cancel plan",
                confirm_class="danger",
                keep_label=f"Keep {sub.name}",
            )

    def portal_uncancel(self, request: Request, session_id: str, plan_id: str) -> Response:
        with self.ctx.db.write() as conn:
            session, problem, now = self._open_session(conn, request, session_id, "portal", lock=True)
            if problem is not None or session is None:
                return problem or self._not_found(request)
            hook = self.ctx.hooks.uncancel_subscription
            sub = self._portal_plan(conn, session.customer_pk, plan_id, now)
            if hook is None or sub is None or sub.status != "canceling":
                return self._render(
                    request,
                    "portal.html",
                    409,
                    **self._portal_view(
                        request,
                        conn,
                        session,
                        _customer_ref(conn, session.customer_pk),
                        now,
                        error="This plan is not waiting to be canceled.",
                    ),
                )
            hook(conn, session.customer_pk, plan_id, now)
            return self._portal_redirect(request, session, "uncanceled")

    def _switch_preview(self, customer_pk: int, plan_id: str) -> tuple[dict[str, Any] | None, str | None]:
        """(preview for the page, None) or (None, the reason the switch is refused)."""
        hook = self.ctx.hooks.preview_switch
        if hook is None:
            return None, "Changing plans is not available here."
        try:
            body = hook(customer_pk, plan_id)
        except AutumnError as exc:  # the API's own refusal: shown on the page, never a 500
            return None, exc.message
        currency = str(body.get("currency") or "usd")

        def money(major: Any) -> str:
            return format_money(int(Decimal(str(major or 0)) * 10 ** currency_exponent(currency)), currency)

        lines = [
            {
                "description": line.get("description") or line.get("title") or "",
                "amount": money(line.get("amount")),
            }
            for line in body.get("line_items") or []
        ]
        cycle = body.get("next_cycle") or None
        next_text = None
        if cycle:
            starts = _date(cycle.get("starts_at"))
            next_text = f"Then {money(cycle.get('total'))} on {starts}." if starts else None
        return {"lines": lines, "total": money(body.get("total")), "next_cycle": next_text}, None

    def portal_switch_confirm(self, request: Request, session_id: str, plan_id: str) -> Response:
        """The switch's preview, from ``billing.preview_attach``: what is charged today and after."""
        with self.ctx.db.read() as conn:
            session, problem, _ = self._open_session(conn, request, session_id, "portal")
            if problem is not None or session is None:
                return problem or self._not_found(request)
            customer_pk = session.customer_pk
            name = self._recurring(conn, customer_pk, plan_id, "usd")[0]
        preview, refusal = self._switch_preview(customer_pk, plan_id) if name else (None, "No such plan.")
        with self.ctx.db.read() as conn:
            if preview is None:
                return self._confirm_page(
                    request, conn, session, 400, heading="Cannot change plan", message_lines=[], error=refusal
                )
            return self._confirm_page(
                request,
                conn,
                session,
                heading=f"Switch to {name}?",
                message_lines=["Review what changes before you confirm."],
                preview=preview,
                plan_id=plan_id,
                confirm_action=request.url_for("portal_switch", session_id=session.id).path,
                confirm_label=f"Switch to {name}",
                keep_label="Keep my plan",
            )

    def portal_switch(self, request: Request, session_id: str, plan_id: str) -> Response:
        with self.ctx.db.write() as conn:
            session, problem, now = self._open_session(conn, request, session_id, "portal", lock=True)
            if problem is not None or session is None:
                return problem or self._not_found(request)
            hook = self.ctx.hooks.switch_plan
            if hook is None:
                return Response("Changing plans is not available here", status_code=405)
            try:
                payment_url = hook(conn, session.customer_pk, plan_id, now)
            except AutumnError as exc:
                conn.rollback()
                return self._confirm_page(
                    request,
                    conn,
                    session,
                    400,
                    heading="Cannot change plan",
                    message_lines=[],
                    error=exc.message,
                )
            if payment_url:
                return RedirectResponse(payment_url, status_code=303)
            return self._portal_redirect(request, session, "switched")

    def portal_cancel(self, request: Request, session_id: str, plan_id: str) -> Response:
        with self.ctx.db.write() as conn:
            session, problem, now = self._open_session(conn, request, session_id, "portal", lock=True)
            if problem is not None or session is None:
                return problem or self._not_found(request)
            hook = self.ctx.hooks.cancel_subscription
            if hook is None:
                return Response("Canceling is not available here", status_code=405)
            hook(conn, session.customer_pk, plan_id, now)
            target = request.url_for("portal_page", session_id=session.id).include_query_params(
                notice="canceled"
            )
            return RedirectResponse(f"{target.path}?{target.query}", status_code=303)

    # Stripe Checkout (organizations charged through Stripe) -----------------------------------------------
    def stripe_start(self, request: Request, kind: str, session_id: str) -> Response:
        """ "Continue to Stripe": an open Checkout Session of this server session (reused while open)."""
        with self.ctx.db.write() as conn:
            session, problem, _ = self._open_session(conn, request, session_id, kind, lock=True)
            if problem is not None or session is None:
                return problem or self._not_found(request)
            if kind != "portal" and session.status == "complete":
                return self._done_redirect(request, session, session.success_url)
            if session.status == "requires_action":
                return RedirectResponse(
                    request.url_for(f"{kind}_authenticate", session_id=session.id).path, 303
                )
            processor = self._stripe(conn, session.customer_pk)
            if processor is None:
                return RedirectResponse(request.url_for(f"{kind}_page", session_id=session.id).path, 303)
            url = reusable_url(processor, current_session_id(conn, session.pk))
            if url is None:
                customer = _customer_ref(conn, session.customer_pk)
                url = open_checkout_for(conn, processor, customer, session, self._base_url(request))
            return RedirectResponse(url, status_code=303)

    def stripe_return(self, request: Request, kind: str, session_id: str) -> Response:
        """Stripe's ``success_url``: apply the Checkout (unless its webhook already did), then continue."""
        checkout_id = request.query_params.get("checkout_session", "")
        with self.ctx.db.write() as conn:
            session = load_session(conn, session_id, kind, lock=True)
            if session is None or not checkout_id:
                return self._not_found(request)
            processor = self._stripe(conn, session.customer_pk)
            if processor is None:
                return self._not_found(request)
            setup = completed_setup(processor, checkout_id)
            if setup is None or setup.server_session_id != session.id:
                return RedirectResponse(request.url_for(f"{kind}_page", session_id=session.id).path, 303)
            base_url = str(session.action.get(BASE_URL_KEY) or self._base_url(request))
            self._apply_stripe_setup(conn, processor, session, setup, base_url)
            refreshed = load_session(conn, session_id, kind)
            assert refreshed is not None
            return self._after_stripe(request, conn, refreshed, checkout_id)

    def _after_stripe(
        self, request: Request, conn: Connection, session: SessionRecord, checkout_id: str
    ) -> Response:
        """Where the payer goes once a Checkout was applied: the same as after the local card form."""
        if session.kind == "portal":
            target = request.url_for("portal_page", session_id=session.id).include_query_params(
                notice="card_saved"
            )
            return RedirectResponse(f"{target.path}?{target.query}", status_code=303)
        if session.status == "complete":
            return self._done_redirect(request, session, session.success_url)
        if session.status == "requires_action":
            return RedirectResponse(
                request.url_for(f"{session.kind}_authenticate", session_id=session.id).path, 303
            )
        now = self._now(conn, session.customer_pk)
        if session.status == "expired" or _window_passed(conn, session, now):
            return self._expired(request)
        failure = session.action.get(ERROR_KEY) or {}
        if session.kind == "checkout" and failure.get("id") == checkout_id:
            customer = _customer_ref(conn, session.customer_pk)
            return self._checkout_failed(request, conn, session, customer, str(failure.get("message")))
        return RedirectResponse(request.url_for(f"{session.kind}_page", session_id=session.id).path, 303)

    def _apply_stripe_setup(
        self,
        conn: Connection,
        processor: StripeProcessor,
        session: SessionRecord,
        setup: CompletedSetup,
        base_url: str,
    ) -> str:
        """Save the Checkout's card and continue the session as the local card form would: charge and
        complete a checkout (or park it for authentication, or reopen it after a decline), complete a
        setup, or tell the portal.  Once per Checkout Session id (the session row is locked)."""
        applied = list(session.action.get(APPLIED_KEY) or [])
        if setup.checkout_session_id in applied:
            return "already_applied"
        customer = _customer_ref(conn, session.customer_pk)
        if setup.stripe_customer and customer.processor_id and setup.stripe_customer != customer.processor_id:
            return "ignored"
        action = {**session.action, APPLIED_KEY: [*applied, setup.checkout_session_id]}
        update_session(conn, session.pk, action=action)
        session = dataclasses.replace(session, action=action)
        now = self._now(conn, session.customer_pk)
        pm = save_setup_card(conn, processor, customer, setup, now)
        if session.kind == "portal":
            self._card_saved(conn, session.customer_pk, pm, now)
            return "card_saved"
        if session.status not in ("open", "requires_action") or _window_passed(conn, session, now):
            return "card_saved"  # paid or set up another way meanwhile, or expired: only the card is kept
        if session.kind == "setup":
            self._settle_setup(conn, session, pm, now)
            return "setup_complete"
        outcome = self._settle_checkout(conn, session, customer, pm, now, False, base_url)
        if outcome.succeeded:
            return "checkout_complete"
        if outcome.status is ChargeStatus.REQUIRES_ACTION:
            return "requires_action"
        message = outcome.failure_message or "The payment failed."
        failed = {**action, ERROR_KEY: {"id": setup.checkout_session_id, "message": message}}
        update_session(conn, session.pk, action=failed)
        return "payment_failed"

    def stripe_checkout_event(
        self, conn: Connection, org_pk: int, env: str, checkout: Mapping[str, Any], now: int
    ) -> str:
        """``checkout.session.completed`` from the organization's Stripe account: the same as the return
        route (whichever comes first applies the Checkout, the other changes nothing)."""
        metadata = dict(checkout.get("metadata") or {})
        checkout_id = str(checkout.get("id") or "")
        server_id = metadata.get("autumn_session_id") or checkout.get("client_reference_id")
        kind = str(metadata.get("autumn_session_kind") or "")
        if not checkout_id or not server_id or kind not in ("checkout", "setup", "portal"):
            return "ignored"
        session = load_session(conn, str(server_id), kind, lock=True)
        if session is None:
            return "ignored"
        owner = conn.execute(
            select(customers.c.org_pk, customers.c.env).where(customers.c.pk == session.customer_pk)
        ).one()
        processor = self._stripe(conn, session.customer_pk)
        if (int(owner.org_pk), str(owner.env)) != (org_pk, env) or processor is None:
            return "ignored"
        setup = completed_setup(processor, checkout_id)
        if setup is None or setup.server_session_id != session.id:
            return "ignored"
        base_url = str(session.action.get(BASE_URL_KEY) or "http://127.0.0.1")
        return self._apply_stripe_setup(conn, processor, session, setup, base_url)

    # invoices ------------------------------------------------------------------------------------------
    def _invoice_document(
        self, request: Request, conn: Connection, invoice_id: str
    ) -> tuple[Any, InvoiceDocument, dict[str, Any]] | None:
        """The invoice's facts (for the page and the PDF) and the page's frame; None when unknown."""
        row = invoice_by_id(conn, invoice_id)
        if row is None:
            return None
        chrome = self._chrome(conn, row.customer_pk)
        brand: Branding = chrome["brand"]
        customer = _customer_ref(conn, row.customer_pk)
        paid_with = conn.execute(
            select(charges.c.payment_method_pk)
            .where(charges.c.invoice_pk == row.pk, charges.c.status == "succeeded")
            .order_by(charges.c.pk.desc())
            .limit(1)
        ).scalar()
        card = payment_method_by_pk(conn, paid_with) if paid_with is not None else None
        credit = int(row.credit_applied or 0)
        doc = InvoiceDocument(
            number=row.id,
            status=row.status,
            date=_date(row.created_at) or "",
            paid_date=_date(row.paid_at),
            seller=brand.name,
            seller_url=brand.website_url,
            customer_lines=[
                part for part in (customer.name, customer.email, f"Customer {customer.id}") if part
            ],
            lines=[
                (line.description, format_money(line.amount, row.currency))
                for line in invoice_lines_of(conn, row.pk)
            ],
            credit=format_money(-credit, row.currency) if credit else None,
            total=format_money(row.total, row.currency),
            card=f"{card.brand.capitalize()} ending in {card.last4}" if card else None,
        )
        return row, doc, chrome

    def invoice_page(self, request: Request, invoice_id: str) -> Response:
        with self.ctx.db.read() as conn:
            found = self._invoice_document(request, conn, invoice_id)
            if found is None:
                return self._not_found(request)
            row, doc, chrome = found
            return self._render(
                request,
                "invoice.html",
                **chrome,
                number=doc.number,
                invoice_id=row.id,
                invoice_status=row.status,
                date=doc.date,
                paid_date=doc.paid_date,
                seller=doc.seller,
                seller_url=doc.seller_url,
                customer_lines=doc.customer_lines,
                card=doc.card,
                lines=[{"description": d, "amount": a} for d, a in doc.lines],
                credit=doc.credit,
                total=doc.total,
                notice=DRAFT_NOTICE if row.status == "draft" else None,
                pay_url=row.hosted_url if row.status == "open" and row.reason == "invoice" else None,
                pdf_url=request.url_for("invoice_pdf", invoice_id=row.id).path,
            )

    def invoice_pdf(self, request: Request, invoice_id: str) -> Response:
        with self.ctx.db.read() as conn:
            found = self._invoice_document(request, conn, invoice_id)
        if found is None:
            return self._not_found(request)
        _, doc, _ = found
        return Response(
            invoice_pdf(doc),
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="invoice-{doc.number}.pdf"'},
        )


StripeCheckoutCompleted = Callable[[Connection, int, str, Mapping[str, Any], int], str]
"""Applies a verified ``checkout.session.completed`` (org pk, env, the session object, now)."""


def stripe_checkout_completer(ctx: PagesContext) -> StripeCheckoutCompleted:
    """What the Stripe webhook endpoint calls for ``checkout.session.completed`` (inside its transaction)."""
    return _Pages(ctx).stripe_checkout_event


def billing_page_routes(ctx: PagesContext) -> list[BaseRoute]:
    """Routes to mount at the app root: checkout, setup, portal and invoice pages.

    ``/checkout/{id}``, ``/setup/{id}`` and ``/portal/{id}`` each have an ``/authenticate`` step; checkout
    and setup have a ``/complete`` page; ``/invoices/{id}`` shows one invoice.  For a Stripe organization
    each also has ``POST /stripe`` (on to Stripe Checkout) and ``GET /stripe-return`` (Stripe's way back).
    """
    pages = _Pages(ctx)

    def sid(request: Request) -> str:
        return str(request.path_params["session_id"])

    async def checkout_page(request: Request) -> Response:
        return await run_in_threadpool(pages.checkout_page, request, sid(request))

    async def checkout_pay(request: Request) -> Response:
        form = dict(await request.form())
        return await run_in_threadpool(pages.checkout_pay, request, sid(request), form)

    def authenticate(kind: str) -> tuple[Callable[[Request], Any], Callable[[Request], Any]]:
        async def page(request: Request) -> Response:
            return await run_in_threadpool(pages.authenticate_page, request, kind, sid(request))

        async def submit(request: Request) -> Response:
            form = await request.form()
            decision = str(form.get("decision", "fail"))
            return await run_in_threadpool(pages.authenticate_submit, request, kind, sid(request), decision)

        return page, submit

    def complete(kind: str) -> Callable[[Request], Any]:
        async def page(request: Request) -> Response:
            return await run_in_threadpool(pages.complete_page, request, kind, sid(request))

        return page

    async def setup_page(request: Request) -> Response:
        return await run_in_threadpool(pages.setup_page, request, sid(request))

    async def setup_submit(request: Request) -> Response:
        form = dict(await request.form())
        return await run_in_threadpool(pages.setup_submit, request, sid(request), form)

    async def portal_page(request: Request) -> Response:
        return await run_in_threadpool(pages.portal_page, request, sid(request))

    async def portal_payment_method(request: Request) -> Response:
        form = dict(await request.form())
        return await run_in_threadpool(pages.portal_payment_method, request, sid(request), form)

    async def portal_cancel(request: Request) -> Response:
        form = await request.form()
        plan_id = str(form.get("plan_id", ""))
        return await run_in_threadpool(pages.portal_cancel, request, sid(request), plan_id)

    def stripe(kind: str) -> tuple[Callable[[Request], Any], Callable[[Request], Any]]:
        async def start(request: Request) -> Response:
            return await run_in_threadpool(pages.stripe_start, request, kind, sid(request))

        async def back(request: Request) -> Response:
            return await run_in_threadpool(pages.stripe_return, request, kind, sid(request))

        return start, back

    async def invoice_page(request: Request) -> Response:
        return await run_in_threadpool(pages.invoice_page, request, str(request.path_params["invoice_id"]))

    async def invoice_pdf_download(request: Request) -> Response:
        return await run_in_threadpool(pages.invoice_pdf, request, str(request.path_params["invoice_id"]))

    async def portal_cancel_confirm(request: Request) -> Response:
        plan_id = request.query_params.get("plan_id", "")
        return await run_in_threadpool(pages.portal_cancel_confirm, request, sid(request), plan_id)

    async def portal_uncancel(request: Request) -> Response:
        form = await request.form()
        plan_id = str(form.get("plan_id", ""))
        return await run_in_threadpool(pages.portal_uncancel, request, sid(request), plan_id)

    async def portal_switch_confirm(request: Request) -> Response:
        plan_id = request.query_params.get("plan_id", "")
        return await run_in_threadpool(pages.portal_switch_confirm, request, sid(request), plan_id)

    async def portal_switch(request: Request) -> Response:
        form = await request.form()
        plan_id = str(form.get("plan_id", ""))
        return await run_in_threadpool(pages.portal_switch, request, sid(request), plan_id)

    routes: list[BaseRoute] = [
        Route("/checkout/{session_id}", checkout_page, methods=["GET"], name="checkout_page"),
        Route("/checkout/{session_id}", checkout_pay, methods=["POST"], name="checkout_pay"),
        Route(
            "/checkout/{session_id}/complete", complete("checkout"), methods=["GET"], name="checkout_complete"
        ),
        Route("/setup/{session_id}", setup_page, methods=["GET"], name="setup_page"),
        Route("/setup/{session_id}", setup_submit, methods=["POST"], name="setup_submit"),
        Route("/setup/{session_id}/complete", complete("setup"), methods=["GET"], name="setup_complete"),
        Route("/portal/{session_id}", portal_page, methods=["GET"], name="portal_page"),
        Route(
            "/portal/{session_id}/payment-method",
            portal_payment_method,
            methods=["POST"],
            name="portal_payment_method",
        ),
        Route("/portal/{session_id}/cancel", portal_cancel, methods=["POST"], name="portal_cancel"),
        Route(
            "/portal/{session_id}/cancel",
            portal_cancel_confirm,
            methods=["GET"],
            name="portal_cancel_confirm",
        ),
        Route("/portal/{session_id}/uncancel", portal_uncancel, methods=["POST"], name="portal_uncancel"),
        Route(
            "/portal/{session_id}/switch",
            portal_switch_confirm,
            methods=["GET"],
            name="portal_switch_confirm",
        ),
        Route("/portal/{session_id}/switch", portal_switch, methods=["POST"], name="portal_switch"),
        Route("/invoices/{invoice_id}", invoice_page, methods=["GET"], name="invoice_page"),
        Route("/invoices/{invoice_id}/pdf", invoice_pdf_download, methods=["GET"], name="invoice_pdf"),
    ]
    for kind in ("checkout", "setup", "portal"):
        page, submit = authenticate(kind)
        path = f"/{kind}/{{session_id}}/authenticate"
        routes.append(Route(path, page, methods=["GET"], name=f"{kind}_authenticate_page"))
        routes.append(Route(path, submit, methods=["POST"], name=f"{kind}_authenticate"))
        start, back = stripe(kind)
        routes.append(
            Route(f"/{kind}/{{session_id}}/stripe", start, methods=["POST"], name=f"{kind}_stripe_start")
        )
        routes.append(
            Route(
                f"/{kind}/{{session_id}}/stripe-return", back, methods=["GET"], name=f"{kind}_stripe_return"
            )
        )
    secured_routes: list[BaseRoute] = [
        Route(route.path, secured(route.endpoint), methods=sorted(route.methods or ()), name=route.name)
        for route in routes
        if isinstance(route, Route)
    ]
    static = StaticHeaders(StaticFiles(directory=str(STATIC_DIR)))
    return [*secured_routes, Mount("/static/billing", app=static, name="billing_static")]
