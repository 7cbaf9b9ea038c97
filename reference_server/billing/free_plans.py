"""billing.attach and billing.update for plans without a price (§5.1-5.2, 5.6 for free plans).

Free plans activate at once, free-to-free switches within a group are immediate upgrades,
add-ons stack, and cancelling a main plan brings the group's auto_enable plan back.  A free plan
has no billing period, so ``cancel_end_of_cycle`` on it ends it at once like ``cancel_immediately``.
Anything that involves money is routed to the paid-billing handlers (see
:mod:`reference_server.billing.dispatch`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, update

from reference_server.errors import AutumnError, entity_not_found, invalid, plan_not_found
from reference_server.service.context import Ctx
from reference_server.service.customers import require_customer
from reference_server.service.subscriptions import (
    Instance,
    activate_group_default,
    activate_plan,
    expire_instance,
    expire_scheduled_switches,
    load_instances,
)
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.subjects import CustomerRow, EntityRow, get_entity
from reference_server.store.tables import customer_plans


def monthly_price(plan: Plan) -> float:
    from reference_server.engine.intervals import MONTHS

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


def needs_paid_billing(plan: Plan, current: Plan | None) -> bool:
    return not plan.is_free or (current is not None and not current.is_free)


def requested_entity(conn: Connection, customer: CustomerRow, body: dict[str, Any]) -> EntityRow | None:
    """The request's ``entity_id`` entity of this customer (None without one); 404 when unknown."""
    if not body.get("entity_id"):
        return None
    entity = get_entity(conn, customer.pk, body["entity_id"])
    if entity is None:
        raise entity_not_found(body["entity_id"])
    return entity


def resolve_attach(
    ctx: Ctx, conn: Connection, body: dict[str, Any]
) -> tuple[Catalog, CustomerRow, EntityRow | None, Plan, Instance | None, list[Instance], int]:
    """Load everything an attach needs (shared by the free path and the paid handlers)."""
    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    customer, now = require_customer(ctx, conn, cat, body["customer_id"], lock=True)
    plan = cat.plan_version(body["plan_id"], body.get("version"))
    if plan is None:
        raise plan_not_found(body["plan_id"])
    entity = requested_entity(conn, customer, body)
    instances = load_instances(conn, customer.pk)
    current = None
    if not plan.add_on and not plan.is_one_off:
        current = current_main(instances, cat, plan.group, entity.pk if entity else None)
    plans_to_remove(cat, body, plan, current, instances, entity.pk if entity else None)  # validates
    return cat, customer, entity, plan, current, instances, now


def plans_to_remove(
    cat: Catalog,
    body: dict[str, Any],
    plan: Plan,
    current: Instance | None,
    instances: list[Instance],
    entity_pk: int | None,
) -> list[Instance]:
    """The active plans ``remove_plan_ids`` names, which the attach expires alongside (Autumn's rules).

    The plan the attach replaces is skipped (it ends anyway); the attached plan itself, a plan the
    customer (or the entity attached to) does not have active, or two removals with a carry-over
    and nothing replaced are refused.  Autumn also removes a paid plan billed on the attach's own
    subscription; this server removes plans without a price only and refuses paid ones.
    """
    out: list[Instance] = []
    for plan_id in dict.fromkeys(body.get("remove_plan_ids") or []):
        if current is not None and plan_id == current.plan_id:
            continue
        if plan_id == plan.id:
            raise AutumnError(
                400, "invalid_request", f"Cannot remove plan '{plan_id}' in the same attach that adds it"
            )
        inst = next(
            (
                i
                for i in instances
                if i.plan_id == plan_id and i.status == "active" and i.entity_pk == entity_pk
            ),
            None,
        )
        if inst is None:
            raise AutumnError(
                404, "product_not_found", f"No active plan '{plan_id}' found on the customer to remove"
            )
        removed = cat.plans_by_pk.get(inst.plan_pk)
        if removed is None or not removed.is_free:
            raise AutumnError(
                400,
                "unsupported_field",
                f"remove_plan_ids: plan '{plan_id}' has a price; the reference server removes only plans "
                "without a price in an attach",
            )
        out.append(inst)
    carry = any((body.get(k) or {}).get("enabled") for k in ("carry_over_usages", "carry_over_balances"))
    if current is None and carry and len(out) > 1:
        raise AutumnError(
            400,
            "invalid_request",
            "Cannot carry over usage when removing multiple plans. Remove them one at a time.",
        )
    return out


def attach_free(
    ctx: Ctx,
    conn: Connection,
    body: dict[str, Any],
    cat: Catalog,
    customer: CustomerRow,
    entity: EntityRow | None,
    plan: Plan,
    current: Instance | None,
    instances: list[Instance],
    now: int,
) -> dict[str, Any]:
    entity_pk = entity.pk if entity else None
    if body.get("subscription_id") and any(i.subscription_id == body["subscription_id"] for i in instances):
        raise AutumnError(
            409,
            "subscription_id_already_exists",
            f"Subscription id {body['subscription_id']} is already used by this customer",
        )
    carried = None
    if current is not None:
        if current.plan_id == plan.id:
            current_plan = cat.plans_by_pk.get(current.plan_pk)
            name = current_plan.name if current_plan else plan.name
            raise AutumnError(
                409,
                "plan_already_attached",
                f"Cannot attach because the customer's current product '{name}' is the same as the "
                "product being attached",
            )
        carried = expire_instance(conn, current.pk, now)
    for removed in plans_to_remove(cat, body, plan, current, instances, entity_pk):
        expire_instance(conn, removed.pk, now)
    if not plan.add_on:
        # An immediate change replaces any switch that was scheduled in this group and scope.
        expire_scheduled_switches(conn, cat, instances, plan.group, entity_pk)
    activate_plan(
        conn,
        cat,
        customer=customer,
        entity=entity,
        plan=plan,
        now=now,
        subscription_id=body.get("subscription_id"),
        carried_usage=carried.continuous_usage if carried else None,
        next_reset_overrides=carried.next_resets if carried else None,
    )
    out: dict[str, Any] = {"customer_id": customer.id, "payment_url": None}
    if entity is not None:
        out["entity_id"] = entity.id
    return out


def find_instance(
    instances: list[Instance], cat: Catalog, body: dict[str, Any], entity_pk: int | None, customer_id: str
) -> Instance:
    for inst in instances:
        if inst.entity_pk != entity_pk:
            continue
        if body.get("subscription_id") and inst.public_id == body["subscription_id"]:
            return inst
        if body.get("plan_id") and inst.plan_id == body["plan_id"] and not body.get("subscription_id"):
            return inst
    target = body.get("plan_id") or body.get("subscription_id")
    raise AutumnError(
        404,
        "cus_product_not_found",
        f"No active subscription found for plan '{target}' on customer '{customer_id}'",
    )


def update_free(
    ctx: Ctx,
    conn: Connection,
    body: dict[str, Any],
    cat: Catalog,
    customer: CustomerRow,
    entity: EntityRow | None,
    inst: Instance,
    instances: list[Instance],
    now: int,
) -> dict[str, Any]:
    plan = cat.plans_by_pk.get(inst.plan_pk)
    if plan is None:
        raise plan_not_found(inst.plan_id)
    action = body.get("cancel_action")
    entity_pk = entity.pk if entity else None
    if action in ("cancel_immediately", "cancel_end_of_cycle"):
        if inst.status != "active":
            raise invalid("Only an active plan can be cancelled")
        conn.execute(update(customer_plans).where(customer_plans.c.pk == inst.pk).values(canceled_at=now))
        carried = expire_instance(conn, inst.pk, now)
        if not plan.add_on and not plan.auto_enable:
            scheduled = [i for i in instances if i.status == "scheduled" and i.entity_pk == entity_pk]
            if not scheduled:
                activate_group_default(conn, cat, customer, entity, plan.group, now, carried)
    elif action == "uncancel":
        if inst.status != "active":
            raise invalid("Only an active plan can be uncancelled")
        conn.execute(
            update(customer_plans)
            .where(customer_plans.c.pk == inst.pk)
            .values(canceled_at=None, expires_at=None)
        )
        expire_scheduled_switches(conn, cat, instances, plan.group, entity_pk)
    elif inst.status == "scheduled":
        raise invalid("A scheduled plan cannot be updated")
    out: dict[str, Any] = {"customer_id": customer.id, "payment_url": None}
    if entity is not None:
        out["entity_id"] = entity.id
    return out


def resolve_update(
    ctx: Ctx, conn: Connection, body: dict[str, Any]
) -> tuple[Catalog, CustomerRow, EntityRow | None, Instance, list[Instance], int]:
    if not body.get("plan_id") and not body.get("subscription_id"):
        raise invalid("Either plan_id or subscription_id must be provided", "invalid_inputs")
    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    customer, now = require_customer(ctx, conn, cat, body["customer_id"], lock=True)
    entity = requested_entity(conn, customer, body)
    instances = load_instances(conn, customer.pk)
    inst = find_instance(instances, cat, body, entity.pk if entity else None, customer.id or "")
    return cat, customer, entity, inst, instances, now


def eligibility(
    cat: Catalog, plan: Plan, instances: list[Instance], used_trial_plan_ids: set[str], entity_pk: int | None
) -> dict[str, Any]:
    """``customer_eligibility`` of plans.get/list (§5.10)."""
    owned = [
        i for i in instances if i.plan_id == plan.id and i.entity_pk == entity_pk and i.status != "expired"
    ]
    out: dict[str, Any] = {}
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
    out["attach_action"] = action
    if owned:
        inst = owned[0]
        out["status"] = "scheduled" if inst.status == "scheduled" else "active"
        out["canceling"] = inst.canceled_at is not None
        out["trialing"] = inst.trial_ends_at is not None
    if plan.free_trial:
        out["trial_available"] = plan.id not in used_trial_plan_ids and action != "downgrade"
    return out


def plans_get(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    from reference_server.service.catalog_ops import plan_json

    with ctx.db.read() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        plan = cat.plan_version(body["plan_id"], body.get("version"))
        if plan is None:
            raise plan_not_found(body["plan_id"])
        elig = _eligibility_for(ctx, conn, cat, body, [plan])
        return plan_json(plan, cat, eligibility=elig.get(plan.pk) if elig is not None else None)


def plans_list(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    from reference_server.service.catalog_ops import plan_json

    with ctx.db.read() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        listed = (
            [v for p in cat.plans.values() for v in reversed(cat.versions(p.id))]  # latest version first
            if body.get("all_versions")
            else list(cat.plans.values())
        )
        chosen = [p for p in listed if body.get("include_archived") or not p.archived]
        elig = _eligibility_for(ctx, conn, cat, body, chosen)
        return {
            "list": [
                plan_json(p, cat, eligibility=elig.get(p.pk) if elig is not None else None) for p in chosen
            ]
        }


def _eligibility_for(
    ctx: Ctx, conn: Connection, cat: Catalog, body: dict[str, Any], chosen: list[Plan]
) -> dict[int, dict[str, Any]] | None:
    if not body.get("customer_id"):
        return None
    from reference_server.errors import customer_not_found
    from reference_server.store.subjects import get_customer

    customer = get_customer(conn, ctx.tenant, body["customer_id"])
    if customer is None:
        raise customer_not_found(body["customer_id"])
    entity = requested_entity(conn, customer, body)
    entity_pk = entity.pk if entity is not None else None
    instances = load_instances(conn, customer.pk, include_expired=True)
    used = {i.plan_id for i in instances if i.trial_ends_at is not None}
    # Paid billing also knows trials used by this customer's fingerprint (``unique_fingerprint``).
    trial_used = ctx.state.billing.trial_used
    if trial_used is not None:
        used |= {p.id for p in chosen if p.free_trial and trial_used(conn, customer, p)}
    live = [i for i in instances if i.status != "expired"]
    return {p.pk: eligibility(cat, p, live, used, entity_pk) for p in chosen}
