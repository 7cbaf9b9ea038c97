"""Billing wired into the app at start: the hooks the services call, the pages' actions, background work.

:func:`wire_billing` is called once by ``create_app``; it installs :class:`BillingHooks` into
``AppState.billing`` and gives back what the app mounts and starts (:class:`BillingRuntime`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from starlette.routing import BaseRoute

from autumn_sdk._generated.json_types import PreviewAttachResponseJson
from autumn_sdk._generated.models import (
    AttachParams,
    CreateScheduleParams,
    MultiAttachParams,
    PreviewAttachParams,
    UpdateSubscriptionParams,
)
from reference_server.billing.attach import attach_in, open_checkout_link, preview_attach
from reference_server.billing.customer_pages import setup_attach
from reference_server.billing.invoice_actions import InvoiceActions
from reference_server.billing.invoice_list import list_invoices
from reference_server.billing.invoice_mode import finalize_invoice
from reference_server.billing.multi_attach import multi_attach_in
from reference_server.billing.page_actions import PageActions
from reference_server.billing.plan_changes import trial_used
from reference_server.billing.processor_choice import org_stripe_processor, processor_for, processors_of
from reference_server.billing.renewals import maintenance_hook, past_due_instances, retry_past_due
from reference_server.billing.schedules import create_schedule_in
from reference_server.billing.seats import make_seat_billing
from reference_server.billing.update_apply import apply_update
from reference_server.billing.update_quote import update_quotes
from reference_server.billing.usage_alerts import make_track_watcher
from reference_server.clock import Clock
from reference_server.processors.compensation import RefundRetrier
from reference_server.processors.contract import PaymentProcessor
from reference_server.processors.registration import EventHooks
from reference_server.processors.stripe.processor import StripeProcessor
from reference_server.processors.stripe.subscriptions import StripeSubscriptionMirror
from reference_server.processors.stripe_accounts import stripe_processor_for
from reference_server.service.context import AppState, BillingHooks, Ctx
from reference_server.store import idempotency
from reference_server.store.billing_sessions import SessionRecord
from reference_server.store.catalog import Plan
from reference_server.store.customer_lookup import customer_clock_offset, customer_id_at, customer_owner
from reference_server.store.customers import customer_at
from reference_server.store.invoices import InvoiceRecord
from reference_server.store.org_tenants import tenant_of
from reference_server.store.payment_methods import PaymentMethodInfo, default_payment_method
from reference_server.store.subjects import CustomerRow
from reference_server.webhooks import DeliveryPolicy, WebhookDeliverer, WebhookWorker
from reference_server.webhooks.routes import webhook_routes


@dataclass
class BillingRuntime:
    """What billing adds to the app beyond the hooks: its routes, its background work, and what the app
    builds the hosted pages and the processors' event routes with."""

    routes: list[BaseRoute]
    """Outbound webhook endpoints' routes (the app mounts the pages and the event routes beside them)."""
    page_actions: PageActions
    """What completing a hosted page does to plans (the app builds the pages' ``PagesContext`` with them)."""
    event_hooks: EventHooks
    """What the processors' event routes call; the app adds the pages' ``checkout_completed``."""
    worker: WebhookWorker
    """Webhook deliveries and billing's due jobs; runs while this process holds the jobs' lease."""
    refunds: RefundRetrier
    subscription_mirror: StripeSubscriptionMirror


def _ctx_for_customer(state: AppState, conn: Connection, customer_pk: int) -> Ctx:
    owner = customer_owner(conn, customer_pk)
    return Ctx(state, tenant_of(conn, owner.org_pk, owner.env))


def _page_actions(state: AppState) -> PageActions:
    def customer_now(conn: Connection, customer_pk: int) -> int:
        ctx = _ctx_for_customer(state, conn, customer_pk)
        offset = customer_clock_offset(conn, customer_pk)
        return ctx.now(int(offset or 0))

    def complete_checkout(
        conn: Connection, session: SessionRecord, invoice: InvoiceRecord | None, now: int
    ) -> None:
        ctx = _ctx_for_customer(state, conn, session.customer_pk)
        op = session.action.get("op")
        body = dict(session.action.get("body") or {})
        base = state.background_url
        # the session keeps the request as its JSON (payment_collection.checkout_action)
        if op == "attach":
            attach_in(ctx, conn, AttachParams.model_validate(body), base, paid=True)
        elif op == "multi_attach":
            multi_attach_in(ctx, conn, MultiAttachParams.model_validate(body), base, paid=True)
        elif op == "create_schedule":
            create_schedule_in(ctx, conn, CreateScheduleParams.model_validate(body), base, paid=True)
        elif op == "update":  # an invoice-mode update's invoice paid: the update happens now
            params = UpdateSubscriptionParams.model_validate(body)
            apply_update(ctx, conn, update_quotes(ctx, conn, params), base, paid=True)

    def complete_setup(conn: Connection, session: SessionRecord, pm: PaymentMethodInfo, now: int) -> None:
        plan_id = session.action.get("plan_id")
        if not plan_id:
            return
        ctx = _ctx_for_customer(state, conn, session.customer_pk)
        attach_in(ctx, conn, setup_attach(dict(session.action.get("body") or {})), state.background_url)

    def cancel_subscription(conn: Connection, customer_pk: int, plan_id: str, now: int) -> None:
        ctx = _ctx_for_customer(state, conn, customer_pk)
        customer_id = customer_id_at(conn, customer_pk)
        params = UpdateSubscriptionParams(
            customer_id=customer_id, plan_id=plan_id, cancel_action="cancel_end_of_cycle"
        )
        apply_update(ctx, conn, update_quotes(ctx, conn, params), state.background_url)

    def payment_method_saved(conn: Connection, customer_pk: int, pm: PaymentMethodInfo, now: int) -> None:
        retry_past_due(conn, customer_at(conn, customer_pk), processor_for(state, conn, customer_pk), now)

    def uncancel_subscription(conn: Connection, customer_pk: int, plan_id: str, now: int) -> None:
        """The portal's undo: the API's ``billing.update`` with ``cancel_action: "uncancel"``."""
        ctx = _ctx_for_customer(state, conn, customer_pk)
        customer_id = customer_id_at(conn, customer_pk)
        params = UpdateSubscriptionParams(customer_id=customer_id, plan_id=plan_id, cancel_action="uncancel")
        apply_update(ctx, conn, update_quotes(ctx, conn, params), state.background_url)

    def preview_switch(customer_pk: int, plan_id: str) -> PreviewAttachResponseJson:
        """The portal's plan-switch preview: ``billing.preview_attach`` itself."""
        with state.db.read() as conn:
            ctx = _ctx_for_customer(state, conn, customer_pk)
            customer_id = customer_id_at(conn, customer_pk)
        return preview_attach(ctx, PreviewAttachParams(customer_id=customer_id, plan_id=plan_id))

    def switch_plan(conn: Connection, customer_pk: int, plan_id: str, now: int) -> str | None:
        """The portal's plan switch: ``billing.attach`` itself; its payment URL when one is needed."""
        ctx = _ctx_for_customer(state, conn, customer_pk)
        customer_id = customer_id_at(conn, customer_pk)
        out = attach_in(
            ctx, conn, AttachParams(customer_id=customer_id, plan_id=plan_id), state.background_url
        )
        url = out.get("payment_url")
        return str(url) if url else None

    def checkout_link(conn: Connection, link: SessionRecord, base_url: str, now: int) -> str:
        ctx = _ctx_for_customer(state, conn, link.customer_pk)
        return open_checkout_link(ctx, conn, link, base_url, now)

    return PageActions(
        open_checkout_link=checkout_link,
        payment_method_saved=payment_method_saved,
        complete_checkout=complete_checkout,
        complete_setup=complete_setup,
        cancel_subscription=cancel_subscription,
        customer_now=customer_now,
        uncancel_subscription=uncancel_subscription,
        preview_switch=preview_switch,
        switch_plan=switch_plan,
    )


def plan_trial_used(conn: Connection, customer: CustomerRow, plan: Plan) -> bool:
    """Whether the customer (or its fingerprint, for a ``unique_fingerprint`` trial) used the trial."""
    trial = plan.free_trial
    unique = bool(trial and trial.get("unique_fingerprint"))
    return trial_used(conn, customer, plan.id, unique)


def payment_method_json(conn: Connection, customer: CustomerRow) -> dict[str, Any] | None:
    """The customer's default card for ``expand: ["payment_method"]`` (Stripe's payment method shape)."""
    card = default_payment_method(conn, customer.pk)
    return card.to_api() if card is not None else None


def wire_billing(state: AppState) -> BillingRuntime:
    """Install billing's hooks into ``state.billing``; its routes and background work for the app."""
    clock: Clock = state.clock
    page_actions = _page_actions(state)

    def resolve(conn: Connection, customer_pk: int) -> PaymentProcessor:
        return processor_for(state, conn, customer_pk)

    def stripe_of_org(conn: Connection, org_pk: int, env: str) -> StripeProcessor | None:
        return org_stripe_processor(state, conn, org_pk, env)

    refunds = RefundRetrier(state.db.engine, stripe_of_org, clock)  # refunds due, retried in the background
    customer_now = page_actions.customer_now
    assert customer_now is not None

    def stripe_of_customer(conn: Connection, customer_pk: int) -> StripeProcessor | None:
        return stripe_processor_for(processors_of(state), conn, customer_pk)

    mirror = StripeSubscriptionMirror(state.db, stripe_of_customer, customer_now, stripe_of_org)
    watcher = make_track_watcher(state, resolve, lambda: state.background_url)
    state.billing = BillingHooks(
        maintenance=maintenance_hook(state),
        past_due=past_due_instances,
        payment_method=payment_method_json,
        trial_used=plan_trial_used,
        seat_billing=make_seat_billing(resolve, lambda: state.background_url),
        invoice_lister=list_invoices,
        invoice_finalizer=lambda ctx, params: finalize_invoice(ctx, params, resolve),  # invoices.finalize
        invoice_actions=InvoiceActions(resolve, page_actions.complete_checkout),  # invoices.void and .pay
        track_watcher=watcher,
        subscription_mirror=mirror,  # plan instances mirrored as Stripe Subscriptions
    )
    worker = WebhookWorker(  # runs only while this process holds the background jobs' lease
        WebhookDeliverer(state.db, clock, DeliveryPolicy()),
        jobs=[refunds.run_due, mirror.run_due, idempotency.purge_job(state.db, clock.now_ms)],
        lease=state.background_lease,
    )
    event_hooks = EventHooks(  # each processor's events (Stripe's webhooks); the app adds checkout_completed
        state.db,
        clock,
        page_actions.complete_checkout,
        watcher.cache.clear,
        reverser_for=stripe_of_org,
    )
    return BillingRuntime(
        routes=webhook_routes(state.db, clock, watcher.cache.clear),
        page_actions=page_actions,
        event_hooks=event_hooks,
        worker=worker,
        refunds=refunds,
        subscription_mirror=mirror,
    )
