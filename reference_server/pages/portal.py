"""The customer portal: the customer's plans (cancel, undo a cancel, switch), card and invoices."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from reference_server.billing.page_actions import PortalSubscription
from reference_server.engine.billing.money import currency_exponent
from reference_server.errors import ApiError
from reference_server.store.billing_sessions import SessionRecord
from reference_server.store.customer_lookup import CustomerRef, customer_owner
from reference_server.store.held_plans import active_main_plan_groups, held_plans
from reference_server.store.invoices import customer_invoices
from reference_server.store.payment_methods import PaymentMethodInfo
from reference_server.store.plan_summaries import latest_main_plans_in

from .base import PageBase, customer_ref
from .formatting import customer_label, format_date, format_money, price_label
from .forms import typed_back

NOTICES = {
    "card_saved": "Your card was saved.",
    "canceled": "The plan was canceled. It stays active until the end of the billing period.",
    "uncanceled": "Your plan will renew as before.",
    "switched": "Your plan was changed.",
}


def default_portal_subscriptions(conn: Connection, customer_pk: int, now: int) -> list[PortalSubscription]:
    """The customer's active and scheduled plans, read from the core's tables."""
    rows = held_plans(conn, customer_pk)
    result = []
    for row in rows:
        if row.status == "scheduled":
            status, until = "scheduled", format_date(row.starts_at or row.current_period_start)
        elif row.past_due:
            status, until = "past due", format_date(row.current_period_end)
        elif row.canceled_at is not None:
            status, until = "canceling", format_date(row.expires_at)
        elif row.trial_ends_at is not None and row.trial_ends_at > now:
            status, until = "trialing", format_date(row.trial_ends_at)
        else:
            status, until = "active", format_date(row.current_period_end)
        cancelable = row.status == "active" and row.canceled_at is None and row.current_period_end is not None
        price = price_label(row.price)
        result.append(PortalSubscription(row.plan_id, row.name, status, until, cancelable, price))
    return result


def switch_options(
    conn: Connection, customer_pk: int, current: list[PortalSubscription]
) -> list[dict[str, Any]]:
    """Plans the customer can switch to in the portal: the latest version of each main (not add-on)
    plan of the groups they are in, other than the ones they have."""
    owner = customer_owner(conn, customer_pk)
    held = {sub.plan_id for sub in current}
    groups = active_main_plan_groups(conn, customer_pk)
    if not groups:
        return []
    rows = latest_main_plans_in(conn, owner.org_pk, owner.env, groups)
    return [
        {"plan_id": r.id, "name": r.name, "price": price_label(r.price) or "Free"}
        for r in rows
        if r.id not in held
    ]


class PortalPages(PageBase):
    """The portal's handlers: the page, its card form and its plan actions."""

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
        pm = self._processor(conn, customer.pk).default_payment_method(conn, customer)
        subscriptions = lister(conn, customer.pk, now)
        can_switch = self.ctx.hooks.switch_plan is not None and self.ctx.hooks.preview_switch is not None
        return {
            **self._chrome(conn, customer.pk, session.return_url),
            "customer_label": customer_label(customer),
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
                    "date": format_date(inv.created_at),
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
            customer = customer_ref(conn, session.customer_pk)
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
            customer = customer_ref(conn, session.customer_pk)
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
                        customer_ref(conn, session.customer_pk),
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
        except ApiError as exc:  # the API's own refusal: shown on the page, never a 500
            return None, exc.message
        currency = body["currency"] or "usd"

        def money(major: float) -> str:
            return format_money(int(Decimal(str(major)) * 10 ** currency_exponent(currency)), currency)

        lines = [
            {"description": line["description"], "amount": money(line["total"])}
            for line in body["line_items"]
        ]
        cycle = body.get("next_cycle")
        next_text = None
        if cycle is not None:
            starts = format_date(cycle["starts_at"])
            next_text = f"Then {money(cycle['total'])} on {starts}." if starts else None
        return {"lines": lines, "total": money(body["total"]), "next_cycle": next_text}, None

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
            except ApiError as exc:
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
