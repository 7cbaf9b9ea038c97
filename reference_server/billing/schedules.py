"""billing.create_schedule: phase 0 attached now (as a multi-attach, with any ``unscheduled_plans``), each
later phase scheduled to replace the one before it.

Every later phase is resolved (its start, plans, customizations, prices and scope) before phase 0 is
billed, so a bad later phase refuses the request before any money moves."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import CreateScheduleResponseJson, ScheduledPhaseJson
from autumn_sdk._generated.models import (
    CreateScheduleParams,
    CreateSchedulePhase,
    CreateSchedulePhasePlan,
    CreateScheduleUnscheduledPlan,
    MultiAttachParams,
)
from reference_server.billing.checkout_session_params import check_checkout_session_params
from reference_server.billing.convert import customized_plan, engine_plan, feature_quantities, is_customized
from reference_server.billing.discounts import refuse_unbilled
from reference_server.billing.multi_attach import multi_attach_in
from reference_server.billing.no_billing import check_no_billing, skips_billing
from reference_server.billing.payment_collection import rule_error
from reference_server.billing.plan_changes import save_billing_state
from reference_server.billing.resolve import built_params
from reference_server.engine.billing import (
    BillingRuleError,
    quote_new,
)
from reference_server.engine.billing.periods import add_duration
from reference_server.errors import ApiError, feature_not_found, invalid, plan_not_found
from reference_server.service.context import Ctx
from reference_server.service.maintenance import require_customer
from reference_server.service.plans_read import requested_entity
from reference_server.service.subscriptions import (
    activate_plan,
    load_instances,
    schedule_maintenance,
)
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.plan_instances import end_instances_at, subscription_ids
from reference_server.store.subjects import CustomerRow, EntityRow

FIRST_PHASE_TOLERANCE_MS = 15 * 60_000

SchedulePlan = CreateSchedulePhasePlan | CreateScheduleUnscheduledPlan


@dataclass
class _LaterPlan:
    """One plan of a later phase, resolved before anything is written."""

    entry: CreateSchedulePhasePlan
    plan: Plan
    entity: EntityRow | None
    prepaid: dict[str, Decimal]


def _check_trial(trial: Any, where: str) -> None:
    if isinstance(trial, dict) and trial.get("on_end") == "revert":
        raise invalid(f"{where}.on_end 'revert' is not allowed in a schedule")


def _check_plan_trial(entry: SchedulePlan) -> None:
    # a schedule plan's customize declares no free_trial: it is one of its extra fields
    extra = (entry.customize.model_extra if entry.customize is not None else None) or {}
    _check_trial(extra.get("free_trial"), "free_trial")


def _schedule_phases(params: CreateScheduleParams) -> list[CreateSchedulePhase]:
    phases = list(params.phases or [])
    if not phases:
        raise invalid("phases: at least one phase is required", "invalid_inputs")
    for phase in phases:
        if not phase.plans:
            raise invalid("phases: every phase needs at least one plan", "invalid_inputs")
        for entry in phase.plans:
            _check_plan_trial(entry)
    for unscheduled in params.unscheduled_plans or ():
        _check_plan_trial(unscheduled)
    if params.free_trial is not None:
        _check_trial(params.free_trial.model_dump(mode="json"), "free_trial")
    return phases


def _phase_starts(phases: list[CreateSchedulePhase], now: int) -> list[int]:
    """Each phase's start in ms: ``starts_at`` (``"now"`` or none on the first phase: now), or
    ``starting_after`` calendar months or years after the phase before it."""
    starts: list[int] = []
    for index, phase in enumerate(phases):
        at = phase.starts_at
        if at == "now":
            starts.append(now)
        elif at is not None and at:
            starts.append(int(at))
        elif phase.starting_after is not None:
            if index == 0:
                raise invalid("starting_after cannot be used on the first phase")
            after = phase.starting_after
            starts.append(add_duration(starts[-1], after.duration_type, after.duration_count))
        elif index == 0:
            starts.append(now)
        else:
            raise invalid("Each phase must include exactly one of starts_at or starting_after")
    if any(later <= earlier for earlier, later in itertools.pairwise(starts)):
        raise invalid("Phase starts_at values must be strictly increasing")
    return starts


def _entity_of(
    conn: Connection, customer: CustomerRow, entry: SchedulePlan, default: str | None
) -> EntityRow | None:
    """A first-phase or unscheduled plan's scope: its own ``entity_id`` (``null``: the customer itself),
    omitted, the request's (404 ``entity_not_found`` for an entity the customer does not have)."""
    entity_id = entry.entity_id if "entity_id" in entry.model_fields_set else default
    return requested_entity(conn, customer, entity_id)


def _catalog_plan(cat: Catalog, entry: SchedulePlan) -> Plan:
    """The plan (and version) an entry names; its ``customize`` items must name known features."""
    plan = cat.plan_version(entry.plan_id, entry.version)
    if plan is None:
        raise plan_not_found(entry.plan_id)
    custom = entry.customize
    for item in [*(custom.items or []), *(custom.add_items or [])] if custom is not None else []:
        if item.feature_id not in cat.features:
            raise feature_not_found(item.feature_id)
    return plan


def _replacement_key(plan: Plan) -> str:
    """The slot a plan takes in its scope: add-ons and one-offs stack (their own id), others their group."""
    return f"plan:{plan.id}" if plan.add_on or plan.is_one_off else f"group:{plan.group}"


_Scoped = tuple[Plan, EntityRow | None]
"""A first-phase plan (as the catalogue has it) and the entity it is attached to (None: the customer)."""


def _later_scope(
    entry: CreateSchedulePhasePlan, plan: Plan, first: list[_Scoped], fallback: EntityRow | None
) -> EntityRow | None:
    """A later phase's plan scope, as Autumn resolves it: its own ``entity_id`` (``null``: customer-level;
    an entity only if a first-phase plan is attached to it); omitted, the scope of the first-phase plan
    it succeeds (the same plan, else the same group), else the request's entity."""
    if "entity_id" in entry.model_fields_set:
        if entry.entity_id is None:
            return None
        entity = next((e for _, e in first if e is not None and e.id == entry.entity_id), None)
        if entity is None:
            raise invalid(
                f"Entity '{entry.entity_id}' is not scoped by the first phase, so a later phase cannot "
                "schedule a plan in it."
            )
        return entity
    for succeeded, entity in first:
        if succeeded.id == plan.id:
            return entity
    key = _replacement_key(plan)
    for succeeded, entity in first:
        if _replacement_key(succeeded) == key:
            return entity
    return fallback


def _resolve_later(
    cat: Catalog,
    phases: list[CreateSchedulePhase],
    starts: list[int],
    first: list[_Scoped],
    fallback: EntityRow | None,
) -> list[list[_LaterPlan]]:
    out: list[list[_LaterPlan]] = []
    for phase, at in zip(phases[1:], starts[1:], strict=True):
        resolved: list[_LaterPlan] = []
        for entry in phase.plans:
            plan = customized_plan(_catalog_plan(cat, entry), entry.customize)
            try:
                quote = quote_new(engine_plan(plan, cat), at, feature_quantities(entry.feature_quantities))
            except BillingRuleError as exc:
                raise rule_error(exc) from exc
            entity = _later_scope(entry, plan, first, fallback)
            resolved.append(_LaterPlan(entry, plan, entity, dict(quote.prepaid_quantities)))
        _check_groups(resolved)
        out.append(resolved)
    return out


def _check_groups(phase: list[_LaterPlan]) -> None:
    """A phase holds at most one main recurring plan per group in each scope (as the first phase's
    multi-attach checks for it)."""
    slots: dict[tuple[int | None, str], list[str]] = {}
    for item in phase:
        if not item.plan.add_on and not item.plan.is_one_off:
            key = (item.entity.pk if item.entity is not None else None, item.plan.group)
            slots.setdefault(key, []).append(item.plan.id)
    conflicting = [f'"{plan_id}"' for ids in slots.values() if len(ids) > 1 for plan_id in ids]
    if conflicting:
        raise invalid(
            "Create schedule supports at most one plan per group and scope, but plans "
            f"{', '.join(conflicting)} conflict."
        )


def _check_unscheduled(
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    params: CreateScheduleParams,
    later: list[list[_LaterPlan]],
) -> set[str]:
    """The unscheduled plans' ids; refused when one is also in the first phase, or a later phase takes
    its group in its scope (it would replace a plan the schedule never ends)."""
    ids: set[str] = set()
    first_ids = {entry.plan_id for entry in params.phases[0].plans}
    claimed = {
        (item.plan.group, item.entity.pk if item.entity else None)
        for phase in later
        for item in phase
        if not item.plan.add_on and not item.plan.is_one_off
    }
    for entry in params.unscheduled_plans or ():
        plan = _catalog_plan(cat, entry)
        if entry.plan_id in first_ids or entry.plan_id in ids:
            raise invalid(
                f'Plan "{entry.plan_id}" is given twice across the first phase and unscheduled_plans'
            )
        ids.add(entry.plan_id)
        if plan.add_on or plan.is_one_off:
            continue
        entity = _entity_of(conn, customer, entry, params.entity_id)
        if (plan.group, entity.pk if entity is not None else None) in claimed:
            raise invalid(
                f'Plan "{plan.id}" is in unscheduled_plans, but a later phase schedules its group and scope. '
                "Move it into the phases or drop it from the phase that claims it."
            )
    return ids


def _public_ids(conn: Connection, pks: list[int]) -> list[str]:
    if not pks:
        return []
    by_pk = {pk: sub_id or f"sub_{pk}" for pk, sub_id in subscription_ids(conn, pks).items()}
    return [by_pk[pk] for pk in pks]


def _attach_entry(entry: SchedulePlan, trial: dict[str, Any] | None) -> dict[str, Any]:
    """A first-phase or unscheduled plan as a multi-attach plan (its ``entity_id`` its scope there);
    the request's ``free_trial`` applies to every one of them."""
    out = entry.model_dump(exclude_unset=True)
    if trial is not None:
        out["customize"] = {**(out.get("customize") or {}), "free_trial": trial}
    return out


def _schedule_later(
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    later: list[list[_LaterPlan]],
    starts: list[int],
    previous: list[int],
    now: int,
) -> list[list[int]]:
    """Write each later phase: its plans scheduled at its start, ending the phase before it."""
    written: list[list[int]] = []
    for phase, at in zip(later, starts[1:], strict=True):
        if previous:
            end_instances_at(conn, previous, at, now)
        pks: list[int] = []
        for item in phase:
            pk = activate_plan(
                conn,
                cat,
                customer=customer,
                entity=item.entity,
                plan=item.plan,
                now=now,
                status="scheduled",
                starts_at=at,
                subscription_id=item.entry.subscription_id,
                feature_quantities={k: float(v) for k, v in item.prepaid.items()},
            )
            save_billing_state(
                conn, pk, at, item.prepaid, now, item.plan if is_customized(item.entry.customize) else None
            )
            pks.append(pk)
        schedule_maintenance(conn, customer.pk, at)
        written.append(pks)
        previous = pks
    return written


def _check_anchor_now(
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    params: CreateScheduleParams,
    opening: list[_Scoped],
) -> None:
    """``billing_cycle_anchor: "now"`` (which the official SDK always sends) restarts the first phase's
    billing cycles at the request.  A plan attached now starts its cycle now anyway (also when it
    replaces a free plan); one that replaces a paid plan the customer holds in its group is an upgrade,
    which keeps the running anchor here, so that case is refused rather than silently ignored.
    Not one rule with :func:`.update_request.check_anchor_now`: that one restarts the cycle of a plan the
    customer keeps (a customization; free, one-off and trialing plans refused), this one checks plans
    that start now."""
    if params.billing_cycle_anchor != "now":
        return
    held = {
        (_replacement_key(plan), inst.entity_pk)
        for inst in load_instances(conn, customer.pk)
        if inst.status in ("active", "trialing", "past_due")
        and (plan := cat.plans_by_pk.get(inst.plan_pk)) is not None
        and not plan.add_on
        and not plan.is_one_off
        and not plan.is_free  # replacing a free plan starts a new cycle now, as asked
    }
    for plan, entity in opening:
        if (_replacement_key(plan), entity.pk if entity is not None else None) in held:
            raise ApiError(
                400,
                "unsupported_field",
                "billing_cycle_anchor 'now' with a first-phase plan that replaces a current plan of its "
                "group is part of Autumn's API but the reference server does not support it yet; leave "
                "it out (see the README's list of unsupported fields)",
            )


def create_schedule_in(
    ctx: Ctx, conn: Connection, params: CreateScheduleParams, base_url: str, paid: bool = False
) -> CreateScheduleResponseJson:
    """Phase 0 is a multi-attach now; each later phase is scheduled and ends the phase before it."""
    phases = _schedule_phases(params)
    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    customer, now = require_customer(ctx, conn, cat, params.customer_id, lock=True)
    starts = _phase_starts(phases, now)
    if starts[0] > now + FIRST_PHASE_TOLERANCE_MS:
        raise invalid("The first phase must start immediately")
    fallback = requested_entity(conn, customer, params.entity_id)
    opening = [
        (_catalog_plan(cat, entry), _entity_of(conn, customer, entry, params.entity_id))
        for entry in phases[0].plans
    ]
    _check_anchor_now(conn, cat, customer, params, opening)
    refuse_unbilled(params.discounts, skips_billing(params))
    later = _resolve_later(cat, phases, starts, opening, fallback)
    unscheduled = _check_unscheduled(conn, cat, customer, params, later)
    keys = {
        "customer_id",
        "entity_id",
        "redirect_mode",
        "success_url",
        "invoice_mode",
        "enable_plan_immediately",
        "billing_behavior",  # whether to prorate the immediate phase
        "discounts",  # on the immediate phase (billing/discounts.py, through the multi-attach)
    }
    shared = {k: v for k, v in params.model_dump(include=keys, exclude_unset=True).items() if v}
    trial = params.free_trial.model_dump(mode="json", exclude_unset=True) if params.free_trial else None
    entries: list[SchedulePlan] = [*phases[0].plans, *(params.unscheduled_plans or [])]
    plans = [_attach_entry(entry, trial) for entry in entries]
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
        no_billing=skips_billing(params),  # phase 0 attached with nothing billed (no_billing.py)
    )
    entity_id = params.entity_id
    # Waiting for a payment: a checkout page, or an invoice-mode invoice without enable_plan_immediately
    # (paying it creates the schedule, as a paid checkout does).
    invoice = first.get("invoice")
    if first["payment_url"] or (not paid and invoice is not None and not created):
        pending: CreateScheduleResponseJson = {
            "customer_id": customer.id or "",
            "entity_id": entity_id,
            "status": "pending_payment",
            "schedule_id": None,
            "phases": [],
            "payment_url": first["payment_url"],
        }
        if invoice is not None:
            pending["invoice"] = invoice
        required_action = first.get("required_action")
        if required_action is not None:
            pending["required_action"] = required_action
        return pending
    if unscheduled:  # they outlive the schedule: not phase 0's, never ended by phase 1
        plan_of = {inst.pk: inst.plan_id for inst in load_instances(conn, customer.pk)}
        created = [pk for pk in created if plan_of.get(pk) not in unscheduled]
    schedule_id = f"sched_{secrets.token_hex(10)}"
    written = _schedule_later(conn, cat, customer, later, starts, created, now)
    phase_json: list[ScheduledPhaseJson] = [
        {
            "phase_id": f"{schedule_id}_{index}",
            "starts_at": at,
            "customer_product_ids": _public_ids(conn, pks),
        }
        for index, (at, pks) in enumerate(zip(starts, [created, *written], strict=True))
    ]
    out: CreateScheduleResponseJson = {
        "customer_id": customer.id or "",
        "entity_id": entity_id,
        "status": "created",
        "schedule_id": schedule_id,
        "phases": phase_json,
        "payment_url": None,
    }
    if invoice is not None:
        out["invoice"] = invoice
    return out


def create_schedule(ctx: Ctx, params: CreateScheduleParams) -> CreateScheduleResponseJson:
    base_url = ctx.base_url
    with ctx.db.write() as conn:
        check_checkout_session_params(ctx, conn, params)
        check_no_billing(params)
        return create_schedule_in(ctx, conn, params, base_url)
