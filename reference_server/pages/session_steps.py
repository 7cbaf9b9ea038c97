"""The steps every session kind shares: authenticating the card (3-D Secure) and the thank-you page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from reference_server.store.billing_sessions import load_session, update_session
from reference_server.store.invoices import invoice_record
from reference_server.store.payment_methods import payment_method_by_pk
from reference_server.store.tables.dashboard import Branding

from .base import customer_ref
from .checkout import CheckoutPages
from .formatting import app_origin, format_money
from .portal import PortalPages
from .setup import SetupPages


class SessionStepPages(CheckoutPages, SetupPages, PortalPages):
    """Authentication and completion for every session kind: each continues its own page family."""

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
            customer = customer_ref(conn, session.customer_pk)
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
            self._processor(conn, customer.pk).confirm_card(conn, customer, pm)
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
            chrome = self._chrome(conn, session.customer_pk, app_origin(session.success_url))
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
