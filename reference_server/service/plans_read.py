"""plans.get and plans.list with each plan's ``customer_eligibility`` (§5.10); how two plans compare
(which is the current main plan, upgrade or downgrade) and the request's entity, shared with billing's
attach and update."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import ListPlansResponseJson, PlanCustomerEligibilityJson, PlanJson
from autumn_sdk._generated.models import GetPlanParams, ListPlansParams
from reference_server.engine.intervals import MONTHS
from reference_server.errors import customer_not_found, entity_not_found, plan_not_found
from reference_server.service.context import Ctx
from reference_server.service.plan_listing import listed_plan
from reference_server.service.plans import plan_json
from reference_server.service.subscriptions import (
    Instance,
    load_instances,
)
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.subjects import CustomerRow, EntityRow, get_customer, get_entity


def monthly_price(plan: Plan) -> float:
    if not plan.price:
        return 0.0
    interval = plan.price.get("interval", "month")
    months = MONTHS.get(interval, 0.25 if interval == "week" else 1) * int(
        plan.price.get("interval_count") or 1
    )
    return float(plan.price["amount"]) / months if months else float(plan.price["amount"])


def current_main(
    instances: list[Instance], cat: Catalog, group: str, entity_pk: int | None
) -> Instance | None:
    for inst in instances:
        if inst.status != "active" or inst.entity_pk != entity_pk:
            continue
        plan = cat.plans_by_pk.get(inst.plan_pk)
        if plan is not None and not plan.add_on and not plan.is_one_off and plan.group == group:
            return inst
    return None


def is_upgrade(old: Plan, new: Plan) -> bool:
    """§5.2.4: free -> anything is an upgrade, paid -> free a downgrade, else compare monthly totals."""
    if old.is_free:
        return True
    if new.is_free:
        return False
    if old.is_one_off or new.is_one_off:
        return True
    return monthly_price(new) >= monthly_price(old)


def requested_entity(conn: Connection, customer: CustomerRow, entity_id: str | None) -> EntityRow | None:
    """The request's ``entity_id`` entity of this customer (None without one); 404 when unknown.
    Shared with billing's attach and update."""
    if not entity_id:
        return None
    entity = get_entity(conn, customer.pk, entity_id)
    if entity is None:
        raise entity_not_found(entity_id)
    return entity


def eligibility(
    cat: Catalog, plan: Plan, instances: list[Instance], used_trial_plan_ids: set[str], entity_pk: int | None
) -> PlanCustomerEligibilityJson:
    """``customer_eligibility`` of plans.get/list (§5.10)."""
    owned = [
        i for i in instances if i.plan_id == plan.id and i.entity_pk == entity_pk and i.status != "expired"
    ]
    action: Literal["activate", "upgrade", "downgrade", "none", "purchase"]
    if plan.is_one_off:
        action = "purchase"
    elif owned:
        action = "none"
    elif plan.add_on:
        action = "activate"
    else:
        current = current_main(instances, cat, plan.group, entity_pk)
        current_plan = cat.plans_by_pk.get(current.plan_pk) if current else None
        if current_plan is None:
            action = "activate"
        else:
            action = "upgrade" if is_upgrade(current_plan, plan) else "downgrade"
    out: PlanCustomerEligibilityJson = {"attach_action": action}
    if owned:
        inst = owned[0]
        out["status"] = "scheduled" if inst.status == "scheduled" else "active"
        out["canceling"] = inst.canceled_at is not None
        out["trialing"] = inst.trial_ends_at is not None
    if plan.free_trial:
        out["trial_available"] = plan.id not in used_trial_plan_ids and action != "downgrade"
    return out


def plans_get(ctx: Ctx, params: GetPlanParams) -> PlanJson:
    with ctx.db.read() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        plan = cat.plan_version(params.plan_id, params.version)
        if plan is None:
            raise plan_not_found(params.plan_id)
        # plans.get's spec body has no customer: the eligibility fields are read when sent anyway.
        extra = params.model_extra or {}
        elig = _eligibility_for(ctx, conn, cat, extra.get("customer_id"), extra.get("entity_id"), [plan])
        return plan_json(plan, cat, eligibility=elig.get(plan.pk) if elig is not None else None)


def plans_list(ctx: Ctx, params: ListPlansParams) -> ListPlansResponseJson:
    with ctx.db.read() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        listed = (
            [v for p in cat.plans.values() for v in reversed(cat.versions(p.id))]  # latest version first
            if params.all_versions
            else list(cat.plans.values())
        )
        chosen = [p for p in listed if params.include_archived or not p.archived]
        elig = _eligibility_for(ctx, conn, cat, params.customer_id, params.entity_id, chosen)
        return {
            "list": [
                listed_plan(plan_json(p, cat, eligibility=elig.get(p.pk) if elig is not None else None))
                for p in chosen
            ]
        }


def _eligibility_for(
    ctx: Ctx,
    conn: Connection,
    cat: Catalog,
    customer_id: str | None,
    entity_id: str | None,
    chosen: list[Plan],
) -> dict[int, PlanCustomerEligibilityJson] | None:
    if not customer_id:
        return None
    customer = get_customer(conn, ctx.tenant, customer_id)
    if customer is None:
        raise customer_not_found(customer_id)
    entity = requested_entity(conn, customer, entity_id)
    entity_pk = entity.pk if entity is not None else None
    instances = load_instances(conn, customer.pk, include_expired=True)
    used = {i.plan_id for i in instances if i.trial_ends_at is not None}
    # Paid billing also knows trials used by this customer's fingerprint (``unique_fingerprint``).
    trial_used = ctx.state.billing.trial_used
    if trial_used is not None:
        used |= {p.id for p in chosen if p.free_trial and trial_used(conn, customer, p)}
    live = [i for i in instances if i.status != "expired"]
    return {p.pk: eligibility(cat, p, live, used, entity_pk) for p in chosen}
