"""billing.create_schedule: phase 0 attached now (as a multi-attach), each later phase scheduled to
replace the one before it."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from sqlalchemy import Connection

from autumn_sdk._generated.models import CreateScheduleParams, CreateSchedulePhase, MultiAttachParams
from reference_server.billing.convert import customized_plan, engine_plan, feature_quantities, is_customized
from reference_server.billing.multi_attach import multi_attach_in
from reference_server.billing.payment_collection import rule_error
from reference_server.billing.plan_changes import save_billing_state
from reference_server.billing.resolve import built_params
from reference_server.engine.billing import (
    BillingRuleError,
    quote_new,
)
from reference_server.errors import invalid, plan_not_found
from reference_server.service.context import Ctx
from reference_server.service.maintenance import require_customer
from reference_server.service.subscriptions import (
    activate_plan,
    schedule_maintenance,
)
from reference_server.store.plan_instances import end_instances_at, subscription_ids
from reference_server.store.subjects import get_entity

FIRST_PHASE_TOLERANCE_MS = 15 * 60_000


def _phase_start(phase: CreateSchedulePhase, default: int) -> int:
    """A phase's ``starts_at`` in ms (``default`` without one, or for ``"now"``)."""
    at = phase.starts_at
    return int(at) if at is not None and at != "now" and at else default


def _schedule_phases(params: CreateScheduleParams) -> list[CreateSchedulePhase]:
    phases = list(params.phases or [])
    if not phases:
        raise invalid("phases: at least one phase is required", "invalid_inputs")
    for phase in phases:
        if not phase.plans:
            raise invalid("phases: every phase needs at least one plan", "invalid_inputs")
        for entry in phase.plans:
            # a phase plan's customize declares no free_trial: it is one of its extra fields
            extra = (entry.customize.model_extra if entry.customize is not None else None) or {}
            trial = extra.get("free_trial") or {}
            if isinstance(trial, dict) and trial.get("on_end") == "revert":
                raise invalid("free_trial.on_end 'revert' is not allowed in a schedule")
    starts = [_phase_start(p, 0) for p in phases]
    if any(later <= earlier for earlier, later in itertools.pairwise(starts)):
        raise invalid("Phase starts_at values must be strictly increasing")
    return phases


def _public_ids(conn: Connection, pks: list[int]) -> list[str]:
    if not pks:
        return []
    by_pk = {pk: sub_id or f"sub_{pk}" for pk, sub_id in subscription_ids(conn, pks).items()}
    return [by_pk[pk] for pk in pks]


def create_schedule_in(
    ctx: Ctx, conn: Connection, params: CreateScheduleParams, base_url: str, paid: bool = False
) -> dict[str, Any]:
    """Phase 0 is a multi-attach now; each later phase is scheduled and ends the phase before it."""
    phases = _schedule_phases(params)
    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    customer, now = require_customer(ctx, conn, cat, params.customer_id, lock=True)
    if _phase_start(phases[0], now) > now + FIRST_PHASE_TOLERANCE_MS:
        raise invalid("The first phase must start immediately")
    keys = {
        "customer_id",
        "entity_id",
        "redirect_mode",
        "success_url",
        "invoice_mode",
        "enable_plan_immediately",
    }
    shared = {k: v for k, v in params.model_dump(include=keys, exclude_unset=True).items() if v}
    plans = [entry.model_dump(exclude_unset=True) for entry in phases[0].plans]
    created: list[int] = []
    first = multi_attach_in(
        ctx,
        conn,
        built_params(MultiAttachParams, {**shared, "plans": plans}),
        base_url,
        paid=paid,
        created=created,
        action_op="create_schedule",
        action_params=params,
    )
    entity_id = params.entity_id
    # Waiting for a payment: a checkout page, or an invoice-mode invoice without enable_plan_immediately
    # (paying it creates the schedule, as a paid checkout does).
    if first.get("payment_url") or (not paid and "invoice" in first and not created):
        out = {
            "customer_id": customer.id,
            "entity_id": entity_id,
            "status": "pending_payment",
            "schedule_id": None,
            "phases": [],
            "payment_url": first["payment_url"],
        }
        for key in ("invoice", "required_action"):
            if key in first:
                out[key] = first[key]
        return out
    entity = get_entity(conn, customer.pk, entity_id) if entity_id else None
    schedule_id = f"sched_{secrets.token_hex(10)}"
    phase_json = [
        {
            "phase_id": f"{schedule_id}_0",
            "starts_at": _phase_start(phases[0], now),
            "customer_product_ids": _public_ids(conn, created),
        }
    ]
    previous = created
    for index, phase in enumerate(phases[1:], start=1):
        at = _phase_start(phase, 0)
        if previous:
            end_instances_at(conn, previous, at, now)
        pks: list[int] = []
        for entry in phase.plans:
            plan = cat.plan_version(entry.plan_id, entry.version)
            if plan is None:
                raise plan_not_found(entry.plan_id)
            custom = customized_plan(plan, entry.customize)
            try:
                quote = quote_new(engine_plan(custom, cat), at, feature_quantities(entry.feature_quantities))
            except BillingRuleError as exc:
                raise rule_error(exc) from exc
            pk = activate_plan(
                conn,
                cat,
                customer=customer,
                entity=entity,
                plan=custom,
                now=now,
                status="scheduled",
                starts_at=at,
                subscription_id=entry.subscription_id,
                feature_quantities={k: float(v) for k, v in quote.prepaid_quantities.items()},
            )
            save_billing_state(
                conn,
                pk,
                at,
                dict(quote.prepaid_quantities),
                now,
                custom if is_customized(entry.customize) else None,
            )
            pks.append(pk)
        schedule_maintenance(conn, customer.pk, at)
        phase_json.append(
            {
                "phase_id": f"{schedule_id}_{index}",
                "starts_at": at,
                "customer_product_ids": _public_ids(conn, pks),
            }
        )
        previous = pks
    out = {
        "customer_id": customer.id,
        "entity_id": entity_id,
        "status": "created",
        "schedule_id": schedule_id,
        "phases": phase_json,
        "payment_url": None,
    }
    if "invoice" in first:
        out["invoice"] = first["invoice"]
    return out


def create_schedule(ctx: Ctx, params: CreateScheduleParams) -> dict[str, Any]:
    base_url = ctx.base_url
    with ctx.db.write() as conn:
        return create_schedule_in(ctx, conn, params, base_url)
