"""What every hosted page shares: rendering and the page frame, loading a session (not found, expired,
not finalized), saving a typed card and parking a session for authentication.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from reference_server.billing.checkout_session_params import cancel_url_of
from reference_server.billing.invoice_mode import is_open_invoice_mode_invoice
from reference_server.processors.cards import TEST_CARD_HINTS, CardError
from reference_server.processors.contract import PaymentProcessor
from reference_server.processors.registry import describe_failure, processor_for
from reference_server.store.billing_sessions import SessionRecord, load_session, update_session
from reference_server.store.customer_lookup import CustomerRef, customer_owner
from reference_server.store.customers import customer_at
from reference_server.store.invoices import invoice_record
from reference_server.store.payment_methods import PaymentMethodInfo
from reference_server.store.plan_summaries import latest_plan
from reference_server.store.tables.dashboard import branding_of

from .context import PagesContext
from .formatting import app_origin, price_label
from .forms import ERROR_FIELDS, STRIPE_CARD_ENTRY, card_from_form

log = logging.getLogger("reference_server")

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

DRAFT_NOTICE = "This invoice is a draft: it is not finalized yet, so there is nothing to pay."


def window_passed(conn: Connection, session: SessionRecord, now: int) -> bool:
    """The session's link can no longer be used: its window passed.  The page of an open invoice-mode
    invoice has none: it is the invoice's own page, payable until the invoice is paid or voided."""
    if now < session.expires_at:
        return False
    invoice_pk = session.invoice_pk
    if session.kind != "checkout" or invoice_pk is None:
        return True
    return not is_open_invoice_mode_invoice(conn, invoice_pk)


def customer_ref(conn: Connection, customer_pk: int) -> CustomerRef:
    row = customer_at(conn, customer_pk)
    # customers.id is nullable while CustomerRef.id is not: the ref carries the row's id as it is
    return CustomerRef(row.pk, cast(str, row.id), row.email, row.name, row.stripe_id)


PROCESSOR_FAILURE_MESSAGE = "The payment could not be processed right now. Please try again in a few minutes."
"""What a payer reads when the payment processor failed (the processor's own message is logged)."""


class PageBase:
    """The shared part of the page handlers; each page family adds its own in a subclass."""

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
        owner = customer_owner(conn, customer_pk)
        brand = branding_of(conn, owner.org_pk)
        return {
            "brand": brand,
            "test_mode": owner.env != "live",
            "back_url": back_url or brand.website_url,
        }

    @staticmethod
    def _way_back(session: SessionRecord) -> str | None:
        """Where a checkout or setup page's "Cancel and return" link goes: the request's
        ``checkout_session_params.cancel_url``, else the origin of its ``success_url``."""
        return cancel_url_of(session.action) or app_origin(session.success_url)

    @staticmethod
    def _recurring(
        conn: Connection, customer_pk: int, plan_id: Any, currency: str
    ) -> tuple[str | None, str | None]:
        """(plan name, "Then $20.00/month") for the plan a session attaches; Nones without one."""
        if not plan_id:
            return None, None
        owner = customer_owner(conn, customer_pk)
        row = latest_plan(conn, owner.org_pk, owner.env, str(plan_id))
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

    def processor_failure_page(self, request: Request, exc: Exception) -> HTMLResponse | None:
        """The error page for a payment processor's failure nothing caught (Stripe down or refusing;
        the page's transaction was rolled back on the way here), with the status the API answers for it
        (400); None for any other exception. The payer sees a plain message: the processor's own (which
        can name the server's hosts and ports) goes to the log, as the API's caller gets it."""
        described = describe_failure(exc)
        if described is None:
            return None
        log.error(
            "payment processor error on %s: %s [%s]", request.url.path, described.message, type(exc).__name__
        )
        return self._render(
            request,
            "done.html",
            described.status,
            heading="Payment processor error: please try again later",
            message=PROCESSOR_FAILURE_MESSAGE,
            link=None,
        )

    def _expired(self, request: Request) -> HTMLResponse:
        return self._render(
            request, "done.html", 410, heading="Link expired", message="This link has expired.", link=None
        )

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

    def _processor(self, conn: Connection, customer_pk: int) -> PaymentProcessor:
        """The processor acting for the customer."""
        return processor_for(self.ctx.processors, conn, customer_pk)

    def _stripe(self, conn: Connection, customer_pk: int) -> PaymentProcessor | None:
        """The customer's processor when it collects cards on its own page (Stripe Checkout): their card
        is never typed here; None when this server's card form collects it."""
        processor = self._processor(conn, customer_pk)
        return processor if processor.has_own_card_page() else None

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
            setup = self._processor(conn, customer.pk).add_card(conn, customer, card_from_form(form), now)
        except CardError as exc:
            return error_page(
                402 if exc.code in ("card_declined", "insufficient_funds") else 400,
                exc.message,
                ERROR_FIELDS.get(exc.code),
            )
        if setup.needs_authentication:
            return self._authentication_step(conn, request, session, session.kind, setup.payment_method.pk)
        return setup.payment_method

    @staticmethod
    def _base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

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
        if (session.status != "complete" or kind == "portal") and window_passed(conn, session, now):
            return None, self._expired(request), now
        return session, None, now
