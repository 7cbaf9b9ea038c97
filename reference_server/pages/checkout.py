"""The checkout page: pay the session's invoice draft (or an open invoice) with a new or saved card."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from reference_server.billing.stripe_metadata import action_metadata
from reference_server.errors import ApiError
from reference_server.processors.contract import ChargeOutcome, ChargeStatus
from reference_server.store.billing_sessions import SessionRecord, load_session, update_session
from reference_server.store.customer_lookup import CustomerRef
from reference_server.store.invoices import invoice_record, set_invoice_status
from reference_server.store.payment_methods import PaymentMethodInfo

from .base import PageBase, customer_ref
from .formatting import customer_label, format_money
from .forms import typed_back


class CheckoutPages(PageBase):
    """The checkout page's handlers; settling a checkout is shared with authentication and Stripe."""

    def _checkout_view(
        self, request: Request, conn: Connection, session: SessionRecord, customer: CustomerRef, **extra: Any
    ) -> Any:
        draft = session.draft
        saved_card = self._processor(conn, customer.pk).default_payment_method(conn, customer)
        plan_id = session.action.get("plan_id") or (session.action.get("body") or {}).get("plan_id")
        plan_name, recurring = self._recurring(conn, customer.pk, plan_id, draft.currency)
        return {
            **self._chrome(conn, customer.pk, self._way_back(session)),
            "plan_name": plan_name,
            "recurring": recurring,
            "lines": [
                {"description": line.description, "amount": format_money(line.amount, draft.currency)}
                for line in draft.lines
            ],
            "total": format_money(draft.total, draft.currency),
            "customer_label": customer_label(customer),
            "saved_card": saved_card,
            "action": request.url_for("checkout_pay", session_id=session.id).path,
            "button_label": f"Pay {format_money(draft.total, draft.currency)}"
            if draft.total > 0
            else "Confirm",
            "stripe_action": self._stripe_action(request, conn, session),
            "stripe_label": "Pay with another card on Stripe" if saved_card else "Continue to Stripe",
            **extra,
        }

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
                processor = self._processor(conn, session.customer_pk)
                if invoice.status == "open" and processor.void_invoice(conn, invoice):
                    set_invoice_status(conn, invoice_pk, "void")

    def checkout_link(self, request: Request, link_id: str) -> Response:
        """A long-lived checkout link (``/l/{id}``, from ``long_lived_checkout``): on to a checkout of its
        attach, the one an earlier opening made while it still waits, else a fresh one priced now."""
        with self.ctx.db.write() as conn:
            link, problem, now = self._open_session(conn, request, link_id, "link", lock=True)
            if problem is not None or link is None:
                return problem or self._not_found(request)
            hook = self.ctx.hooks.open_checkout_link
            if hook is None:
                return self._not_found(request)
            try:
                url = hook(conn, link, self._base_url(request), now)
            except ApiError as exc:  # the attach is refused now (e.g. the plan was attached meanwhile)
                conn.rollback()
                return self._render(
                    request,
                    "done.html",
                    exc.status,
                    heading="Cannot check out",
                    message=exc.message,
                    link=None,
                )
            return RedirectResponse(url, status_code=303)

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
            customer = customer_ref(conn, session.customer_pk)
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
            customer = customer_ref(conn, session.customer_pk)
            if form.get("use_saved"):
                saved = self._processor(conn, customer.pk).default_payment_method(conn, customer)
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
        processor = self._processor(conn, customer.pk)
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
                metadata=action_metadata(session.action),  # an attach's, for the Stripe invoice
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
            expire_stripe.close_card_page(conn, session)
        return outcome
