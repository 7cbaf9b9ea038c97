"""Plan instances on a customer or entity: activation, expiry, defaults and scheduled transitions.

A plan instance (``customer_plans`` row) owns one balance source per metered item and one flag
per boolean item.  These functions are shared with the paid-billing code, which decides *when*
to call them (after payment, at period end); this module decides *what* the balances become.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from reference_server.engine.intervals import next_boundary_after
from reference_server.service.context import Ctx
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.licenses import end_seats_of
from reference_server.store.subjects import CustomerRow, EntityRow, insert_source, load_sources
from reference_server.store.tables import balance_sources, customer_plans, customers, entities, locks


@dataclass
class Instance:
    pk: int
    customer_pk: int
    entity_pk: int | None
    plan_pk: int
    plan_id: str
    subscription_id: str | None
    status: str
    quantity: float
    started_at: int
    starts_at: int | None
    canceled_at: int | None
    expires_at: int | None
    trial_ends_at: int | None
    current_period_start: int | None
    current_period_end: int | None
    created_at: int

    @property
    def public_id(self) -> str:
        return self.subscription_id or f"sub_{self.pk}"


def expire_scheduled_switches(
    conn: Connection, cat: Catalog, instances: list[Instance], group: str, entity_pk: int | None
) -> list[Instance]:
    """Drop the plan switch scheduled in ``group`` for this scope (customer or entity).

    An immediate change, a new downgrade or an uncancel replaces it; add-ons are never switches.
    Returns the instances it expired.
    """
    expired = []
    for inst in instances:
        plan = cat.plans_by_pk.get(inst.plan_pk)
        if (
            inst.status == "scheduled"
            and inst.entity_pk == entity_pk
            and plan is not None
            and plan.group == group
            and not plan.add_on
        ):
            conn.execute(
                update(customer_plans).where(customer_plans.c.pk == inst.pk).values(status="expired")
            )
            expired.append(inst)
    return expired


def instance_from_row(r: Any) -> Instance:
    return Instance(**{k: getattr(r, k) for k in Instance.__dataclass_fields__})


def load_instances(conn: Connection, customer_pk: int, *, include_expired: bool = False) -> list[Instance]:
    q = (
        select(customer_plans)
        .where(customer_plans.c.customer_pk == customer_pk)
        .order_by(customer_plans.c.pk)
    )
    if not include_expired:
        q = q.where(customer_plans.c.status != "expired")
    return [instance_from_row(r) for r in conn.execute(q)]


def schedule_maintenance(conn: Connection, customer_pk: int, at: int) -> None:
    """Remember that something (a plan transition, a lock expiry) is due for this customer at ``at``."""
    conn.execute(
        update(customers)
        .where(customers.c.pk == customer_pk)
        .where(or_(customers.c.maintenance_due_at.is_(None), customers.c.maintenance_due_at > at))
        .values(maintenance_due_at=at)
    )


def _item_interval(item: dict[str, Any], continuous: bool) -> tuple[str | None, int]:
    if continuous:
        return None, 1
    reset = item.get("reset")
    if reset and reset.get("interval") not in (None, "one_off"):
        return str(reset["interval"]), int(reset.get("interval_count") or 1)
    return "one_off", 1


def create_item_sources(
    conn: Connection,
    cat: Catalog,
    *,
    customer_pk: int,
    entity_pk: int | None,
    instance_pk: int | None,
    plan: Plan,
    now: int,
    anchor_at: int,
    quantity: float = 1,
    feature_quantities: dict[str, float] | None = None,
    carried_usage: dict[str, float] | None = None,
    next_reset_overrides: dict[tuple[str, str | None], int] | None = None,
    expires_at: int | None = None,
) -> None:
    """Insert the balance sources and flags of one plan instance."""
    feature_quantities = feature_quantities or {}
    carried_usage = dict(carried_usage or {})
    for item in plan.items:
        feature = cat.features.get(item["feature_id"])
        if feature is None:
            continue
        if feature.type == "boolean":
            insert_source(
                conn,
                {
                    "customer_pk": customer_pk,
                    "entity_pk": entity_pk,
                    "customer_plan_pk": instance_pk,
                    "feature_id": feature.id,
                    "plan_id": plan.id,
                    "is_flag": True,
                    "created_at": now,
                    "is_addon": plan.add_on,
                    "expires_at": expires_at,
                },
            )
            continue
        continuous = feature.type == "metered" and not feature.consumable
        interval, count = _item_interval(item, continuous)
        price = item.get("price")
        allowance = float(item.get("included") or 0) * quantity
        prepaid = 0.0
        if price and price.get("billing_method") == "prepaid":
            wanted = feature_quantities.get(feature.id)
            if wanted is not None:
                units = float(price.get("billing_units") or 1)
                packs = -(-max(0.0, wanted - allowance) // units)
                prepaid = packs * units
        used = carried_usage.pop(feature.id, 0.0) if continuous else 0.0
        next_reset = None
        if interval not in (None, "one_off"):
            assert interval is not None
            override = (next_reset_overrides or {}).get((feature.id, interval))
            next_reset = override or next_boundary_after(anchor_at, interval, count, now)
        insert_source(
            conn,
            {
                "customer_pk": customer_pk,
                "entity_pk": entity_pk,
                "customer_plan_pk": instance_pk,
                "feature_id": feature.id,
                "plan_id": plan.id,
                "allowance": allowance,
                "prepaid": prepaid,
                "balance": allowance + prepaid - used,
                "unlimited": bool(item.get("unlimited")),
                "usage_allowed": bool(price and price.get("billing_method") == "usage_based"),
                "max_purchase": price.get("max_purchase") if price else None,
                "interval": interval,
                "interval_count": count,
                "anchor_at": anchor_at,
                "next_reset_at": next_reset,
                "expires_at": expires_at,
                "rollover_config": item.get("rollover"),
                "price": price,
                "is_addon": plan.add_on,
                "continuous": continuous,
                "created_at": now,
            },
        )


def entity_usage(conn: Connection, customer_pk: int, feature_id: str) -> float:
    return float(
        conn.execute(
            select(func.count())
            .select_from(entities)
            .where(entities.c.customer_pk == customer_pk, entities.c.feature_id == feature_id)
        ).scalar_one()
    )


def with_entity_usage(
    conn: Connection, cat: Catalog, customer_pk: int, plan: Plan, carried: dict[str, float] | None = None
) -> dict[str, float]:
    """``carried`` usage plus, for each continuous item not in it, the customer's entities of that
    feature: a customer-level plan starts with its seats already in use (§5.2.6)."""
    usage = dict(carried or {})
    for item in plan.items:
        f = cat.features.get(item["feature_id"])
        if f is not None and f.type == "metered" and not f.consumable and f.id not in usage:
            usage[f.id] = entity_usage(conn, customer_pk, f.id)
    return usage


def activate_plan(
    conn: Connection,
    cat: Catalog,
    *,
    customer: CustomerRow,
    entity: EntityRow | None,
    plan: Plan,
    now: int,
    status: str = "active",
    starts_at: int | None = None,
    subscription_id: str | None = None,
    quantity: float = 1,
    feature_quantities: dict[str, float] | None = None,
    carried_usage: dict[str, float] | None = None,
    next_reset_overrides: dict[tuple[str, str | None], int] | None = None,
    trial_ends_at: int | None = None,
    current_period_start: int | None = None,
    current_period_end: int | None = None,
) -> int:
    """Create a plan instance; an ``active`` one gets its balances now, a ``scheduled`` one later."""
    instance_pk = int(
        conn.execute(
            insert(customer_plans)
            .values(
                customer_pk=customer.pk,
                entity_pk=entity.pk if entity else None,
                plan_pk=plan.pk,
                plan_id=plan.id,
                subscription_id=subscription_id,
                status=status,
                quantity=quantity,
                started_at=starts_at if starts_at is not None else now,
                starts_at=starts_at,
                trial_ends_at=trial_ends_at,
                current_period_start=current_period_start,
                current_period_end=current_period_end,
                created_at=now,
            )
            .returning(customer_plans.c.pk)
        ).scalar_one()
    )
    if status == "scheduled":
        if starts_at is not None:
            schedule_maintenance(conn, customer.pk, starts_at)
        return instance_pk
    carried = dict(carried_usage or {})
    if entity is None:
        carried = with_entity_usage(conn, cat, customer.pk, plan, carried)
    create_item_sources(
        conn,
        cat,
        customer_pk=customer.pk,
        entity_pk=entity.pk if entity else None,
        instance_pk=instance_pk,
        plan=plan,
        now=now,
        anchor_at=now,
        quantity=quantity,
        feature_quantities=feature_quantities,
        carried_usage=carried,
        next_reset_overrides=next_reset_overrides,
    )
    return instance_pk


@dataclass
class ExpiredState:
    """What a switched-out instance leaves behind for its successor."""

    continuous_usage: dict[str, float]
    next_resets: dict[tuple[str, str | None], int]


def expire_instance(conn: Connection, instance_pk: int, now: int) -> ExpiredState:
    """End a plan instance now: its balances disappear; continuous usage is handed to the successor."""
    row = conn.execute(select(customer_plans).where(customer_plans.c.pk == instance_pk)).one()
    state = ExpiredState({}, {})
    for s in load_sources(conn, row.customer_pk):
        if s.customer_plan_pk != instance_pk or s.is_flag:
            continue
        if s.continuous:
            state.continuous_usage[s.feature_id] = state.continuous_usage.get(s.feature_id, 0.0) + s.usage
        elif s.next_reset_at is not None and s.interval is not None:
            state.next_resets[(s.feature_id, s.interval)] = s.next_reset_at
    conn.execute(delete(balance_sources).where(balance_sources.c.customer_plan_pk == instance_pk))
    conn.execute(
        update(customer_plans)
        .where(customer_plans.c.pk == instance_pk)
        .values(
            status="expired", expires_at=row.expires_at if row.expires_at and row.expires_at <= now else now
        )
    )
    for seat_pk in end_seats_of(conn, instance_pk, now):  # license seats end with the plan giving them
        expire_instance(conn, seat_pk, now)
    return state


def default_plans(cat: Catalog) -> list[Plan]:
    """One auto_enable plan per group (a trial or paid candidate preferred within the group)."""
    by_group: dict[str, Plan] = {}
    for p in cat.plans.values():
        if not p.auto_enable or p.archived:
            continue
        current = by_group.get(p.group)
        if current is None or (current.is_free and not p.is_free):
            by_group[p.group] = p
    return list(by_group.values())


def trial_end(plan: Plan, now: int) -> int | None:
    from reference_server.engine.intervals import FIXED_MS, add_months

    trial = plan.free_trial
    if not trial or trial.get("card_required", True):
        return None
    length = int(trial.get("duration_length") or 0)
    kind = trial.get("duration_type") or "month"
    if kind == "day":
        return now + FIXED_MS["day"] * length
    return add_months(now, length * (12 if kind == "year" else 1))


def attach_defaults(
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    now: int,
    entity: EntityRow | None = None,
    only_plan: Plan | None = None,
) -> None:
    """Give a new customer its default plans (billing-semantics §5.1)."""
    for plan in [only_plan] if only_plan is not None else default_plans(cat):
        ends = trial_end(plan, now)
        activate_plan(conn, cat, customer=customer, entity=entity, plan=plan, now=now, trial_ends_at=ends)
        if ends is not None:  # paid billing bills or reverts the trial when it ends
            schedule_maintenance(conn, customer.pk, ends)


def activate_group_default(
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    entity: EntityRow | None,
    group: str,
    now: int,
    carried: ExpiredState | None = None,
) -> None:
    """Re-enable the group's auto_enable plan when the main plan of the group ends."""
    for plan in default_plans(cat):
        if plan.group == group and not plan.add_on:
            activate_plan(
                conn,
                cat,
                customer=customer,
                entity=entity,
                plan=plan,
                now=now,
                carried_usage=carried.continuous_usage if carried else None,
            )


def run_maintenance(ctx: Ctx, conn: Connection, cat: Catalog, customer: CustomerRow, now: int) -> None:
    """Apply everything that became due: plan expiries, scheduled activations, expired locks."""
    from reference_server.service.locks import release_expired_locks

    due = customer.maintenance_due_at
    if due is None or due > now:
        return
    billing = ctx.state.billing.maintenance
    if billing is not None:  # paid billing: renewals, trial ends, period-end switches (billing.plan_changes)
        billing(ctx, conn, cat, customer, now)
    instances = load_instances(conn, customer.pk)
    # Expire ended instances first, then start scheduled ones, in time order.
    for inst in sorted(instances, key=lambda i: i.expires_at or 0):
        if inst.status == "active" and inst.expires_at is not None and inst.expires_at <= now:
            expire_instance(conn, inst.pk, now)
    for inst in sorted(instances, key=lambda i: i.starts_at or 0):
        if inst.status == "scheduled" and inst.starts_at is not None and inst.starts_at <= now:
            plan = cat.plans_by_pk.get(inst.plan_pk)
            conn.execute(update(customer_plans).where(customer_plans.c.pk == inst.pk).values(status="active"))
            if plan is not None:
                entity = None
                if inst.entity_pk is not None:
                    from reference_server.store.subjects import entity_from_row

                    erow = conn.execute(select(entities).where(entities.c.pk == inst.entity_pk)).first()
                    entity = entity_from_row(erow) if erow is not None else None
                carried = with_entity_usage(conn, cat, customer.pk, plan) if entity is None else {}
                create_item_sources(
                    conn,
                    cat,
                    customer_pk=customer.pk,
                    entity_pk=inst.entity_pk,
                    instance_pk=inst.pk,
                    plan=plan,
                    now=now,
                    anchor_at=inst.starts_at,
                    quantity=inst.quantity,
                    carried_usage=carried,
                )
    release_expired_locks(ctx, conn, customer, now)
    next_due = _next_due(conn, customer.pk)
    conn.execute(update(customers).where(customers.c.pk == customer.pk).values(maintenance_due_at=next_due))
    customer.maintenance_due_at = next_due


def _next_due(conn: Connection, customer_pk: int) -> int | None:
    candidates = [
        conn.execute(
            select(func.min(customer_plans.c.expires_at)).where(
                customer_plans.c.customer_pk == customer_pk, customer_plans.c.status == "active"
            )
        ).scalar(),
        conn.execute(
            select(func.min(customer_plans.c.starts_at)).where(
                customer_plans.c.customer_pk == customer_pk, customer_plans.c.status == "scheduled"
            )
        ).scalar(),
        conn.execute(select(func.min(locks.c.expires_at)).where(locks.c.customer_pk == customer_pk)).scalar(),
        conn.execute(
            select(func.min(customer_plans.c.current_period_end)).where(
                customer_plans.c.customer_pk == customer_pk, customer_plans.c.status == "active"
            )
        ).scalar(),
        # A default plan's trial (attach_defaults) has no billing period until paid billing converts it.
        conn.execute(
            select(func.min(customer_plans.c.trial_ends_at)).where(
                customer_plans.c.customer_pk == customer_pk,
                customer_plans.c.status == "active",
                customer_plans.c.current_period_end.is_(None),
            )
        ).scalar(),
    ]
    present = [int(c) for c in candidates if c is not None]
    return min(present) if present else None
