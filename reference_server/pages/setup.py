"""The setup-payment page: save a card for later, with no charge."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from reference_server.store.billing_sessions import SessionRecord, update_session
from reference_server.store.customer_lookup import CustomerRef
from reference_server.store.payment_methods import PaymentMethodInfo

from .base import PageBase, customer_ref
from .formatting import customer_label
from .forms import typed_back


class SetupPages(PageBase):
    """The setup page's handlers."""

    def _setup_view(
        self, request: Request, conn: Connection, session: SessionRecord, customer: CustomerRef, **extra: Any
    ) -> Any:
        plan_name, recurring = self._recurring(conn, customer.pk, session.action.get("plan_id"), "usd")
        return {
            **self._chrome(conn, customer.pk, self._way_back(session)),
            "recurring": recurring,
            "customer_label": customer_label(customer),
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
            customer = customer_ref(conn, session.customer_pk)
            return self._render(request, "setup.html", **self._setup_view(request, conn, session, customer))

    def setup_submit(self, request: Request, session_id: str, form: Mapping[str, Any]) -> Response:
        with self.ctx.db.write() as conn:
            session, problem, now = self._open_session(conn, request, session_id, "setup", lock=True)
            if problem is not None or session is None:
                return problem or self._not_found(request)
            if session.status == "complete":
                return self._done_redirect(request, session, session.success_url)
            customer = customer_ref(conn, session.customer_pk)
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
