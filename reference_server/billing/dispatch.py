"""Billing operations as the router calls them: free or paid path, under the customer's billing lock.

Attach and update of a plan without a price (free plans, default plans, free add-ons, cancelling a
free plan) take the free path (:mod:`reference_server.billing.free_plans`); anything that involves
money takes the paid one (:mod:`reference_server.billing.operations`).  Attach, update and
multi-attach hold the customer's billing lock (:mod:`reference_server.store.billing_lock`) for their
whole run, so a second billing change of the same customer in flight gets 429.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from reference_server.billing import free_plans as attach_free
from reference_server.billing import operations as paid
from reference_server.service.context import Ctx
from reference_server.store.billing_lock import billing_lock

LOCKED_OPERATIONS = frozenset(
    {"billing.attach", "billing.update", "billing.multi_attach", "billing.multi_update", "billing.import"}
)
"""Billing changes that take the customer's billing lock (a concurrent second one gets 429)."""


def attach(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    with _customer_lock(ctx, body):
        return _attach(ctx, body)


def _attach(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    with ctx.db.write() as conn:
        cat, customer, entity, plan, current, instances, now = attach_free.resolve_attach(ctx, conn, body)
        current_plan = cat.plans_by_pk.get(current.plan_pk) if current else None
        needs_paid = (
            attach_free.needs_paid_billing(plan, current_plan)
            or body.get("redirect_mode") == "always"
            or bool(body.get("license_quantities"))  # paid seats: priced by the billing handler
        )
        if not needs_paid:
            return attach_free.attach_free(
                ctx, conn, body, cat, customer, entity, plan, current, instances, now
            )
    return paid.paid_attach(ctx, body)


def update(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    with _customer_lock(ctx, body):
        return _update(ctx, body)


def _update(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
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
    return paid.paid_update(ctx, body)


def multi_attach(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    with _customer_lock(ctx, body):
        return paid.multi_attach(ctx, body)


def _customer_lock(ctx: Ctx, body: dict[str, Any]) -> AbstractContextManager[None]:
    customer_id = body.get("customer_id")
    if not isinstance(customer_id, str):
        return nullcontext()  # request validation reports the missing customer
    return billing_lock(ctx.db, ctx.tenant.org_pk, ctx.tenant.env, customer_id, ctx.now())
