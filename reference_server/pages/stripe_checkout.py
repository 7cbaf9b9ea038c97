"""Stripe Checkout for an organization charged through Stripe: on to Stripe's page, back, and its webhook.

Applying a completed Checkout continues the session as the local card form would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from reference_server.processors.contract import ChargeStatus, PaymentProcessor
from reference_server.processors.stripe.checkout import (
    APPLIED_KEY,
    BASE_URL_KEY,
    ERROR_KEY,
    CompletedSetup,
)
from reference_server.store.billing_sessions import SessionRecord, load_session, update_session
from reference_server.store.customer_lookup import customer_owner

from .base import customer_ref, window_passed
from .checkout import CheckoutPages
from .setup import SetupPages


class StripeCheckoutPages(CheckoutPages, SetupPages):
    """Stripe Checkout in place of the card form; a completed Checkout settles a checkout or a setup."""

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
            customer = customer_ref(conn, session.customer_pk)
            url = processor.card_page_url(conn, customer, session, self._base_url(request), reuse_open=True)
            if url is None:
                return RedirectResponse(request.url_for(f"{kind}_page", session_id=session.id).path, 303)
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
            setup = processor.completed_card_setup(checkout_id)
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
        if session.status == "expired" or window_passed(conn, session, now):
            return self._expired(request)
        failure = session.action.get(ERROR_KEY) or {}
        if session.kind == "checkout" and failure.get("id") == checkout_id:
            customer = customer_ref(conn, session.customer_pk)
            return self._checkout_failed(request, conn, session, customer, str(failure.get("message")))
        return RedirectResponse(request.url_for(f"{session.kind}_page", session_id=session.id).path, 303)

    def _apply_stripe_setup(
        self,
        conn: Connection,
        processor: PaymentProcessor,
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
        customer = customer_ref(conn, session.customer_pk)
        if setup.stripe_customer and customer.processor_id and setup.stripe_customer != customer.processor_id:
            return "ignored"
        action = {**session.action, APPLIED_KEY: [*applied, setup.checkout_session_id]}
        update_session(conn, session.pk, action=action)
        session = dataclasses.replace(session, action=action)
        now = self._now(conn, session.customer_pk)
        pm = processor.save_card_setup(conn, customer, setup, now)
        if session.kind == "portal":
            self._card_saved(conn, session.customer_pk, pm, now)
            return "card_saved"
        if session.status not in ("open", "requires_action") or window_passed(conn, session, now):
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
        owner = customer_owner(conn, session.customer_pk)
        processor = self._stripe(conn, session.customer_pk)
        if (owner.org_pk, owner.env) != (org_pk, env) or processor is None:
            return "ignored"
        setup = processor.completed_card_setup(checkout_id)
        if setup is None or setup.server_session_id != session.id:
            return "ignored"
        base_url = str(session.action.get(BASE_URL_KEY) or "http://127.0.0.1")
        return self._apply_stripe_setup(conn, processor, session, setup, base_url)
