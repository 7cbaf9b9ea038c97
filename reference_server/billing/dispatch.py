"""Where billing operations are dispatched, and where paid billing plugs in.

This server handles plans WITHOUT a price itself (free plans, default plans, free add-ons,
cancelling a free plan).  Everything that involves money (a priced plan, a switch away from a
priced plan, previews, schedules, checkout and portal sessions) is delegated to a handler
registered under the operation's qualified name::

    from reference_server.billing.dispatch import BillingRegistry

    def register(registry: BillingRegistry) -> None:          # in reference_server/billing/operations.py
        registry.register("billing.attach", paid_attach)      # (ctx, body) -> response dict
        registry.register("billing.preview_attach", preview_attach)
        registry.invoice_lister = list_invoices               # (conn, customer) -> invoices for expand

``create_app`` calls ``reference_server.billing.operations.register`` when that module exists, and
``create_app(billing=...)`` can pass another registration function.  A paid handler runs its own
transaction; it can reuse :func:`reference_server.billing.free_plans.resolve_attach` and the
plan-instance functions of :mod:`reference_server.service.subscriptions`.  Without a handler the
operation answers 501 ``not_implemented`` from :func:`missing`, the one place that says so.

Attach, update and multi-attach hold the customer's billing lock
(:mod:`reference_server.store.billing_lock`) for their whole run, so a paid handler never sees a
second billing change of the same customer in flight (that one gets 429).

Other hooks paid billing uses (all optional):

* ``registry.app_setup(state) -> AppExtension``: extra routes (checkout pages, webhooks) and
  start/stop callbacks mounted by ``create_app``;
* ``state.extras["billing_maintenance"](ctx, conn, catalog, customer, now)``: renewals, trial ends
  and period-end switches, run by :func:`reference_server.service.subscriptions.run_maintenance`
  before the free-plan transitions;
* ``state.extras["payment_method_lookup"](conn, customer)``: the card for ``expand=["payment_method"]``;
* ``state.extras["trial_used_lookup"](conn, customer, plan)``: whether the plan's trial is used up
  for ``customer_eligibility.trial_available`` (per customer, or per fingerprint when the trial says so);
* ``state.extras["past_due_lookup"](conn, customer)``: the plan-instance pks whose renewal charge
  failed, reported as ``subscriptions[].past_due`` on customers and entities;
* ``state.extras["seat_billing"](ctx, conn, catalog, customer, feature_id, changes, now)``: invoices
  an entity created or deleted on a feature with a usage-based seat price (``changes``: plan
  instance pk -> balance before and after);
* ``state.extras["track_watcher"](ctx, conn, customer, entity, feature_ids)``: an object with
  ``before(subject, now)`` / ``after(subject, now)`` around each track (usage alerts, limit reached,
  auto top-ups).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import BaseRoute

from reference_server.billing import free_plans as attach_free
from reference_server.errors import AutumnError
from reference_server.service.context import AppState, Ctx
from reference_server.store.billing_lock import billing_lock

Handler = Callable[[Ctx, dict[str, Any]], dict[str, Any]]

PAID_OPERATIONS = (
    "billing.attach",
    "billing.update",
    "billing.multi_attach",
    "billing.create_schedule",
    "billing.preview_attach",
    "billing.preview_multi_attach",
    "billing.preview_update",
    "billing.setup_payment",
    "billing.open_customer_portal",
)


def missing(operation: str) -> AutumnError:
    return AutumnError(
        501,
        "not_implemented",
        f"{operation} with a priced plan needs the paid billing module, which is not installed here",
    )


@dataclass
class AppExtension:
    """What paid billing adds to the app: its pages and background work started with the app."""

    routes: list[BaseRoute] = field(default_factory=list)
    on_startup: list[Callable[[], None]] = field(default_factory=list)
    on_shutdown: list[Callable[[], None]] = field(default_factory=list)


@dataclass
class BillingRegistry:
    handlers: dict[str, Handler] = field(default_factory=dict)
    invoice_lister: Callable[..., list[dict[str, Any]]] | None = None
    app_setup: Callable[[AppState], AppExtension] | None = None

    def register(self, operation: str, handler: Handler) -> None:
        if operation not in PAID_OPERATIONS:
            raise ValueError(f"{operation} is not a billing operation")
        self.handlers[operation] = handler

    def paid(self, operation: str) -> Handler:
        handler = self.handlers.get(operation)
        if handler is None:
            raise missing(operation)
        return handler

    # -- the operations as the router calls them

    def attach(self, ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
        with _customer_lock(ctx, body):
            return self._attach(ctx, body)

    def _attach(self, ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
        with ctx.db.write() as conn:
            cat, customer, entity, plan, current, instances, now = attach_free.resolve_attach(ctx, conn, body)
            current_plan = cat.plans_by_pk.get(current.plan_pk) if current else None
            paid = (
                attach_free.needs_paid_billing(plan, current_plan)
                or body.get("redirect_mode") == "always"
                or bool(body.get("license_quantities"))  # paid seats: priced by the billing handler
            )
            if not paid:
                return attach_free.attach_free(
                    ctx, conn, body, cat, customer, entity, plan, current, instances, now
                )
        return self.paid("billing.attach")(ctx, body)

    def update(self, ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
        with _customer_lock(ctx, body):
            return self._update(ctx, body)

    def _update(self, ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
        with ctx.db.write() as conn:
            cat, customer, entity, inst, instances, now = attach_free.resolve_update(ctx, conn, body)
            plan = cat.plans_by_pk.get(inst.plan_pk)
            if (
                plan is not None
                and plan.is_free
                and not body.get("feature_quantities")
                and not body.get("license_quantities")
            ):
                return attach_free.update_free(ctx, conn, body, cat, customer, entity, inst, instances, now)
        return self.paid("billing.update")(ctx, body)

    def delegate(self, operation: str) -> Handler:
        def run(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
            if operation in LOCKED_OPERATIONS:
                with _customer_lock(ctx, body):
                    return self.paid(operation)(ctx, body)
            return self.paid(operation)(ctx, body)

        return run


LOCKED_OPERATIONS = frozenset(
    {"billing.attach", "billing.update", "billing.multi_attach", "billing.multi_update", "billing.import"}
)
"""Billing changes that take the customer's billing lock (a concurrent second one gets 429)."""


def _customer_lock(ctx: Ctx, body: dict[str, Any]) -> AbstractContextManager[None]:
    customer_id = body.get("customer_id")
    if not isinstance(customer_id, str):
        return nullcontext()  # request validation reports the missing customer
    return billing_lock(ctx.db, ctx.tenant.org_pk, ctx.tenant.env, customer_id, ctx.now())
